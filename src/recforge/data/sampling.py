"""Negative sampling and the (user, positive, negatives) batches that pairwise losses train on.

Sampling is uniform over the items a user has not interacted with, by vectorized rejection: draw
every negative at once, test all of them for membership in the positives with one ``searchsorted``
over sorted ``user * num_items + item`` keys, redraw only the rejected ones, repeat. The loop runs
over rounds, never over users: each round redraws only the draws that hit a positive (a fraction
about equal to the users' density), so a few rounds suffice. On Gowalla's train matrix (29,858 ×
40,981, 810k positives) one negative per positive takes 60-80 ms on one CPU core.

:class:`TrainingBatches` shuffles the training pairs each epoch from a generator seeded by
``(seed, epoch)`` alone, so epoch 7 is the same whether a run got there directly or resumed from
a checkpoint written after epoch 6.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from recforge.data.dataset import Interactions
from recforge.errors import ConfigError, RecforgeError

# Negatives drawn per sampling call in TrainingBatches: large enough that the per-call cost is
# amortised over many batches, small enough that memory stays bounded (8 MiB of int64) whatever
# num_negatives is.
_NEGATIVES_PER_DRAW = 1 << 20


def sample_negatives(
    positives: sp.csr_matrix, users: np.ndarray, num_negatives: int, rng: np.random.Generator
) -> np.ndarray:
    """For each of ``users``, ``num_negatives`` items drawn uniformly from those not in its row.

    Args:
        positives: user × item matrix; every stored entry is a positive (values are ignored).
        users: (B,) user ids (rows of ``positives``); repeats are allowed and sampled independently.
        num_negatives: draws per user, with replacement.
        rng: the generator to draw from; the result is a function of its state.

    Returns:
        (B, num_negatives) int64 item ids, none of them a positive of its row's user.

    Raises:
        RecforgeError: a user interacted with every item, so it has no negative to draw.
    """
    return _NegativeSampler(positives).sample(users, num_negatives, rng)


class _NegativeSampler:
    """The positives of a CSR matrix as sorted global keys, for bulk membership tests.

    Built once per matrix (O(nnz)); :class:`TrainingBatches` keeps one for all its epochs.
    """

    def __init__(self, positives: sp.csr_matrix) -> None:
        positives = sp.csr_matrix(positives)
        if not positives.has_canonical_format:  # keys must be sorted and unique for searchsorted
            positives = positives.copy()
            positives.sum_duplicates()
        self.num_users, self.num_items = positives.shape
        self.row_lengths = np.diff(positives.indptr).astype(np.int64)
        rows = np.repeat(np.arange(self.num_users, dtype=np.int64), self.row_lengths)
        self.keys = rows * np.int64(self.num_items) + positives.indices.astype(np.int64)

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each (user, item) pair is a positive; a boolean array like ``users``."""
        if len(self.keys) == 0:
            return np.zeros(len(users), dtype=bool)
        queries = users * np.int64(self.num_items) + items
        # Binary searches for queries in random order miss the cache at every step; sorted, they walk
        # the keys in order. Sorting first is ~5x faster on Gowalla (55 ms instead of 260 ms for 810k).
        order = np.argsort(queries)
        sorted_queries = queries[order]
        position = np.searchsorted(self.keys, sorted_queries)
        np.minimum(position, len(self.keys) - 1, out=position)
        found = np.empty(len(queries), dtype=bool)
        found[order] = self.keys[position] == sorted_queries
        return found

    def check_users(self, users: np.ndarray) -> None:
        """Refuse ids outside the matrix and users with no negative left (rejection would never end)."""
        if len(users) == 0:
            return
        if users.min() < 0 or users.max() >= self.num_users:
            raise RecforgeError(
                f"negative sampling: user ids must lie in [0, {self.num_users}), got "
                f"{int(users.min())}..{int(users.max())}"
            )
        saturated = np.unique(users[self.row_lengths[users] >= self.num_items])
        if len(saturated):
            listed = ", ".join(str(u) for u in saturated[:5]) + (", ..." if len(saturated) > 5 else "")
            raise RecforgeError(
                f"negative sampling: user {listed} interacted with all {self.num_items} items, so no "
                "negative item exists for them; drop such users (e.g. with a k-core filter on items)"
            )

    def sample(self, users: np.ndarray, num_negatives: int, rng: np.random.Generator) -> np.ndarray:
        _check_count("negative sampling", "num_negatives", num_negatives, least=0)
        users = np.asarray(users, dtype=np.int64)
        self.check_users(users)
        negatives = rng.integers(0, self.num_items, size=(len(users), num_negatives), dtype=np.int64)
        flat = negatives.reshape(-1)
        owners = np.repeat(users, num_negatives)
        pending = np.flatnonzero(self.contains(owners, flat))
        while len(pending):
            flat[pending] = rng.integers(0, self.num_items, size=len(pending), dtype=np.int64)
            pending = pending[self.contains(owners[pending], flat[pending])]
        return negatives


@dataclass(frozen=True)
class TripletBatch:
    """One training batch: ``users`` (B,), ``positives`` (B,), ``negatives`` (B, num_negatives), int64."""

    users: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor

    def __len__(self) -> int:
        return len(self.users)

    def to(self, device: torch.device | str) -> TripletBatch:
        """The same batch on ``device``."""
        return TripletBatch(self.users.to(device), self.positives.to(device), self.negatives.to(device))


class TrainingBatches:
    """Shuffled (user, positive item, sampled negatives) batches over the training interactions.

    Each pass visits every training pair exactly once, in an order and with negatives drawn from a
    generator seeded by ``SeedSequence(seed, spawn_key=(epoch,))``: a pass depends on ``(seed,
    epoch)`` only, never on earlier passes. A pass yields epoch :attr:`epoch` and then advances it
    by one; call :meth:`set_epoch` to pick the epoch explicitly (on resume, or before every epoch).

    Negatives are drawn for many batches at once (about a million per draw, so memory stays
    bounded): one rejection pass over a large block costs far less than hundreds of small ones.

    Args:
        train: the training interactions (one pair per row; a repeated row is visited as often as
            it occurs), or a user × item CSR matrix (one pair per stored entry).
        num_items: size of the item catalogue negatives are drawn from.
        batch_size: pairs per batch.
        num_negatives: negatives per pair (0 for objectives that need none, e.g. in-batch softmax).
        seed: base seed of every epoch's generator.
        drop_last: leave out the final, smaller batch.
    """

    def __init__(
        self,
        train: Interactions | sp.csr_matrix,
        num_items: int,
        *,
        batch_size: int,
        num_negatives: int = 1,
        seed: int,
        drop_last: bool = False,
    ) -> None:
        _check_count("TrainingBatches", "batch_size", batch_size, least=1)
        _check_count("TrainingBatches", "num_negatives", num_negatives, least=0)
        if isinstance(train, Interactions):
            self.users = train.users.astype(np.int64, copy=False)
            self.items = train.items.astype(np.int64, copy=False)
            if len(self.items) and (self.items.min() < 0 or self.items.max() >= num_items):
                raise RecforgeError(f"TrainingBatches: item ids must lie in [0, {num_items})")
            num_users = int(self.users.max()) + 1 if len(self.users) else 0
            positives = train.to_csr(num_users, num_items)
        else:
            positives = sp.csr_matrix(train)
            if positives.shape[1] != num_items:
                raise RecforgeError(
                    f"TrainingBatches: the matrix has {positives.shape[1]} item columns, "
                    f"num_items is {num_items}"
                )
            if not positives.has_canonical_format:
                positives = positives.copy()
                positives.sum_duplicates()
            self.users = np.repeat(np.arange(positives.shape[0], dtype=np.int64), np.diff(positives.indptr))
            self.items = positives.indices.astype(np.int64)
        self.num_items, self.batch_size, self.num_negatives = num_items, batch_size, num_negatives
        self.seed, self.drop_last = seed, drop_last
        self.epoch = 0
        self._sampler = _NegativeSampler(positives)
        if num_negatives > 0:  # fail at construction, not in the middle of an epoch
            self._sampler.check_users(np.unique(self.users))
        batches_per_draw = max(1, _NEGATIVES_PER_DRAW // (batch_size * max(num_negatives, 1)))
        self._rows_per_draw = batches_per_draw * batch_size

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass yield epoch ``epoch`` (the passes after it follow on from there)."""
        if epoch < 0:
            raise ConfigError(f"TrainingBatches: epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        full, remainder = divmod(len(self.users), self.batch_size)
        return full + (1 if remainder and not self.drop_last else 0)

    def __iter__(self) -> Iterator[TripletBatch]:
        epoch, self.epoch = self.epoch, self.epoch + 1  # advance now, not when the generator starts
        return self._epoch_batches(epoch)

    def _epoch_batches(self, epoch: int) -> Iterator[TripletBatch]:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(epoch,)))
        order = rng.permutation(len(self.users))
        end = min(len(self) * self.batch_size, len(order))
        for start in range(0, end, self._rows_per_draw):
            rows = order[start : min(start + self._rows_per_draw, end)]
            users = self.users[rows]
            negatives = self._sampler.sample(users, self.num_negatives, rng)
            users_t, positives_t = torch.from_numpy(users), torch.from_numpy(self.items[rows])
            negatives_t = torch.from_numpy(negatives)
            for offset in range(0, len(rows), self.batch_size):
                batch = slice(offset, offset + self.batch_size)
                yield TripletBatch(users_t[batch], positives_t[batch], negatives_t[batch])

    def __repr__(self) -> str:
        return (
            f"TrainingBatches(pairs={len(self.users)}, items={self.num_items}, batch_size={self.batch_size}, "
            f"num_negatives={self.num_negatives}, batches={len(self)}, epoch={self.epoch})"
        )


def _check_count(where: str, name: str, value: object, *, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ConfigError(f"{where}: {name} must be an int >= {least}, got {value!r}")
