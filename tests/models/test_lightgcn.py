from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.data.graph import normalized_adjacency
from recforge.models.lightgcn import LightGCN
from recforge.models.mf import MF


@pytest.fixture
def train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    matrix = sp.random(6, 5, density=0.4, random_state=rng, format="csr")
    matrix.data[:] = 1.0
    return matrix


def dense_reference(model: LightGCN, train: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN written out with a dense normalised adjacency built in numpy."""
    num_users, num_items = train.shape
    adjacency = np.zeros((num_users + num_items,) * 2)
    adjacency[:num_users, num_users:] = train.toarray()
    adjacency[num_users:, :num_users] = train.toarray().T
    degree = adjacency.sum(1)
    scale = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1)), 0.0)
    normalized = torch.from_numpy(scale[:, None] * adjacency * scale[None, :])
    layers = [model.embedding.detach().double()]
    for _ in range(model.num_layers):
        layers.append(normalized @ layers[-1])
    mean = torch.stack(layers).mean(0)
    return mean[:num_users], mean[num_users:]


def test_repr():
    model = LightGCN(num_users=6, num_items=5, dim=8, num_layers=2)
    assert repr(model) == "LightGCN(users=6, items=5, dim=8, layers=2)"


@pytest.mark.parametrize("num_layers", [0, 1, 3])
def test_matches_dense_reference(train, num_layers):
    model = LightGCN(num_users=6, num_items=5, dim=4, num_layers=num_layers).double()
    users, items = model(normalized_adjacency(train, dtype=torch.float64))
    expected_users, expected_items = dense_reference(model, train)
    assert users.shape == (6, 4)
    assert items.shape == (5, 4)
    torch.testing.assert_close(users, expected_users)
    torch.testing.assert_close(items, expected_items)


def test_coo_and_csr_adjacency_agree(train):
    model = LightGCN(num_users=6, num_items=5, dim=4, num_layers=3)
    adjacency = normalized_adjacency(train)
    csr_users, csr_items = model(adjacency)
    coo_users, coo_items = model(adjacency.to_sparse_coo().coalesce())
    torch.testing.assert_close(csr_users, coo_users)
    torch.testing.assert_close(csr_items, coo_items)


def test_zero_layers_is_mf(train):
    lightgcn = LightGCN(num_users=6, num_items=5, dim=4, num_layers=0)
    mf = MF(num_users=6, num_items=5, dim=4)
    with torch.no_grad():
        lightgcn.embedding.copy_(torch.cat([mf.user_embedding, mf.item_embedding]))
    for got, expected in zip(lightgcn(normalized_adjacency(train)), mf(), strict=True):
        torch.testing.assert_close(got, expected)


def test_backward_matches_dense_reference(train):
    model = LightGCN(num_users=6, num_items=5, dim=3, num_layers=2).double()
    users, items = model(normalized_adjacency(train, dtype=torch.float64))
    (users.sum() + items.pow(2).sum()).backward()
    grad = model.embedding.grad.clone()
    model.embedding.grad = None
    # the same loss through the dense reference, built with autograd enabled
    num_users = 6
    dense = normalized_adjacency(train, dtype=torch.float64).to_dense()
    layer = layer_sum = model.embedding
    for _ in range(2):
        layer = dense @ layer
        layer_sum = layer_sum + layer
    mean = layer_sum / 3
    (mean[:num_users].sum() + mean[num_users:].pow(2).sum()).backward()
    torch.testing.assert_close(grad, model.embedding.grad)


def test_user_without_interactions_keeps_only_its_own_share(train):
    train = train.tolil()
    train[2, :] = 0
    train = train.tocsr()
    train.eliminate_zeros()
    model = LightGCN(num_users=6, num_items=5, dim=4, num_layers=3)
    users, _ = model(normalized_adjacency(train))
    # no neighbours: layers 1..3 are zero, so the mean is the layer-0 row / (L + 1)
    torch.testing.assert_close(users[2], model.embedding[2].detach() / 4)


def test_initial_embeddings_are_the_layer_0_rows():
    model = LightGCN(num_users=3, num_items=2, dim=4)
    users, items = model.initial_embeddings()
    assert torch.equal(users, model.embedding[:3])
    assert torch.equal(items, model.embedding[3:])


def test_wrong_adjacency_size(train):
    model = LightGCN(num_users=5, num_items=5, dim=4)
    with pytest.raises(ValueError, match=r"has shape \(11, 11\), expected \(10, 10\) for 5 users \+ 5 items"):
        model(normalized_adjacency(train))
