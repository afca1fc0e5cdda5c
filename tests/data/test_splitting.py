"""Tests for recforge.data.splitting: every protocol partitions the data as its docstring says."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from recforge.data.dataset import Dataset, Fold, Interactions
from recforge.data.split import Split
from recforge.data.splitting import (
    SPLITTERS,
    given_split,
    leave_one_out_split,
    load_or_create_split,
    random_split,
    split_dataset,
    temporal_split,
)
from recforge.errors import ConfigError, DataFormatError, RecforgeError, UnknownNameError


def make_dataset(users, items, timestamps=None, *, fold=None, num_users=None, num_items=None) -> Dataset:
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    num_users = int(users.max()) + 1 if num_users is None else num_users
    num_items = int(items.max()) + 1 if num_items is None else num_items
    return Dataset(
        name="toy",
        interactions=Interactions(users, items, None if timestamps is None else np.asarray(timestamps)),
        user_ids=np.arange(num_users).astype(str),
        item_ids=np.arange(num_items).astype(str),
        fold=None if fold is None else np.asarray(fold, dtype=np.int64),
    )


def row_id_dataset(seed: int = 0, num_users: int = 60, max_per_user: int = 40) -> Dataset:
    """Users with 1..max_per_user interactions each (every count present), shuffled file order;
    the timestamp of row r is r, so a fold's timestamps say which rows it holds."""
    rng = np.random.default_rng(seed)
    counts = (np.arange(num_users) % max_per_user) + 1
    users = rng.permutation(np.repeat(np.arange(num_users), counts))
    items = rng.integers(0, 500, size=len(users))
    return make_dataset(users, items, np.arange(len(users)), num_items=500)


def rows_of(split: Split) -> dict[str, np.ndarray]:
    return {name: split.fold(name).timestamps for name in ("train", "valid", "test")}


def assert_partition(split: Split, num_rows: int) -> None:
    """Every input row lands in exactly one fold, and each fold keeps file order."""
    rows = rows_of(split)
    assert np.array_equal(np.sort(np.concatenate(list(rows.values()))), np.arange(num_rows))
    for fold_rows in rows.values():
        assert np.all(np.diff(fold_rows) > 0)


def half_up(n: int, ratio: float) -> int:
    """floor(n * ratio + 1/2) computed exactly on the decimal ratio."""
    return int(n * Fraction(str(ratio)) + Fraction(1, 2))


# -- random ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.0, 0.4), (0.5, 0.3, 0.2)])
def test_random_split_counts_follow_the_documented_rounding(ratios):
    dataset = row_id_dataset()
    split = random_split(dataset, ratios=ratios, seed=7)
    assert_partition(split, len(dataset.interactions))
    counts = np.bincount(dataset.interactions.users, minlength=dataset.num_users)
    for user, n in enumerate(counts.tolist()):
        expected_test = min(half_up(n, ratios[2]), n - 1)
        expected_valid = min(half_up(n, ratios[1]), n - 1 - expected_test)
        got = [int((split.fold(name).users == user).sum()) for name in ("train", "valid", "test")]
        expected = [n - expected_test - expected_valid, expected_valid, expected_test]
        assert got == expected, f"user {user}, n={n}"


def test_random_split_rounds_halves_up_and_keeps_one_in_train():
    # 5 * 0.1 = 0.5 rounds up to 1 (numpy's round would give 0); 15 * 0.1 = 1.5000000000000002 -> 2;
    # 2 interactions at 0.5/0.25/0.25: 0.5 rounds up for each fold, but one must stay in train
    dataset = make_dataset(np.repeat([0, 1], [5, 15]), np.arange(20), np.arange(20))
    split = random_split(dataset, ratios=(0.8, 0.1, 0.1), seed=0)
    assert np.bincount(split.test.users, minlength=2).tolist() == [1, 2]
    assert np.bincount(split.valid.users, minlength=2).tolist() == [1, 2]
    pair = random_split(make_dataset([0, 0], [0, 1]), ratios=(0.5, 0.25, 0.25), seed=0)
    assert (len(pair.train), len(pair.valid), len(pair.test)) == (1, 0, 1)
    single = random_split(make_dataset([0], [0]), ratios=(0.1, 0.1, 0.8), seed=0)
    assert (len(single.train), len(single.valid), len(single.test)) == (1, 0, 0)
    # 90 * 0.35 is 31.499999999999996 in floating point, but stands for 31.5: it rounds up to 32
    ninety = random_split(make_dataset(np.zeros(90), np.arange(90)), ratios=(0.3, 0.35, 0.35), seed=0)
    assert (len(ninety.train), len(ninety.valid), len(ninety.test)) == (26, 32, 32)


def test_random_split_is_seeded():
    dataset = row_id_dataset()
    first = random_split(dataset, ratios=(0.8, 0.1, 0.1), seed=3)
    again = random_split(dataset, ratios=(0.8, 0.1, 0.1), seed=3)
    other = random_split(dataset, ratios=(0.8, 0.1, 0.1), seed=4)
    assert first.content_hash == again.content_hash
    assert first.content_hash != other.content_hash
    assert "seed 3" in first.protocol
    assert first.protocol.startswith("random per-user split 80/10/10 train/valid/test, seed 3")


def test_random_split_picks_each_row_with_equal_chance():
    # one user with 10 interactions, 1 to test: over 2000 seeds each row is test about 200 times
    dataset = make_dataset(np.zeros(10), np.arange(10), np.arange(10))
    hits = np.zeros(10)
    for seed in range(2000):
        hits[random_split(dataset, ratios=(0.8, 0.1, 0.1), seed=seed).test.timestamps] += 1
    assert hits.sum() == 2000
    chi_square = ((hits - 200) ** 2 / 200).sum()
    assert chi_square < 27.9  # 99.9% quantile of chi-square with 9 degrees of freedom


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ((0.8, 0.1), r"ratios must be \(train, valid, test\)"),
        ((0.9, 0.2, -0.1), "ratios must be >= 0"),
        ((0.8, 0.1, 0.2), "ratios must sum to 1"),
        ((0.0, 0.5, 0.5), "the train ratio must be > 0"),
    ],
)
def test_bad_ratios_are_config_errors(ratios, message):
    with pytest.raises(ConfigError, match=message):
        split_dataset(row_id_dataset(), "random", ratios=ratios, seed=0)
    with pytest.raises(ConfigError, match=message):
        temporal_split(row_id_dataset(), ratios=ratios)


def test_random_split_needs_an_int_seed():
    with pytest.raises(ConfigError, match="split protocol 'random' needs seed"):
        split_dataset(row_id_dataset(), "random")
    with pytest.raises(ConfigError, match="needs an int seed so the split can be reproduced, got None"):
        random_split(row_id_dataset(), seed=None)  # type: ignore[arg-type]


# -- leave one out ---------------------------------------------------------------------------------------


def reference_leave_one_out(dataset: Dataset) -> np.ndarray:
    """Fold of each row, one user at a time in plain Python."""
    inter = dataset.interactions
    fold = np.full(len(inter), int(Fold.TRAIN))
    for user in set(inter.users.tolist()):
        rows = [r for r in range(len(inter)) if inter.users[r] == user]
        if inter.timestamps is not None:
            rows.sort(key=lambda r: (inter.timestamps[r], r))
        if len(rows) >= 3:
            fold[rows[-1]], fold[rows[-2]] = Fold.TEST, Fold.VALID
    return fold


@pytest.mark.parametrize("with_timestamps", [True, False])
def test_leave_one_out_matches_reference(with_timestamps):
    rng = np.random.default_rng(5)
    users = rng.integers(0, 50, size=400)
    times = rng.integers(0, 20, size=400) if with_timestamps else None  # ties galore
    dataset = make_dataset(users, np.arange(400), times, num_users=52)  # users 50, 51 have none
    split = leave_one_out_split(dataset)
    expected = reference_leave_one_out(dataset)
    for name, fold in (("train", Fold.TRAIN), ("valid", Fold.VALID), ("test", Fold.TEST)):
        assert split.fold(name).items.tolist() == np.flatnonzero(expected == fold).tolist()
    assert len(split.test) == len(set(split.test.users.tolist()))  # one test item per user
    basis = "timestamp (ties keep file order)" if with_timestamps else "file order (no timestamps)"
    assert basis in split.protocol


def test_leave_one_out_by_hand():
    # user 0 (rows 0, 1, 3, 4 at t = 3, 1, 2, 3) by time: rows 1, 3, 0, 4 (the tie at t=3 keeps file
    # order), so test is row 4 and valid row 0. User 1 has two interactions and stays in train.
    dataset = make_dataset([0, 0, 1, 0, 0, 1], [10, 11, 12, 13, 14, 15], [3, 1, 5, 2, 3, 4])
    split = leave_one_out_split(dataset)
    assert split.test.items.tolist() == [14]
    assert split.valid.items.tolist() == [10]
    assert split.train.items.tolist() == [11, 12, 13, 15]
    assert split.protocol.endswith("1 users with fewer than 3 interactions kept entirely in train")


# -- temporal --------------------------------------------------------------------------------------------


def test_temporal_split_cuts_at_global_quantiles():
    rng = np.random.default_rng(1)
    times = rng.permutation(1000) * 10  # distinct timestamps: fold sizes are exact
    dataset = make_dataset(rng.integers(0, 30, 1000), rng.integers(0, 40, 1000), times)
    split = temporal_split(dataset, ratios=(0.7, 0.2, 0.1))
    assert (len(split.train), len(split.valid), len(split.test)) == (700, 200, 100)
    assert split.train.timestamps.max() < split.valid.timestamps.min()
    assert split.valid.timestamps.max() < split.test.timestamps.min()
    assert split.protocol.endswith("valid from t >= 7000, test from t >= 9000")


def test_temporal_split_keeps_ties_on_one_side_of_a_cut():
    times = [1, 2, 2, 2, 3, 4, 5, 5, 6, 7]  # row 3 of 10 (the 30% cut) lies in a run of 2s
    dataset = make_dataset(np.zeros(10), np.arange(10), times)
    split = temporal_split(dataset, ratios=(0.3, 0.5, 0.2))
    assert split.train.timestamps.tolist() == [1]
    assert split.valid.timestamps.tolist() == [2, 2, 2, 3, 4, 5, 5]
    assert split.test.timestamps.tolist() == [6, 7]
    no_test = temporal_split(dataset, ratios=(0.9, 0.1, 0.0))
    assert len(no_test.test) == 0
    assert len(no_test.valid) == 1


def test_temporal_split_needs_timestamps():
    with pytest.raises(ConfigError, match="split 'temporal': dataset 'toy' has no timestamps"):
        temporal_split(make_dataset([0, 1], [0, 1]))


# -- given -----------------------------------------------------------------------------------------------


def given_dataset() -> Dataset:
    base = row_id_dataset(seed=2)
    fold = np.where(np.random.default_rng(0).random(len(base.interactions)) < 0.25, Fold.TEST, Fold.TRAIN)
    return replace(base, fold=fold.astype(np.int64))


def test_given_split_carves_valid_from_each_users_train():
    dataset = given_dataset()
    split = given_split(dataset, valid_ratio=0.1, seed=2020)
    assert split.protocol == "given train/test; valid = 10% of each user's train interactions, seed 2020"
    assert_partition(split, len(dataset.interactions))
    train_rows = np.flatnonzero(dataset.fold == Fold.TRAIN)
    assert rows_of(split)["test"].tolist() == np.flatnonzero(dataset.fold == Fold.TEST).tolist()
    assert np.isin(rows_of(split)["valid"], train_rows).all()
    train_counts = np.bincount(dataset.interactions.users[train_rows], minlength=dataset.num_users)
    valid_counts = np.bincount(split.valid.users, minlength=dataset.num_users)
    expected = [min(half_up(n, 0.1), max(n - 1, 0)) for n in train_counts.tolist()]
    assert valid_counts.tolist() == expected
    assert (np.bincount(split.train.users, minlength=dataset.num_users)[train_counts > 0] >= 1).all()
    assert given_split(dataset, valid_ratio=0.1, seed=2020).content_hash == split.content_hash
    assert given_split(dataset, valid_ratio=0.1, seed=2021).content_hash != split.content_hash


def test_given_split_leaves_a_single_train_interaction_in_train():
    # at 50% a user with 1 train row would give round(0.5) = 1 to valid; the cap keeps it in train
    dataset = make_dataset([0, 0, 0, 1, 1], [0, 1, 2, 3, 4], fold=[0, 0, 2, 0, 2])
    split = given_split(dataset, valid_ratio=0.5, seed=0)
    assert split.valid.users.tolist() == [0]
    assert split.train.users.tolist() == [0, 1]
    assert split.test.items.tolist() == [2, 4]


def test_given_split_uses_shipped_valid_rows_as_they_are():
    dataset = make_dataset([0, 0, 0, 1], [0, 1, 2, 3], fold=[Fold.TRAIN, Fold.VALID, Fold.TEST, Fold.TRAIN])
    split = given_split(dataset)
    assert split.train.items.tolist() == [0, 3]
    assert split.valid.items.tolist() == [1]
    assert split.test.items.tolist() == [2]
    assert split.protocol == "given train/valid/test"
    with pytest.raises(ConfigError, match="ships its own validation rows"):
        given_split(dataset, valid_ratio=0.1, seed=0)


def test_given_split_errors():
    with pytest.raises(ConfigError, match="has no predefined split"):
        given_split(make_dataset([0, 1], [0, 1]))
    dataset = given_dataset()
    with pytest.raises(ConfigError, match="ships train/test only and no valid rows; set valid_ratio"):
        given_split(dataset)
    with pytest.raises(ConfigError, match=r"valid_ratio must lie in \(0, 1\), got 1.5"):
        given_split(dataset, valid_ratio=1.5, seed=0)
    with pytest.raises(ConfigError, match="needs an int seed"):
        given_split(dataset, valid_ratio=0.1)


# -- registry and artifacts ------------------------------------------------------------------------------


def test_split_dataset_dispatches_by_name():
    dataset = row_id_dataset()
    assert set(SPLITTERS) == {"given", "random", "leave_one_out", "temporal", "links"}
    direct = random_split(dataset, ratios=[0.8, 0.1, 0.1], seed=1)
    by_name = split_dataset(dataset, "random", ratios=[0.8, 0.1, 0.1], seed=1)
    assert by_name.content_hash == direct.content_hash
    assert split_dataset(dataset, "leave_one_out").content_hash == leave_one_out_split(dataset).content_hash
    choices = "given, leave_one_out, links, random, temporal"
    with pytest.raises(UnknownNameError, match=f"unknown split protocol 'kfold'; choose one of: {choices}"):
        split_dataset(dataset, "kfold")
    with pytest.raises(ConfigError, match="'leave_one_out' does not take seed; it takes: no parameters"):
        split_dataset(dataset, "leave_one_out", seed=1)
    with pytest.raises(ConfigError, match="'random' does not take ratio; it takes: ratios, seed"):
        split_dataset(dataset, "random", ratio=0.8, seed=1)


def test_load_or_create_split_round_trip(tmp_path: Path):
    dataset = row_id_dataset()
    path = tmp_path / "splits" / "toy_random.npz"
    created = load_or_create_split(dataset, "random", path, ratios=(0.8, 0.1, 0.1), seed=11)
    assert path.is_file()
    loaded = load_or_create_split(dataset, "random", path, ratios=(0.8, 0.1, 0.1), seed=11)
    assert loaded.content_hash == created.content_hash
    assert loaded.provenance == created.provenance
    assert loaded.protocol == created.protocol
    for name in ("train", "valid", "test"):
        assert np.array_equal(loaded.fold(name).timestamps, created.fold(name).timestamps)


def test_load_or_create_split_refuses_a_file_for_other_data(tmp_path: Path):
    path = tmp_path / "split.npz"
    load_or_create_split(row_id_dataset(num_users=60), "leave_one_out", path)
    other_data = r"this saved split was made from other data \(fingerprint [0-9a-f]{16}, now [0-9a-f]{16}\)"
    with pytest.raises(RecforgeError, match=other_data):
        load_or_create_split(row_id_dataset(num_users=61), "leave_one_out", path)
    same_sizes = row_id_dataset(num_users=60, max_per_user=30)  # same id space, fewer interactions
    with pytest.raises(RecforgeError, match="made from other data"):
        load_or_create_split(same_sizes, "leave_one_out", path)


def test_a_saved_split_is_refused_for_other_split_settings(tmp_path: Path):
    # regression: only the counts were compared, so new ratios and seed silently reused the old folds
    dataset = row_id_dataset()
    path = tmp_path / "split.npz"
    load_or_create_split(dataset, "random", path, ratios=(0.8, 0.1, 0.1), seed=2020)
    changed = r"with ratios \[0.8, 0.1, 0.1\], not \[0.5, 0.1, 0.4\], with seed 2020, not 99"
    with pytest.raises(RecforgeError, match=changed):
        load_or_create_split(dataset, "random", path, ratios=(0.5, 0.1, 0.4), seed=99)
    with pytest.raises(RecforgeError, match=r"by protocol 'random', not 'leave_one_out'.*delete the file"):
        load_or_create_split(dataset, "leave_one_out", path)


def test_a_torn_split_file_is_a_clean_error(tmp_path: Path):
    dataset = row_id_dataset()
    path = tmp_path / "split.npz"
    load_or_create_split(dataset, "leave_one_out", path)
    path.write_bytes(path.read_bytes()[:100])  # what a full disk left behind
    with pytest.raises(DataFormatError, match=r"split.npz: not a readable recforge split file .*delete it"):
        load_or_create_split(dataset, "leave_one_out", path)
    assert not list(tmp_path.glob("*.partial"))


def test_splits_scale_without_per_user_loops():
    # 100k users, 1M rows: a Python loop over users would take many seconds, vectorized it is ~1 s
    rng = np.random.default_rng(0)
    users = rng.integers(0, 100_000, size=1_000_000)
    items, times = rng.integers(0, 1000, size=len(users)), rng.integers(0, 10**9, size=len(users))
    dataset = make_dataset(users, items, times)
    for split in (random_split(dataset, seed=0), leave_one_out_split(dataset), temporal_split(dataset)):
        assert len(split.train) + len(split.valid) + len(split.test) == len(users)


@pytest.mark.integration
def test_gowalla_given_split_carves_valid(shared_data: Path):
    try:
        from recforge.data.readers.lightgcn import read_lightgcn
    except ImportError:
        pytest.skip("recforge.data.readers.lightgcn is not available")
    root = shared_data / "lightgcn-gowalla"
    dataset = read_lightgcn(root / "train.txt.gz", root / "test.txt.gz")
    split = given_split(dataset, valid_ratio=0.1, seed=2020)
    assert len(split.test) == 217_242
    assert len(split.train) + len(split.valid) == 810_128
    train_users = dataset.interactions.users[dataset.fold == Fold.TRAIN]
    train_counts = np.bincount(train_users, minlength=dataset.num_users)
    expected_valid = np.minimum(np.floor(train_counts * 0.1 + 0.5), np.maximum(train_counts - 1, 0))
    assert np.array_equal(np.bincount(split.valid.users, minlength=dataset.num_users), expected_valid)
