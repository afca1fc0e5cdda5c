"""Tests for recforge.data.sequences: padded windows, shifted targets, evaluation queries, batches."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from recforge.data.dataset import Dataset, Interactions
from recforge.data.registry import load_dataset
from recforge.data.sequences import (
    PADDING,
    SequenceBatch,
    SequenceBatches,
    evaluation_queries,
    from_sequence_ids,
    left_padded_windows,
    sequence_examples,
    to_sequence_ids,
)
from recforge.data.split import Split
from recforge.data.splitting import leave_one_out_split
from recforge.errors import ConfigError, RecforgeError


def interactions(sequences: dict[int, list[int]]) -> Interactions:
    """Interactions in file order from ``{user: [items oldest first]}`` (no timestamps)."""
    users = [user for user, items in sequences.items() for _ in items]
    items = [item for sequence in sequences.values() for item in sequence]
    return Interactions(users=np.array(users, dtype=np.int64), items=np.array(items, dtype=np.int64))


def random_interactions(seed: int, num_users: int = 40, num_items: int = 30) -> Interactions:
    """Random lengths 0..25, including users with 0 and 1 items, with many timestamp ties."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 26, size=num_users)
    users = np.repeat(np.arange(num_users), lengths)
    rng.shuffle(users)
    items = rng.integers(0, num_items, size=len(users))
    timestamps = rng.integers(0, 5, size=len(users))
    return Interactions(users=users.astype(np.int64), items=items.astype(np.int64), timestamps=timestamps)


# -- slow per-user references: plain Python, plainly right -------------------------------------------------


def reference_sequences(train: Interactions, num_users: int) -> list[list[int]]:
    rows = sorted(range(len(train)), key=lambda r: (
        train.users[r], 0 if train.timestamps is None else train.timestamps[r], r))
    per_user: list[list[int]] = [[] for _ in range(num_users)]
    for row in rows:
        per_user[int(train.users[row])].append(int(train.items[row]))
    return per_user


def reference_pad(items: list[int], length: int) -> list[int]:
    kept = [item + 1 for item in items][-length:] if items else []
    return [PADDING] * (length - len(kept)) + kept


def reference_examples(train: Interactions, num_users: int, length: int) -> tuple[list, list, list]:
    users, inputs, targets = [], [], []
    for user, sequence in enumerate(reference_sequences(train, num_users)):
        windows = []
        end = len(sequence)
        while end >= 2:  # target positions [max(1, end - length), end)
            begin = max(1, end - length)
            windows.append((sequence[begin - 1 : end - 1], sequence[begin:end]))
            end = begin
        for window_inputs, window_targets in reversed(windows):
            users.append(user)
            inputs.append(reference_pad(window_inputs, length))
            targets.append(reference_pad(window_targets, length))
    return users, inputs, targets


# -- ids and left_padded_windows ---------------------------------------------------------------------------


def test_sequence_ids_shift_by_one_so_zero_is_padding():
    assert to_sequence_ids(np.array([0, 4])).tolist() == [1, 5]
    assert to_sequence_ids(np.array([0, 4])).dtype == np.int64
    assert from_sequence_ids(np.array([1, 5, PADDING])).tolist() == [0, 4, -1]
    assert from_sequence_ids(torch.tensor([1, 5])).tolist() == [0, 4]


def test_left_padded_windows_by_hand():
    indptr, items = np.array([0, 5, 7, 7, 8]), np.array([10, 11, 12, 13, 14, 20, 21, 30])
    windows = left_padded_windows(indptr, items, np.array([0, 1, 2, 3, 0]), max_length=3)
    assert windows.dtype == np.int64
    assert windows.tolist() == [
        [13, 14, 15],  # the last 3 of 5
        [0, 21, 22],
        [0, 0, 0],  # an empty row is all padding
        [0, 0, 31],
        [13, 14, 15],  # rows may repeat
    ]


def test_left_padded_windows_of_no_rows_and_bad_length():
    indptr, items = np.array([0, 2]), np.array([1, 2])
    assert left_padded_windows(indptr, items, np.array([], dtype=np.int64), 4).shape == (0, 4)
    with pytest.raises(ConfigError, match=r"left_padded_windows: max_length must be an int >= 1, got 0"):
        left_padded_windows(indptr, items, np.array([0]), 0)


# -- sequence_examples -------------------------------------------------------------------------------------


def test_examples_by_hand():
    train = interactions({0: [0, 1, 2, 3, 4], 1: [5, 6], 2: [7]})
    examples = sequence_examples(train, num_users=4, max_length=2)
    assert examples.users.tolist() == [0, 0, 1]
    assert examples.inputs.tolist() == [[1, 2], [3, 4], [0, 6]]
    assert examples.targets.tolist() == [[2, 3], [4, 5], [0, 7]]
    assert examples.steps.tolist() == [[1, 2], [3, 4], [0, 1]]  # prefix length of each target
    assert examples.num_skipped_users == 2  # user 2 has one item, user 3 none
    assert repr(examples) == "SequenceExamples(windows=3, users=2, max_length=2, skipped_users=2)"


def test_examples_use_time_order_and_keep_file_order_for_ties():
    train = Interactions(
        users=np.array([0, 0, 0, 0]), items=np.array([7, 8, 9, 6]), timestamps=np.array([5, 3, 3, 1])
    )
    examples = sequence_examples(train, num_users=1, max_length=4)
    # time order 6 (t=1), 8 and 9 (t=3, file order), 7 (t=5)
    assert examples.inputs.tolist() == [[0, 7, 9, 10]]
    assert examples.targets.tolist() == [[0, 9, 10, 8]]


def test_windows_of_a_long_sequence_cover_every_target_once_and_in_order():
    items = list(range(23))
    examples = sequence_examples(interactions({0: items}), num_users=1, max_length=5)
    assert len(examples) == 5  # ceil(22 targets / 5)
    flat_targets = examples.targets[examples.targets != PADDING]
    assert flat_targets.tolist() == [item + 1 for item in items[1:]]
    flat_inputs = examples.inputs[examples.inputs != PADDING]
    assert flat_inputs.tolist() == [item + 1 for item in items[:-1]]
    assert examples.targets[-1].tolist() == [19, 20, 21, 22, 23]  # the last window is the most recent
    assert (examples.targets[0] == PADDING).sum() == 3  # only the oldest window is padded
    assert (examples.targets[1:] != PADDING).all()


def test_exactly_max_length_plus_one_items_make_one_full_window():
    examples = sequence_examples(interactions({0: [0, 1, 2, 3]}), num_users=1, max_length=3)
    assert examples.inputs.tolist() == [[1, 2, 3]]
    assert examples.targets.tolist() == [[2, 3, 4]]


@pytest.mark.parametrize(("seed", "max_length"), [(0, 1), (1, 3), (2, 7), (3, 50)])
def test_examples_match_the_per_user_reference(seed, max_length):
    train = random_interactions(seed)
    examples = sequence_examples(train, num_users=40, max_length=max_length)
    users, inputs, targets = reference_examples(train, 40, max_length)
    assert examples.users.tolist() == users
    assert examples.inputs.tolist() == inputs
    assert examples.targets.tolist() == targets
    lengths = np.bincount(train.users, minlength=40)
    assert examples.num_skipped_users == int((lengths < 2).sum())


def test_left_padded_windows_match_the_reference():
    train = random_interactions(4)
    indptr, items = train.sequences(40)
    rows = np.random.default_rng(4).integers(0, 40, size=100)
    expected = [reference_pad(reference_sequences(train, 40)[row], 6) for row in rows]
    assert left_padded_windows(indptr, items, rows, 6).tolist() == expected


# -- evaluation_queries ------------------------------------------------------------------------------------


def small_dataset() -> Dataset:
    # user 0: 5 items, user 1: 3 items, user 2: 2 items (all in train), user 3: timestamp ties
    inter = Interactions(
        users=np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3]),
        items=np.array([0, 1, 2, 3, 4, 5, 6, 7, 1, 2, 8, 9, 0, 1]),
        timestamps=np.array([1, 2, 3, 4, 5, 1, 2, 3, 1, 2, 7, 7, 7, 7]),
    )
    return Dataset("tiny", inter, user_ids=np.arange(4).astype(str), item_ids=np.arange(10).astype(str))


def test_evaluation_queries_under_leave_one_out():
    split = leave_one_out_split(small_dataset())
    users, sequences = evaluation_queries(split, "valid", max_length=4)
    assert users.tolist() == [0, 1, 3]  # user 2 has too few items to hold any out
    assert sequences.tolist() == [[0, 1, 2, 3], [0, 0, 0, 6], [0, 0, 9, 10]]
    users, sequences = evaluation_queries(split, "test", max_length=4)
    assert users.tolist() == [0, 1, 3]
    # the history ends with the valid item: 3 for user 0, 6 for user 1, 0 for user 3 (tie, file order)
    assert sequences.tolist() == [[1, 2, 3, 4], [0, 0, 6, 7], [0, 9, 10, 1]]
    assert split.valid.items[split.valid.users == 0].tolist() == [3]


def test_test_queries_keep_train_before_valid_on_equal_timestamps():
    split = leave_one_out_split(small_dataset())
    _, sequences = evaluation_queries(split, "test", max_length=10)
    assert from_sequence_ids(sequences[2][sequences[2] != PADDING]).tolist() == [8, 9, 0]


def test_a_user_with_everything_held_out_gets_an_all_padding_query():
    train = interactions({0: [0, 1]})
    held_out = interactions({1: [2]})
    split = Split(num_users=2, num_items=3, train=train, valid=held_out, test=interactions({0: [2]}),
                  protocol="hand-made")
    users, sequences = evaluation_queries(split, "valid", max_length=3)
    assert users.tolist() == [1]
    assert sequences.tolist() == [[0, 0, 0]]


def test_evaluation_queries_refuse_the_train_fold():
    split = leave_one_out_split(small_dataset())
    with pytest.raises(ConfigError, match=r"evaluation_queries: fold must be 'valid' or 'test', got 'train'"):
        evaluation_queries(split, "train", max_length=4)


# -- SequenceBatches ---------------------------------------------------------------------------------------


def batches(seed: int = 0, **options) -> SequenceBatches:
    examples = sequence_examples(random_interactions(seed), num_users=40, max_length=6)
    return SequenceBatches(examples, 30, **{"batch_size": 16, "seed": 7, **options})


def epoch_arrays(loader: SequenceBatches) -> list[tuple[np.ndarray, ...]]:
    return [(b.users.numpy(), b.inputs.numpy(), b.targets.numpy(), b.negatives.numpy()) for b in loader]


def test_a_pass_visits_every_window_once_in_batches():
    loader = batches(num_negatives=2)
    examples = loader.examples
    seen = list(loader)
    assert len(seen) == len(loader) == -(-len(examples) // 16)
    assert all(isinstance(batch, SequenceBatch) for batch in seen)
    assert seen[0].inputs.shape == (16, 6)
    assert seen[0].negatives.shape == (16, 6, 2)
    assert seen[0].inputs.dtype == seen[0].targets.dtype == seen[0].negatives.dtype == torch.int64
    rows = sorted(zip(*(torch.cat([getattr(b, name) for b in seen]).tolist()
                        for name in ("users", "inputs", "targets")), strict=True))
    expected = sorted(zip(examples.users.tolist(), examples.inputs.tolist(), examples.targets.tolist(),
                          strict=True))
    assert rows == expected


def test_drop_last_leaves_out_the_smaller_batch():
    loader = batches(drop_last=True)
    assert len(loader) == len(loader.examples) // 16
    assert all(len(batch) == 16 for batch in loader)


def test_epochs_are_reproducible_and_differ():
    first, second = batches(num_negatives=3), batches(num_negatives=3)
    epoch_0, epoch_1 = epoch_arrays(first), epoch_arrays(first)
    second.set_epoch(1)
    replayed = epoch_arrays(second)  # epoch 1 without having run epoch 0
    assert len(epoch_1) == len(replayed)
    for batch, batch_again in zip(epoch_1, replayed, strict=True):
        assert all(np.array_equal(a, b) for a, b in zip(batch, batch_again, strict=True))
    assert not np.array_equal(epoch_0[0][0], epoch_1[0][0])
    assert first.epoch == 2


def test_negatives_never_equal_their_target_and_are_zero_at_padding():
    loader = batches(seed=5, num_negatives=4)
    for batch in loader:
        targets, negatives = batch.targets[..., None], batch.negatives
        padded = (targets == PADDING).expand_as(negatives)
        assert (negatives[padded] == PADDING).all()
        assert (negatives[~padded] != targets.expand_as(negatives)[~padded]).all()
        assert negatives[~padded].min() >= 1
        assert negatives[~padded].max() <= 30


def test_negatives_are_uniform_over_the_other_items():
    train = interactions({0: [0, 2]})  # one target, sequence id 3
    examples = sequence_examples(train, num_users=1, max_length=1)
    loader = SequenceBatches(examples, 5, batch_size=1, num_negatives=50_000, seed=0)
    counts = np.bincount(next(iter(loader)).negatives.reshape(-1).numpy(), minlength=6)
    assert counts[[0, 3]].tolist() == [0, 0]
    allowed = counts[[1, 2, 4, 5]]
    chi_square = ((allowed - 12_500) ** 2 / 12_500).sum()
    assert chi_square < 16.27  # 99.9% quantile of chi-square with 3 degrees of freedom


def test_no_negatives_gives_an_empty_last_axis_and_repr():
    loader = batches()
    assert next(iter(loader)).negatives.shape == (16, 6, 0)
    assert repr(loader) == (
        f"SequenceBatches(windows={len(loader.examples)}, items=30, max_length=6, batch_size=16, "
        f"num_negatives=0, batches={len(loader)}, epoch=1)"
    )


def test_batch_moves_to_a_device():
    batch = next(iter(batches(num_negatives=1))).to("cpu")
    assert batch.inputs.device.type == "cpu"
    assert len(batch) == 16


def test_errors_name_the_fault():
    examples = sequence_examples(interactions({0: [0, 4]}), num_users=1, max_length=2)
    with pytest.raises(ConfigError, match=r"SequenceBatches: batch_size must be an int >= 1, got 0"):
        SequenceBatches(examples, 5, batch_size=0, seed=0)
    with pytest.raises(ConfigError, match=r"SequenceBatches: num_negatives must be an int >= 0, got -1"):
        SequenceBatches(examples, 5, batch_size=1, num_negatives=-1, seed=0)
    with pytest.raises(RecforgeError, match=r"a target is sequence id 5, beyond the 4 items"):
        SequenceBatches(examples, 4, batch_size=1, seed=0)
    one_item = sequence_examples(interactions({0: [0, 0]}), num_users=1, max_length=2)
    with pytest.raises(RecforgeError, match=r"negatives need at least 2 items"):
        SequenceBatches(one_item, 1, batch_size=1, num_negatives=1, seed=0)
    with pytest.raises(ConfigError, match=r"SequenceBatches: epoch must be >= 0, got -1"):
        SequenceBatches(examples, 5, batch_size=1, seed=0).set_epoch(-1)


# -- the real data -----------------------------------------------------------------------------------------


@pytest.mark.integration
def test_amazon_beauty_sequence_path(shared_data):
    split = leave_one_out_split(load_dataset("amazon-beauty", root=shared_data))
    started = time.perf_counter()
    examples = sequence_examples(split.train, split.num_users, max_length=50)
    loader = SequenceBatches(examples, split.num_items, batch_size=256, num_negatives=1, seed=0)
    num_windows = sum(len(batch) for batch in loader)
    valid_users, valid_queries = evaluation_queries(split, "valid", max_length=50)
    test_users, test_queries = evaluation_queries(split, "test", max_length=50)
    elapsed_s = time.perf_counter() - started

    lengths = np.bincount(split.train.users, minlength=split.num_users)
    assert split.num_users == 22_363
    assert examples.num_skipped_users == 0  # 5-core: every user keeps at least 3 train items
    assert len(examples) == num_windows == int((-(-(lengths - 1) // 50)).sum())
    assert (examples.targets != PADDING).sum() == len(split.train) - split.num_users
    assert examples.inputs.shape == examples.targets.shape == (len(examples), 50)
    assert len(valid_users) == len(test_users) == 22_363
    assert valid_queries.shape == test_queries.shape == (22_363, 50)
    assert (test_queries[:, -1] == to_sequence_ids(split.valid.items[np.argsort(split.valid.users)])).all()
    assert elapsed_s < 3.0


def test_example_steps_locate_each_target_in_its_train_sequence():
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, 12, size=9)
    train = interactions({u: rng.integers(0, 20, size=n).tolist() for u, n in enumerate(lengths)})
    examples = sequence_examples(train, num_users=9, max_length=4)
    indptr, items = train.sequences(9)
    window, column = np.nonzero(examples.targets)
    users, steps = examples.users[window], examples.steps[window, column]
    assert (steps >= 1).all()
    assert (items[indptr[users] + steps] + 1 == examples.targets[window, column]).all()
    assert (examples.steps[examples.targets == 0] == 0).all()
    # every (user, step) appears once: one teacher row per target, as prefix_windows lists them
    distinct = set(zip(users.tolist(), steps.tolist(), strict=True))
    assert len(distinct) == len(users) == int(np.maximum(lengths - 1, 0).sum())
