"""Fixed-length item sequences for sequential recommenders (SASRec, GRU4Rec): training windows,
evaluation queries, and the seeded batches over them.

Id convention: a sequence tensor holds *sequence ids*, item id + 1, so that ``PADDING = 0`` is never
an item. :func:`to_sequence_ids` and :func:`from_sequence_ids` convert; an item embedding table for
these tensors has ``num_items + 1`` rows with row 0 the padding row. Sequences are *left*-padded:
the most recent item is always in the last column, where a causal model reads its prediction.

Everything here is vectorised: a window is a row of one flat gather ``items[end - L + column]``,
masked where it would reach before the start of its sequence, so building all windows of Amazon
Beauty (22,363 users) is one numpy expression, not a loop over users.

Training examples (:func:`sequence_examples`) follow SASRec's shifted targets: a train sequence
``s`` of length ``n >= 2`` gives inputs ``s[:-1]`` and targets ``s[1:]``. A sequence longer than
``max_length + 1`` is cut into windows of ``max_length`` targets counted from its end, so every
target is predicted exactly once per epoch and the last window holds the most recent items; an
earlier window's first input does not see the items before it (the cost of a bounded length).
Users with fewer than 2 train items have no target to predict and give no example.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from recforge.data.dataset import Interactions
from recforge.data.split import Split
from recforge.errors import ConfigError, RecforgeError

PADDING = 0


def to_sequence_ids(items: np.ndarray) -> np.ndarray:
    """Item ids (0-based) to sequence ids: ``items + 1``, as int64, so 0 stays free for padding."""
    return np.asarray(items, dtype=np.int64) + 1


def from_sequence_ids(ids: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Sequence ids back to item ids: ``ids - 1``; padding becomes -1 (mask it before indexing)."""
    return ids - 1


def left_padded_windows(
    indptr: np.ndarray, items: np.ndarray, rows: np.ndarray, max_length: int
) -> np.ndarray:
    """The last ``max_length`` items of each selected row of a CSR-form sequence set, left-padded.

    Args:
        indptr: (R + 1,) row boundaries; row ``r`` is ``items[indptr[r]:indptr[r + 1]]``, oldest first.
        items: (nnz,) item ids (0-based).
        rows: (Q,) rows to take, in the order wanted; repeats are allowed.
        max_length: columns of the result.

    Returns:
        (Q, max_length) int64 sequence ids (item + 1); a row shorter than ``max_length`` is preceded by
        ``PADDING``, an empty row is all padding.
    """
    _check_count("left_padded_windows", "max_length", max_length, least=1)
    rows = np.asarray(rows, dtype=np.int64)
    indptr = np.asarray(indptr, dtype=np.int64)
    return _gather_left_padded(np.asarray(items), indptr[rows], indptr[rows + 1], max_length)


def evaluation_queries(split: Split, fold: str, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """The users with a held-out item in ``fold`` and the history a model sees before it.

    For ``"valid"`` the history is the user's train sequence; for ``"test"`` it is train and valid
    merged in time order (:meth:`Interactions.chronological_order`: by timestamp, ties keep train
    before valid), so under leave-one-out the last element of a test query is the valid item.
    A user whose every interaction is held out still gets a query, all ``PADDING``: it counts in
    evaluation, as any cold user does, rather than being dropped silently.

    Returns:
        ``users`` (U',) int64 sorted user ids, ``sequences`` (U', max_length) int64 left-padded
        sequence ids (see :func:`left_padded_windows`).
    """
    if fold == "valid":
        history = split.train
    elif fold == "test":
        history = Interactions.concatenate([split.train, split.valid])
    else:
        raise ConfigError(f"evaluation_queries: fold must be 'valid' or 'test', got {fold!r}")
    _check_count("evaluation_queries", "max_length", max_length, least=1)
    users = np.unique(split.fold(fold).users).astype(np.int64)
    indptr, items = history.sequences(split.num_users)
    return users, left_padded_windows(indptr, items, users, max_length)


def latest_histories(split: Split, users: np.ndarray, max_length: int) -> np.ndarray:
    """The last ``max_length`` items of each user's whole known history (train, valid and test
    merged in time order, as :func:`evaluation_queries` merges train and valid): the query a
    deployed sequential model answers for a user today.

    Returns:
        (len(users), max_length) int64 left-padded sequence ids.
    """
    _check_count("latest_histories", "max_length", max_length, least=1)
    history = Interactions.concatenate([split.train, split.valid, split.test])
    indptr, items = history.sequences(split.num_users)
    return left_padded_windows(indptr, items, np.asarray(users, dtype=np.int64), max_length)


def prefix_windows(
    train: Interactions, num_users: int, max_length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every training prefix that has a next item: for user u with train sequence s (length n),
    steps t = 1..n-1, the window of the last ``max_length`` items of ``s[:t]``.

    Returns:
        ``users`` (P,) int64, ``steps`` (P,) int64 (t: how many items the prefix holds), and
        ``windows`` (P, max_length) int64 left-padded sequence ids, users in id order, steps rising.
    """
    _check_count("prefix_windows", "max_length", max_length, least=1)
    indptr, items = train.sequences(num_users)
    lengths = np.diff(indptr)
    counts = np.maximum(lengths - 1, 0)
    users = np.repeat(np.arange(num_users, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    steps = np.arange(len(users), dtype=np.int64) - first[users] + 1
    windows = _gather_left_padded(items, indptr[users], indptr[users] + steps, max_length)
    return users, steps, windows


@dataclass(frozen=True)
class SequenceExamples:
    """Shifted-target training windows, one row per window (see the module docstring).

    Attributes:
        users: (W,) int64 owner of each window; a user's windows are adjacent, oldest first.
        inputs: (W, L) int64 left-padded sequence ids.
        targets: (W, L) int64 the sequence id following each input; ``PADDING`` where the input is.
        steps: (W, L) int64 how many train items precede each target (its prefix length, the
            ``step`` of :func:`prefix_windows`, so a per-prefix teacher row is found by
            ``(user, step)``); 0 at padding.
        num_skipped_users: users of the id space with fewer than 2 train items (none included), who
            give no window.
    """

    users: np.ndarray
    inputs: np.ndarray
    targets: np.ndarray
    steps: np.ndarray
    num_skipped_users: int

    @property
    def max_length(self) -> int:
        return self.inputs.shape[1]

    def __len__(self) -> int:
        return len(self.users)

    def __repr__(self) -> str:
        return (
            f"SequenceExamples(windows={len(self)}, users={len(np.unique(self.users))}, "
            f"max_length={self.max_length}, skipped_users={self.num_skipped_users})"
        )


def sequence_examples(train: Interactions, num_users: int, max_length: int) -> SequenceExamples:
    """All training windows of ``max_length`` over the users' chronological train sequences."""
    _check_count("sequence_examples", "max_length", max_length, least=1)
    indptr, items = train.sequences(num_users)
    lengths = np.diff(indptr)
    num_targets = np.maximum(lengths - 1, 0)
    windows_per_user = -(-num_targets // max_length)  # ceil
    users = np.repeat(np.arange(num_users, dtype=np.int64), windows_per_user)
    first_window = np.cumsum(windows_per_user) - windows_per_user
    from_last = (windows_per_user[users] - 1) - (np.arange(len(users)) - first_window[users])
    # Targets occupy flat positions [indptr[u] + 1, indptr[u + 1]); windows are counted from the end.
    target_end = indptr[users + 1] - from_last * max_length
    target_begin = indptr[users] + 1
    # the prefix length of the item at each flat position: its offset within its user's sequence
    offsets = np.arange(len(items), dtype=np.int64) - np.repeat(indptr[:-1], lengths)
    return SequenceExamples(
        users=users,
        inputs=_gather_left_padded(items, target_begin - 1, target_end - 1, max_length),
        targets=_gather_left_padded(items, target_begin, target_end, max_length),
        steps=_gather_left_padded(offsets, target_begin, target_end, max_length, shift=0),
        num_skipped_users=int((lengths < 2).sum()),
    )


@dataclass(frozen=True)
class SequenceBatch:
    """One batch: ``users`` (B,), ``inputs`` (B, L), ``targets`` (B, L) with ``PADDING`` at padded
    positions, ``negatives`` (B, L, num_negatives) (``PADDING`` at padded positions), ``steps``
    (B, L) each target's prefix length (0 at padding); int64."""

    users: torch.Tensor
    inputs: torch.Tensor
    targets: torch.Tensor
    negatives: torch.Tensor
    steps: torch.Tensor

    def __len__(self) -> int:
        return len(self.users)

    def to(self, device: torch.device | str) -> SequenceBatch:
        """The same batch on ``device``."""
        return SequenceBatch(
            *(t.to(device) for t in (self.users, self.inputs, self.targets, self.negatives, self.steps))
        )


class SequenceBatches:
    """Shuffled batches of training windows, with optional uniform negatives per target position.

    A pass visits every window once, in an order (and with negatives) drawn from a generator seeded
    by ``SeedSequence(seed, spawn_key=(epoch,))``, so it depends on ``(seed, epoch)`` only, as in
    :class:`~recforge.data.sampling.TrainingBatches`. A pass yields epoch :attr:`epoch` and then
    advances it; :meth:`set_epoch` picks it explicitly.

    Negatives are uniform over the catalogue minus that position's target, drawn exactly (one draw
    from ``num_items - 1`` ids, shifted past the target) instead of by rejection. They may be other
    items of the user's history: excluding the whole history would cost a membership test per
    position, and SASRec's loss treats a negative as "not the next item", which such an item is.

    Args:
        examples: the windows, from :func:`sequence_examples`.
        num_items: size of the item catalogue (sequence ids run 1..num_items).
        batch_size: windows per batch.
        num_negatives: negatives per target position (0 for full-softmax objectives).
        seed: base seed of every epoch's generator.
        drop_last: leave out the final, smaller batch.
    """

    def __init__(
        self,
        examples: SequenceExamples,
        num_items: int,
        *,
        batch_size: int,
        num_negatives: int = 0,
        seed: int,
        drop_last: bool = False,
    ) -> None:
        _check_count("SequenceBatches", "batch_size", batch_size, least=1)
        _check_count("SequenceBatches", "num_negatives", num_negatives, least=0)
        if len(examples) and int(examples.targets.max()) > num_items:
            raise RecforgeError(
                f"SequenceBatches: a target is sequence id {int(examples.targets.max())}, "
                f"beyond the {num_items} items of the catalogue"
            )
        if num_negatives > 0 and num_items < 2:
            raise RecforgeError(
                f"SequenceBatches: negatives need at least 2 items (one besides the target), got {num_items}"
            )
        self.examples, self.num_items = examples, num_items
        self.batch_size, self.num_negatives = batch_size, num_negatives
        self.seed, self.drop_last = seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass yield epoch ``epoch`` (the passes after it follow on from there)."""
        if epoch < 0:
            raise ConfigError(f"SequenceBatches: epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        full, remainder = divmod(len(self.examples), self.batch_size)
        return full + (1 if remainder and not self.drop_last else 0)

    def __iter__(self) -> Iterator[SequenceBatch]:
        epoch, self.epoch = self.epoch, self.epoch + 1  # advance now, not when the generator starts
        return self._epoch_batches(epoch)

    def _epoch_batches(self, epoch: int) -> Iterator[SequenceBatch]:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(epoch,)))
        order = rng.permutation(len(self.examples))
        end = min(len(self) * self.batch_size, len(order))
        for start in range(0, end, self.batch_size):
            rows = order[start : start + self.batch_size]
            targets = self.examples.targets[rows]
            yield SequenceBatch(
                users=torch.from_numpy(self.examples.users[rows]),
                inputs=torch.from_numpy(self.examples.inputs[rows]),
                targets=torch.from_numpy(targets),
                negatives=torch.from_numpy(self._negatives(targets, rng)),
                steps=torch.from_numpy(self.examples.steps[rows]),
            )

    def _negatives(self, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(B, L, k) sequence ids uniform over 1..num_items without the target; 0 at padding."""
        shape = (*targets.shape, self.num_negatives)
        if self.num_negatives == 0:
            return np.zeros(shape, dtype=np.int64)
        # Uniform over the num_items - 1 ids that are not the target: draw from 1..num_items-1 and
        # step over the target, so no rejection loop and no draw ever equals it.
        negatives = rng.integers(1, self.num_items, size=shape, dtype=np.int64)
        negatives += negatives >= targets[..., None]
        negatives[targets == PADDING] = PADDING
        return negatives

    def __repr__(self) -> str:
        return (
            f"SequenceBatches(windows={len(self.examples)}, items={self.num_items}, "
            f"max_length={self.examples.max_length}, batch_size={self.batch_size}, "
            f"num_negatives={self.num_negatives}, batches={len(self)}, epoch={self.epoch})"
        )


def _gather_left_padded(
    items: np.ndarray, begin: np.ndarray, end: np.ndarray, max_length: int, *, shift: int = 1
) -> np.ndarray:
    """(Q, max_length) ``items[max(begin, end - L):end] + shift`` per query (sequence ids by
    default), left-padded with 0."""
    positions = end[:, None] + np.arange(-max_length, 0, dtype=np.int64)
    inside = positions >= begin[:, None]
    windows = np.zeros(positions.shape, dtype=np.int64)
    windows[inside] = np.asarray(items, dtype=np.int64)[positions[inside]] + shift
    return windows


def _check_count(where: str, name: str, value: object, *, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ConfigError(f"{where}: {name} must be an int >= {least}, got {value!r}")
