"""Top-k over unseen items: the masked ``topk`` shared by the evaluator and by recommendations.

Seen items (a user's training items, or training and validation items at test time) are set to
-inf in place before ``torch.topk``, so a heavy user still gets ``k`` new items rather than ``k``
minus the items already consumed. Which items are seen lives in :class:`SparseRows`, a CSR copy on
the scoring device, so masking and relevance lookups are tensor operations with no per-user loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

__all__ = ["SparseRows", "mask_seen_", "ranked_items", "top_k"]


@dataclass(frozen=True)
class SparseRows:
    """The nonzero columns of some rows of a binary matrix, as tensors on one device.

    Row ``r`` here is row ``r`` of the matrix it was built from (after any row selection), so a batch
    of consecutive rows is one contiguous slice of ``rows``/``columns``.

    Attributes:
        num_columns: width of the matrix (the number of items).
        indptr: (R+1,) int64 numpy array, kept on the host so that slicing a batch needs no device
            synchronisation.
        rows / columns: (nnz,) int64 row and column of each entry, on the device.
        keys: (nnz,) int64 ``row * num_columns + column``, ascending, for ``searchsorted`` membership.
    """

    num_columns: int
    indptr: np.ndarray
    rows: Tensor
    columns: Tensor
    keys: Tensor

    @classmethod
    def from_csr(cls, matrix: sp.csr_matrix, device: torch.device | str | None = None) -> SparseRows:
        """Index the nonzero pattern of ``matrix`` (explicit zeros count as entries)."""
        matrix = sp.csr_matrix(matrix)
        if not matrix.has_sorted_indices:  # searchsorted needs ascending keys within each row
            matrix = matrix.sorted_indices()
        indptr = matrix.indptr.astype(np.int64)
        rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(indptr))
        columns = matrix.indices.astype(np.int64)
        num_columns = int(matrix.shape[1])
        return cls(
            num_columns=num_columns,
            indptr=indptr,
            rows=torch.from_numpy(rows).to(device),
            columns=torch.from_numpy(columns).to(device),
            keys=torch.from_numpy(rows * num_columns + columns).to(device),
        )

    @property
    def num_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def device(self) -> torch.device:
        return self.rows.device

    def to(self, device: torch.device | str) -> SparseRows:
        return SparseRows(self.num_columns, self.indptr, self.rows.to(device), self.columns.to(device),
                          self.keys.to(device))

    def block(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Entries of rows ``start..stop-1`` as (row - start, column) index tensors."""
        begin, end = int(self.indptr[start]), int(self.indptr[stop])
        return self.rows[begin:end] - start, self.columns[begin:end]

    def contains(self, start: int, columns: Tensor) -> Tensor:
        """Whether ``(start + q, columns[q, j])`` is an entry, for a (B, K) block of column ids.

        Negative column ids (empty slots) are never entries. A vectorised binary search over the
        sorted keys: O(B K log nnz), with nothing of size (B, num_columns) built.
        """
        begin, end = int(self.indptr[start]), int(self.indptr[start + len(columns)])
        keys = self.keys[begin:end]
        if len(keys) == 0:
            return torch.zeros_like(columns, dtype=torch.bool)
        row_of = torch.arange(start, start + len(columns), device=columns.device).unsqueeze(1)
        wanted = row_of * self.num_columns + columns
        position = torch.searchsorted(keys, wanted).clamp_(max=len(keys) - 1)
        return (keys[position] == wanted) & (columns >= 0)


def mask_seen_(scores: Tensor, rows: Tensor, columns: Tensor) -> Tensor:
    """Set ``scores[rows, columns]`` to -inf in place and return ``scores``.

    In place because ``scores`` is a fresh (B, I) block: a masked copy would double the memory
    traffic of the hottest step of evaluation.
    """
    return scores.index_put_((rows, columns), torch.tensor(float("-inf"), dtype=scores.dtype,
                                                            device=scores.device))


def top_k(scores: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` best (score, item) per row, with -inf items reported as item -1.

    Shapes: scores (B, I) -> values (B, k), items (B, k). When a row has fewer than ``k`` items above
    -inf (the user has seen almost everything, or ``k > I``), the remaining slots are -1 so that no
    caller mistakes a masked item for a recommendation.
    """
    values, items = scores.topk(min(k, scores.shape[1]), dim=1)
    items = items.masked_fill_(values == float("-inf"), -1)
    if items.shape[1] < k:  # k > I: pad with empty slots rather than refuse
        padding = k - items.shape[1]
        items = torch.nn.functional.pad(items, (0, padding), value=-1)
        values = torch.nn.functional.pad(values, (0, padding), value=float("-inf"))
    return values, items


@torch.no_grad()
def ranked_items(
    user_embeddings: Tensor,
    item_embeddings: Tensor,
    users: Tensor,
    k: int,
    exclude: sp.csr_matrix | None = None,
    *,
    batch_size: int = 1024,
) -> Tensor:
    """Top-``k`` items by dot product for ``users``, skipping each user's ``exclude`` items.

    Shapes: user_embeddings (U, d), item_embeddings (I, d), users (B,) user ids, exclude (U, I)
    binary CSR (usually the training matrix) -> (B, k) item ids, best first, on the embeddings'
    device; -1 fills slots for which no unseen item is left.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    device = user_embeddings.device
    users = torch.as_tensor(users, dtype=torch.long).reshape(-1)
    if exclude is not None and exclude.shape != (user_embeddings.shape[0], item_embeddings.shape[0]):
        raise ValueError(f"exclude has shape {exclude.shape}, expected (users, items) = "
                         f"{(user_embeddings.shape[0], item_embeddings.shape[0])}")
    seen = None
    if exclude is not None:
        seen = SparseRows.from_csr(sp.csr_matrix(exclude)[users.numpy(force=True)], device)
    users = users.to(device)
    ranked = []
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        scores = user_embeddings[users[start:stop]] @ item_embeddings.T
        if seen is not None:
            mask_seen_(scores, *seen.block(start, stop))
        ranked.append(top_k(scores, k)[1])
    if not ranked:
        return torch.empty(0, k, dtype=torch.long, device=device)
    return torch.cat(ranked)
