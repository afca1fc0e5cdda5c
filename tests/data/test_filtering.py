"""Tests for recforge.data.filtering: deduplication and k-core, each against a plain-Python reference."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from recforge.data.dataset import Dataset, Fold, Interactions
from recforge.data.filtering import FilterReport, deduplicate, k_core
from recforge.errors import ConfigError


def make_dataset(users, items, timestamps=None, *, num_users=None, num_items=None, fold=None) -> Dataset:
    users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
    num_users = int(users.max()) + 1 if num_users is None else num_users
    num_items = int(items.max()) + 1 if num_items is None else num_items
    inter = Interactions(users, items, None if timestamps is None else np.asarray(timestamps, dtype=np.int64))
    return Dataset(
        name="toy",
        interactions=inter,
        user_ids=np.array([f"u{u}" for u in range(num_users)]),
        item_ids=np.array([f"i{i}" for i in range(num_items)]),
        fold=None if fold is None else np.asarray(fold, dtype=np.int64),
        item_titles=np.array([f"title {i}" for i in range(num_items)]),
        item_features={"popularity": np.arange(num_items, dtype=np.float32) * 10},
        user_features={"age": np.arange(num_users, dtype=np.int64) + 100},
    )


def random_dataset(seed: int, num_users: int = 40, num_items: int = 30, rows: int = 300) -> Dataset:
    rng = np.random.default_rng(seed)
    # skewed popularity, so that pruning cascades over several rounds
    items = np.minimum(rng.geometric(0.12, size=rows) - 1, num_items - 1)
    users = rng.integers(0, num_users, size=rows)
    timestamps = rng.integers(0, 50, size=rows)  # many ties, to exercise the file-order tie-break
    fold = rng.choice([Fold.TRAIN, Fold.TEST], size=rows)
    return make_dataset(users, items, timestamps, num_users=num_users, num_items=num_items, fold=fold)


# -- deduplicate ---------------------------------------------------------------------------------------


def test_deduplicate_keeps_the_earliest_by_timestamp_not_file_order():
    # pair (0, 1) at t=9 (row 0), t=3 (row 2), t=5 (row 3); pair (1, 0) twice at t=4 (rows 1, 4)
    dataset = make_dataset([0, 1, 0, 0, 1], [1, 0, 1, 1, 0], [9, 4, 3, 5, 4], fold=[0, 0, 2, 0, 2])
    first, report = deduplicate(dataset, keep="first")
    assert first.interactions.timestamps.tolist() == [4, 3]  # rows 1 and 2, in file order
    assert first.fold.tolist() == [0, 2]
    last, _ = deduplicate(dataset, keep="last")
    assert last.interactions.timestamps.tolist() == [9, 4]  # rows 0 and 4 (tie at t=4: later row)
    assert last.fold.tolist() == [0, 2]
    assert (report.rows_before, report.rows_removed) == (5, 3)


def test_deduplicate_without_timestamps_uses_file_order():
    dataset = make_dataset([0, 0, 1, 0], [2, 2, 2, 2])
    ratings = np.array([1, 2, 3, 4], dtype=np.float32)  # marks the rows
    dataset = replace(dataset, interactions=replace(dataset.interactions, ratings=ratings))
    first, _ = deduplicate(dataset, keep="first")
    last, report = deduplicate(dataset, keep="last")
    assert first.interactions.ratings.tolist() == [1, 3]
    assert last.interactions.ratings.tolist() == [3, 4]
    assert "file order" in report.filter


@pytest.mark.parametrize("keep", ["first", "last"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_deduplicate_matches_reference(seed, keep):
    dataset = random_dataset(seed)
    inter = dataset.interactions
    chosen: dict[tuple[int, int], tuple[int, int]] = {}  # pair -> (timestamp, row) of the kept row
    for row, (user, item, time) in enumerate(zip(inter.users, inter.items, inter.timestamps, strict=True)):
        candidate = (int(time), row)
        current = chosen.get((int(user), int(item)))
        if current is None or (candidate < current if keep == "first" else candidate > current):
            chosen[(int(user), int(item))] = candidate
    expected_rows = sorted(row for _, row in chosen.values())

    result, report = deduplicate(dataset, keep=keep)
    kept = result.interactions
    assert kept.timestamps.tolist() == inter.timestamps[expected_rows].tolist()
    assert list(zip(kept.users.tolist(), kept.items.tolist(), strict=True)) == [
        (int(inter.users[r]), int(inter.items[r])) for r in expected_rows
    ]
    assert result.fold.tolist() == dataset.fold[expected_rows].tolist()
    assert report.rows_removed == len(inter) - len(expected_rows)
    assert result.notes[-1] == str(report)
    assert result.num_users == dataset.num_users
    assert result.num_items == dataset.num_items


def test_deduplicate_rejects_unknown_keep():
    with pytest.raises(ConfigError, match="keep must be 'first' or 'last', got 'middle'"):
        deduplicate(random_dataset(0), keep="middle")  # type: ignore[arg-type]


# -- k-core ----------------------------------------------------------------------------------------------


def reference_k_core(users, items, min_user, min_item) -> list[int]:
    """Surviving row indices, pruning one offending row at a time until none is left: slow, plainly right."""
    alive = list(range(len(users)))
    changed = True
    while changed:
        changed = False
        user_count = Counter(users[r] for r in alive)
        item_count = Counter(items[r] for r in alive)
        for r in alive:
            if user_count[users[r]] < min_user or item_count[items[r]] < min_item:
                alive.remove(r)
                changed = True
                break
    return alive


@pytest.mark.parametrize(
    ("seed", "min_user", "min_item"), [(0, 5, 5), (1, 3, 8), (2, 10, 2), (3, 1, 1), (4, 8, 8)]
)
def test_k_core_matches_reference_and_keeps_side_data_aligned(seed, min_user, min_item):
    dataset = random_dataset(seed)
    inter = dataset.interactions
    expected_rows = reference_k_core(inter.users.tolist(), inter.items.tolist(), min_user, min_item)

    result, report = k_core(dataset, min_user_interactions=min_user, min_item_interactions=min_item)
    kept = result.interactions
    # raw ids of the survivors equal the raw ids of the reference's rows, in the same (file) order
    assert result.user_ids[kept.users].tolist() == dataset.user_ids[inter.users[expected_rows]].tolist()
    assert result.item_ids[kept.items].tolist() == dataset.item_ids[inter.items[expected_rows]].tolist()
    assert kept.timestamps.tolist() == inter.timestamps[expected_rows].tolist()
    assert result.fold.tolist() == dataset.fold[expected_rows].tolist()
    # the core condition, and a dense id space with no empty user or item
    user_counts = np.bincount(kept.users, minlength=result.num_users)
    item_counts = np.bincount(kept.items, minlength=result.num_items)
    assert (user_counts >= max(min_user, 1)).all()
    assert (item_counts >= max(min_item, 1)).all()
    assert result.num_users == len({int(u) for u in inter.users[expected_rows]})
    assert result.num_items == len({int(i) for i in inter.items[expected_rows]})
    # side data follows the ids: features were built as functions of the old dense id
    old_items = np.array([int(raw[1:]) for raw in result.item_ids])
    old_users = np.array([int(raw[1:]) for raw in result.user_ids])
    assert np.all(np.diff(old_items) > 0)  # old order preserved
    assert np.all(np.diff(old_users) > 0)
    assert result.item_titles.tolist() == [f"title {i}" for i in old_items]
    assert result.item_features["popularity"].tolist() == (old_items * 10.0).tolist()
    assert result.user_features["age"].tolist() == (old_users + 100).tolist()
    assert report.rows_removed == len(inter) - len(expected_rows)
    assert report.users_removed == dataset.num_users - result.num_users
    assert report.items_removed == dataset.num_items - result.num_items
    assert result.notes[-1] == str(report)


def test_k_core_counts_cascading_rounds():
    # a chain needing one round per link: item 2 has a single row; without it user 2 has one row
    # left, (2, 1); without that item 1 has one, (3, 1); without that user 3 has one, (3, 0)
    users = [0, 0, 1, 1, 2, 2, 3, 3]
    items = [0, 3, 0, 3, 1, 2, 0, 1]
    result, report = k_core(make_dataset(users, items), min_user_interactions=2, min_item_interactions=2)
    assert result.interactions.users.tolist() == [0, 0, 1, 1]
    assert result.user_ids.tolist() == ["u0", "u1"]
    assert result.item_ids.tolist() == ["i0", "i3"]
    assert report.iterations == 4
    assert (report.rows_removed, report.users_removed, report.items_removed) == (4, 2, 2)
    assert str(report) == (
        "k-core (users >= 2, items >= 2 interactions): removed 4 of 8 interactions, "
        "2 users and 2 items in 4 rounds"
    )


def test_k_core_already_satisfied_changes_nothing():
    dataset = make_dataset([0, 0, 1, 1], [0, 1, 0, 1])
    result, report = k_core(dataset, min_user_interactions=2, min_item_interactions=2)
    assert report == FilterReport(report.filter, rows_before=4, rows_removed=0)
    assert result.interactions.users.tolist() == [0, 0, 1, 1]
    assert str(report).endswith("removed 0 of 4 interactions")


def test_k_core_zero_threshold_keeps_users_without_interactions():
    dataset = make_dataset([0, 0], [0, 1], num_users=3, num_items=3)
    kept, report = k_core(dataset, min_user_interactions=0, min_item_interactions=0)
    assert (kept.num_users, kept.num_items, report.iterations) == (3, 3, 0)
    dropped, report = k_core(dataset, min_user_interactions=1, min_item_interactions=1)
    assert (dropped.num_users, dropped.num_items) == (1, 2)
    assert (report.users_removed, report.items_removed, report.rows_removed) == (2, 1, 0)


@pytest.mark.parametrize("bad", [-1, 2.5, None, True])
def test_k_core_rejects_bad_thresholds(bad):
    with pytest.raises(ConfigError, match="min_item_interactions must be an int >= 0"):
        k_core(random_dataset(0), min_user_interactions=1, min_item_interactions=bad)
