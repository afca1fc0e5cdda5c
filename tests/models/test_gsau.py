"""GSAU's graph half and what "shared embeddings" means: one item tensor behind both encoders."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from recforge.data.graph import normalized_adjacency
from recforge.models.gsau import GSAU
from recforge.models.lightgcn import LightGCN

NUM_USERS, NUM_ITEMS = 6, 9


def train_matrix() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    dense = (rng.random((NUM_USERS, NUM_ITEMS)) < 0.4).astype(np.float32)
    dense[:, 0] = 0  # item 0 has no training interaction (e.g. only ever a test item)
    return sp.csr_matrix(dense)


def build(**overrides) -> GSAU:
    params = {
        "num_users": NUM_USERS,
        "num_items": NUM_ITEMS,
        "dim": 8,
        "max_length": 5,
        "num_layers": 1,
        "num_heads": 1,
        "inner_dim": 16,
        "graph_layers": 2,
    }
    return GSAU(**(params | overrides))


def test_graph_encoder_is_lightgcn_over_users_and_the_shared_item_table():
    torch.manual_seed(0)
    model = build()
    adjacency = normalized_adjacency(train_matrix())
    reference = LightGCN(NUM_USERS, NUM_ITEMS, dim=8, num_layers=2)
    with torch.no_grad():
        reference.embedding.copy_(torch.cat([model.user_embedding, model.item_embeddings()]))
    users, items = model.graph_embeddings(adjacency)
    expected_users, expected_items = reference(adjacency)
    torch.testing.assert_close(users, expected_users)
    torch.testing.assert_close(items, expected_items)
    assert torch.isfinite(items[0]).all()  # an item without edges keeps (1/(L+1)) of its own row


def test_shared_table_takes_gradient_from_both_encoders():
    torch.manual_seed(1)
    model = build()
    adjacency = normalized_adjacency(train_matrix())
    _, graph_items = model.graph_embeddings(adjacency)
    graph_items[3].sum().backward()  # the graph alone reaches the sequence encoder's item rows
    table = model.sequence_encoder.item_embedding.weight
    assert table.grad is not None
    assert table.grad[1 + 3].abs().sum() > 0


def test_separate_tables_keep_the_encoders_apart():
    torch.manual_seed(2)
    model = build(shared_embeddings=False)
    adjacency = normalized_adjacency(train_matrix())
    _, graph_items = model.graph_embeddings(adjacency)
    graph_items.sum().backward()
    assert model.sequence_encoder.item_embedding.weight.grad is None
    assert model.graph_item_embedding is not None
    assert model.graph_item_embedding.grad is not None
    names = dict(model.named_parameters())
    assert "graph_item_embedding" in names
    assert "graph_item_embedding" not in dict(build().named_parameters())


def test_seeded_construction_and_reset_agree_and_weights_round_trip(tmp_path):
    torch.manual_seed(3)
    first = build()
    torch.manual_seed(3)
    second = build()
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    path = tmp_path / "gsau.safetensors"
    save_file({k: v.contiguous() for k, v in first.state_dict().items()}, str(path))
    third = build()
    third.load_state_dict(load_file(str(path)))
    adjacency = normalized_adjacency(train_matrix())
    torch.testing.assert_close(third.graph_embeddings(adjacency)[0], first.graph_embeddings(adjacency)[0])


def test_errors():
    with pytest.raises(ValueError, match="expected \\(15, 15\\)"):
        build().graph_embeddings(normalized_adjacency(sp.csr_matrix((3, 4), dtype=np.float32)))
    with pytest.raises(ValueError, match="graph_layers must be >= 0"):
        build(graph_layers=-1)
