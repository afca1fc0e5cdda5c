"""Sampling unseen candidates and ranking them: by hand, by counting, and against the memory bound."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy import stats

from recforge.evaluation import candidates as candidates_module
from recforge.evaluation.candidates import ranked_candidates, sample_unseen


def binary(rows: list[list[int]], num_columns: int) -> sp.csr_matrix:
    indptr = np.cumsum([0, *(len(row) for row in rows)])
    indices = np.array([column for row in rows for column in row], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(rows), num_columns))


def test_samples_are_distinct_unseen_and_ascending() -> None:
    rng = np.random.default_rng(0)
    rows = [sorted(rng.choice(30, rng.integers(0, 20), replace=False).tolist()) for _ in range(300)]
    sampled = sample_unseen(binary(rows, 30), 10, seed=1)
    assert sampled.shape == (300, 10)
    assert sampled.dtype == np.int64
    for row, seen in zip(sampled.tolist(), rows, strict=True):
        assert row == sorted(set(row))  # distinct (without replacement), ascending
        assert not set(row) & set(seen)
        assert all(0 <= column < 30 for column in row)


def test_every_unseen_column_is_equally_likely() -> None:
    # 4,000 rows that saw columns 0..4: each of the 15 others is drawn with probability 3/15
    sampled = sample_unseen(binary([[0, 1, 2, 3, 4]] * 4_000, 20), 3, seed=7)
    counts = np.bincount(sampled.ravel(), minlength=20)
    assert counts[:5].tolist() == [0] * 5
    expected, sigma = 4_000 * 3 / 15, (4_000 * 0.2 * 0.8) ** 0.5
    assert np.all(np.abs(counts[5:] - expected) < 5 * sigma), counts
    # and every 3-subset as likely as any other (a uniform subset, not only uniform margins)
    subsets = np.unique(sampled, axis=0, return_counts=True)[1]
    assert len(subsets) == 455  # 15 choose 3, all of them drawn
    assert stats.chisquare(subsets).pvalue > 1e-3


def test_seeded_and_independent_of_the_memory_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = binary([[row % 7, (row * 3) % 11] for row in range(600)], 40)
    first = sample_unseen(seen, 5, seed=(3, 1))
    assert np.array_equal(first, sample_unseen(seen, 5, seed=(3, 1)))
    assert not np.array_equal(first, sample_unseen(seen, 5, seed=(3, 0)))
    np.random.seed(99)  # noqa: NPY002 - the global generators must play no part
    torch.manual_seed(99)
    monkeypatch.setattr(candidates_module, "_ROWS_PER_DRAW", 7)
    assert np.array_equal(first, sample_unseen(seen, 5, seed=(3, 1)))


def test_a_row_with_too_few_unseen_columns_is_refused() -> None:
    with pytest.raises(ValueError, match=r"row 1 has only 1 of 4 columns without an entry, fewer than the 2 "
                       r"to sample \(1 rows are short\)"):
        sample_unseen(binary([[0], [0, 1, 2], []], 4), 2, seed=0)
    with pytest.raises(ValueError, match="num_samples must be at least 1, got 0"):
        sample_unseen(binary([[0]], 4), 0, seed=0)
    assert sample_unseen(binary([[0], [1]], 4), 3, seed=0).tolist() == [[1, 2, 3], [0, 2, 3]]


def test_ranked_candidates_by_hand() -> None:
    scores = torch.tensor([[0.0, 5.0, 3.0, 3.0, 1.0, float("-inf")]])
    # negatives 1, 2, 4; held-out items 3 (tied with negative 2) and 5 (seen: -inf); one empty slot
    candidates = torch.tensor([[1, 2, 4, 3, 5, -1]])
    is_relevant = torch.tensor([[False, False, False, True, True, False]])
    hits, items = ranked_candidates(scores, candidates, is_relevant, 8)
    assert items.tolist() == [[1, 2, 3, 4, -1, -1, -1, -1]]  # the tie goes to the negative
    assert hits.tolist() == [[False, False, True, False, False, False, False, False]]
    hits, items = ranked_candidates(scores, candidates, is_relevant, 2)
    assert items.tolist() == [[1, 2]]
    assert not hits.any()
