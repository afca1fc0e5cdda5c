"""Masked top-k and the sparse-row index, against one-query-at-a-time references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.evaluation.ranking import SparseRows, mask_seen_, ranked_items, top_k

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


def random_binary(num_rows: int, num_columns: int, density: float, seed: int) -> sp.csr_matrix:
    matrix = sp.random(num_rows, num_columns, density=density, format="csr", random_state=seed)
    matrix.data[:] = 1.0
    return matrix


def reference_top_k_unseen(scores: torch.Tensor, seen: np.ndarray, k: int) -> list[list[int]]:
    ranked = []  # one query at a time, in plain Python: slow, plainly right
    for row, seen_row in zip(scores.tolist(), seen.tolist(), strict=True):
        unseen = [item for item in range(len(row)) if not seen_row[item]]
        best = sorted(unseen, key=lambda item, row=row: -row[item])[:k]
        ranked.append(best + [-1] * (k - len(best)))
    return ranked


@pytest.mark.parametrize("device", DEVICES)
def test_ranked_items_matches_the_reference(device: str) -> None:
    generator = torch.Generator().manual_seed(0)
    user_embeddings = torch.randn(40, 8, generator=generator)
    item_embeddings = torch.randn(30, 8, generator=generator)
    seen = random_binary(40, 30, density=0.3, seed=1).toarray()
    seen[5] = 1.0  # a user who has seen everything gets only empty slots
    exclude = sp.csr_matrix(seen)
    users = torch.tensor([5, 0, 39, 7, 7, 12])

    ranked = ranked_items(
        user_embeddings.to(device), item_embeddings.to(device), users, k=6, exclude=exclude, batch_size=4
    )

    scores = user_embeddings[users] @ item_embeddings.T
    expected = reference_top_k_unseen(scores, exclude[users.numpy()].toarray() > 0, k=6)
    assert ranked.device.type == device
    assert ranked.tolist() == expected
    assert ranked[0].tolist() == [-1] * 6


def test_ranked_items_never_returns_excluded_items() -> None:
    generator = torch.Generator().manual_seed(3)
    exclude = random_binary(50, 200, density=0.2, seed=3)
    users = torch.arange(50)
    ranked = ranked_items(
        torch.randn(50, 4, generator=generator),
        torch.randn(200, 4, generator=generator),
        users,
        k=20,
        exclude=exclude,
    )
    seen = exclude.toarray() > 0
    assert not seen[users.numpy()[:, None], ranked.numpy()].any()


def test_ranked_items_without_exclusion_and_with_k_beyond_the_catalogue() -> None:
    ranked = ranked_items(torch.eye(3), torch.eye(3), torch.tensor([2]), k=5)
    assert ranked.tolist()[0][:1] == [2]
    assert ranked.tolist()[0][3:] == [-1, -1]
    assert ranked_items(torch.eye(3), torch.eye(3), torch.tensor([], dtype=torch.long), k=2).shape == (0, 2)
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        ranked_items(torch.eye(3), torch.eye(3), torch.tensor([0]), k=0)
    with pytest.raises(ValueError, match=r"exclude has shape \(2, 3\), expected \(users, items\) = \(3, 3\)"):
        ranked_items(torch.eye(3), torch.eye(3), torch.tensor([0]), k=1, exclude=sp.csr_matrix((2, 3)))


def test_top_k_marks_masked_slots() -> None:
    scores = torch.tensor([[0.5, 0.1, 0.9], [0.3, 0.2, 0.1]])
    mask_seen_(scores, torch.tensor([0, 1, 1]), torch.tensor([2, 0, 1]))
    values, items = top_k(scores, 3)
    assert items.tolist() == [[0, 1, -1], [2, -1, -1]]
    assert values[0, :2].tolist() == pytest.approx([0.5, 0.1])


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_rows_contains_matches_a_dense_lookup(device: str) -> None:
    matrix = random_binary(30, 25, density=0.2, seed=5)
    rows = SparseRows.from_csr(matrix, device)
    dense = torch.from_numpy(matrix.toarray() > 0)
    columns = torch.randint(-1, 25, (10, 12), generator=torch.Generator().manual_seed(5))
    found = rows.contains(17, columns.to(device)).cpu()
    expected = torch.where(columns >= 0, dense[17:27].gather(1, columns.clamp(min=0)), False)
    assert torch.equal(found, expected)


def test_sparse_rows_block_is_relative_to_the_batch() -> None:
    matrix = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.float32))
    rows, columns = SparseRows.from_csr(matrix).block(1, 3)
    assert rows.tolist() == [1]
    assert columns.tolist() == [1]


def test_sparse_rows_accepts_unsorted_columns() -> None:
    matrix = sp.csr_matrix(
        (np.ones(3, dtype=np.float32), np.array([2, 0, 1]), np.array([0, 3])), shape=(1, 4)
    )
    assert not matrix.has_sorted_indices
    rows = SparseRows.from_csr(matrix)
    assert rows.contains(0, torch.tensor([[0, 1, 2, 3]])).tolist() == [[True, True, True, False]]
