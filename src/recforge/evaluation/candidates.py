"""Sampled-candidate evaluation: each user's held-out items ranked against ``N`` sampled negatives.

Many papers (NCF, DE-RRD's CiteULike logs with ``N = 499``) rank a user's held-out item against a
few hundred items the user never interacted with, instead of against the whole catalogue. Both
steps here are tensor operations over all users at once:

* :func:`sample_unseen` draws, for every row of a binary matrix, ``N`` distinct columns uniformly
  among those the row has no entry in: each row gets random keys over the whole catalogue, its
  entries get a key above every random one, and the ``N`` smallest keys are kept. A uniformly
  random order restricted to the unseen items is uniform, so the kept set is a uniform ``N``-subset
  drawn without replacement. The keys come from one seeded numpy generator in row order, so the
  candidates depend on the matrix, ``N`` and the seed only: identical across runs, models and devices.
* :func:`ranked_candidates` ranks a block of candidate lists by their scores, ties against the held-out
  items (negatives are listed first and the sort is stable), so a model that scores everything
  alike cannot look good.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["ranked_candidates", "sample_unseen"]

_ROWS_PER_DRAW = 256
"""Rows whose keys are drawn at once: bounds memory at ``256 * num_items`` floats, never the result
(the generator fills the keys in row order either way)."""
_SEEN_KEY = 2.0  # above every key np.random.Generator.random draws, which lie in [0, 1)


def sample_unseen(seen: sp.csr_matrix, num_samples: int, seed: int | Sequence[int]) -> np.ndarray:
    """``num_samples`` distinct columns per row, uniformly among the columns where ``seen`` has no entry.

    Shapes: seen (R, I) binary CSR -> (R, num_samples) int64, each row ascending. ``seed`` seeds
    ``numpy.random.default_rng``. Raises ValueError when a row has fewer than ``num_samples``
    columns without an entry (the error names the first such row).
    """
    seen = sp.csr_matrix(seen)
    num_rows, num_columns = seen.shape
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    seen.sum_duplicates()
    available = num_columns - np.diff(seen.indptr)
    short = np.flatnonzero(available < num_samples)
    if len(short):
        raise ValueError(f"row {int(short[0])} has only {int(available[short[0]])} of {num_columns} columns "
                         f"without an entry, fewer than the {num_samples} to sample "
                         f"({len(short)} rows are short)")
    generator = np.random.default_rng(seed)
    sampled = np.empty((num_rows, num_samples), dtype=np.int64)
    for start in range(0, num_rows, _ROWS_PER_DRAW):
        stop = min(start + _ROWS_PER_DRAW, num_rows)
        keys = generator.random((stop - start, num_columns))
        block = seen[start:stop]
        keys[np.repeat(np.arange(stop - start), np.diff(block.indptr)), block.indices] = _SEEN_KEY
        smallest = np.argpartition(keys, num_samples - 1, axis=1)[:, :num_samples]
        sampled[start:stop] = np.sort(smallest, axis=1)
    return sampled


def ranked_candidates(
    scores: Tensor, candidates: Tensor, is_relevant: Tensor, k: int
) -> tuple[Tensor, Tensor]:
    """The top ``k`` of each row's candidates by score: (hits, items).

    Shapes: scores (B, I) (seen items already -inf), candidates (B, C) item ids (-1: an empty slot),
    is_relevant (B, C) bool -> hits (B, k) bool, items (B, k) item ids. Ties keep the candidates'
    order (a stable sort), so listing negatives before held-out items breaks ties against the
    held-out items. A candidate scored -inf (a held-out item already seen) and an empty slot are
    never a hit and come out as item -1, as in :func:`~recforge.evaluation.ranking.top_k`; when
    ``k > C`` the lists are padded the same way.
    """
    candidate_scores = scores.gather(1, candidates.clamp(min=0))
    candidate_scores = candidate_scores.masked_fill(candidates < 0, float("-inf"))
    ordered_scores, order = torch.sort(candidate_scores, dim=1, descending=True, stable=True)
    order, ordered_scores = order[:, :k], ordered_scores[:, :k]
    listed = ordered_scores > float("-inf")
    hits = is_relevant.gather(1, order) & listed
    items = candidates.gather(1, order).masked_fill(~listed, -1)
    if items.shape[1] < k:  # fewer candidates than the cut-off: empty slots, as top_k pads
        padding = k - items.shape[1]
        hits = torch.nn.functional.pad(hits, (0, padding), value=False)
        items = torch.nn.functional.pad(items, (0, padding), value=-1)
    return hits, items
