from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.data.graph import normalized_adjacency


def dense_reference(interactions: np.ndarray) -> np.ndarray:
    """D^{-1/2} A D^{-1/2} written out with a dense A, 0 where a degree is 0."""
    num_users, num_items = interactions.shape
    adjacency = np.zeros((num_users + num_items,) * 2)
    adjacency[:num_users, num_users:] = interactions
    adjacency[num_users:, :num_users] = interactions.T
    degree = adjacency.sum(1)
    with np.errstate(divide="ignore"):
        scale = np.where(degree > 0, 1 / np.sqrt(degree), 0.0)
    return scale[:, None] * adjacency * scale[None, :]


@pytest.fixture
def small_train() -> sp.csr_matrix:
    # user 2 and item 3 have no interactions
    return sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))


def test_matches_dense_formula(small_train):
    result = normalized_adjacency(small_train, dtype=torch.float64)
    assert result.layout == torch.sparse_csr
    assert result.shape == (7, 7)
    np.testing.assert_allclose(result.to_dense().numpy(), dense_reference(small_train.toarray()), atol=1e-15)


def test_one_entry_by_hand(small_train):
    dense = normalized_adjacency(small_train, dtype=torch.float64).to_dense()
    # user 0 has 2 items, item 1 has 2 users: 1 / (sqrt(2) sqrt(2))
    assert dense[0, 3 + 1].item() == pytest.approx(0.5)
    # user 1 (degree 2) – item 2 (degree 1)
    assert dense[1, 3 + 2].item() == pytest.approx(1 / np.sqrt(2))


def test_symmetric_with_sorted_indices(small_train):
    result = normalized_adjacency(small_train)
    dense = result.to_dense()
    assert torch.equal(dense, dense.T)
    columns, rows = result.col_indices(), result.crow_indices()
    for row in range(result.shape[0]):
        segment = columns[rows[row] : rows[row + 1]]
        assert torch.all(segment[1:] > segment[:-1])


def test_isolated_nodes_get_zero_rows(small_train):
    dense = normalized_adjacency(small_train).to_dense()
    assert torch.isfinite(dense).all()
    isolated_user, isolated_item = 2, 3 + 3
    for node in (isolated_user, isolated_item):
        assert not dense[node].any()
        assert not dense[:, node].any()


def test_values_ignored_duplicates_count_once():
    weighted = sp.coo_matrix(([5.0, 2.0, 1.0, 0.0], ([0, 0, 1, 1], [0, 0, 1, 0])), shape=(2, 2)).tocsr()
    binary = sp.csr_matrix(np.array([[1, 0], [0, 1]], dtype=np.float32))  # the explicit 0 is no edge
    assert torch.equal(normalized_adjacency(weighted).to_dense(), normalized_adjacency(binary).to_dense())


def test_dtype_and_empty_graph():
    result = normalized_adjacency(sp.csr_matrix((3, 2), dtype=np.float32), dtype=torch.float64)
    assert result.dtype == torch.float64
    assert result.shape == (5, 5)
    assert result.values().numel() == 0


def test_random_graph_against_dense_formula():
    rng = np.random.default_rng(0)
    train = sp.random(30, 20, density=0.1, random_state=rng, format="csr")
    expected = dense_reference((train.toarray() != 0).astype(float))
    result = normalized_adjacency(train, dtype=torch.float64).to_dense().numpy()
    np.testing.assert_allclose(result, expected, atol=1e-15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda(small_train):
    result = normalized_adjacency(small_train, device="cuda")
    assert result.device.type == "cuda"
    torch.testing.assert_close(result.to_dense().cpu(), normalized_adjacency(small_train).to_dense())
