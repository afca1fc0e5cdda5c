"""Tests of the LightGCN split reader (u i i i ... lines, 0-based ids)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from recforge.data.dataset import Fold
from recforge.data.readers.lightgcn import read_id_list, read_lightgcn
from recforge.errors import DataFormatError


def write(path, text):
    path.write_text(text)
    return path


def test_gowalla_counts_match_the_readme(shared_data):
    directory = shared_data / "lightgcn-gowalla"
    dataset = read_lightgcn(directory / "train.txt", directory / "test.txt",
                            item_list=directory / "item_list.txt", user_list=directory / "user_list.txt",
                            name="gowalla")
    assert (dataset.num_users, dataset.num_items) == (29_858, 40_981)
    assert np.bincount(dataset.fold, minlength=3).tolist() == [810_128, 0, 217_242]
    # dense id = file id; raw ids from the lists ("org_id remap_id": 343 0, 8975 0)
    assert dataset.user_ids[0] == "343"
    assert dataset.item_ids[0] == "8975"
    assert dataset.interactions.users[:3].tolist() == [0, 0, 0]
    assert dataset.interactions.items[:3].tolist() == [0, 1, 2]
    assert dataset.interactions.timestamps is None
    assert dataset.notes == []  # no duplicates, no empty lines in Gowalla


def test_small_split_with_lists(tmp_path):
    train = write(tmp_path / "train.txt", "0 1 2\n1 0\n")
    test = write(tmp_path / "test.txt", "0 0\n1 2 1\n")
    users = write(tmp_path / "user_list.txt", "org_id remap_id\nalice 0\nbob 1\n")
    items = write(tmp_path / "item_list.txt", "org_id remap_id\nB 1\nA 0\nC 2\n")
    dataset = read_lightgcn(train, test, user_list=users, item_list=items)
    assert dataset.interactions.users.tolist() == [0, 0, 1, 0, 1, 1]
    assert dataset.interactions.items.tolist() == [1, 2, 0, 0, 2, 1]
    assert dataset.fold.tolist() == [Fold.TRAIN] * 3 + [Fold.TEST] * 3
    assert dataset.user_ids.tolist() == ["alice", "bob"]
    assert dataset.item_ids.tolist() == ["A", "B", "C"]


def test_without_lists_raw_ids_are_file_ids(tmp_path):
    dataset = read_lightgcn(write(tmp_path / "train.txt", "0 3\n2 1\n"))
    assert dataset.user_ids.tolist() == ["0", "1", "2"]  # user 1 has no line: still an id
    assert dataset.item_ids.tolist() == ["0", "1", "2", "3"]
    assert dataset.fold.tolist() == [Fold.TRAIN, Fold.TRAIN]


def test_gz_file_found_from_plain_name(tmp_path):
    (tmp_path / "train.txt.gz").write_bytes(gzip.compress(b"0 1 2\n1 2\n"))
    assert len(read_lightgcn(tmp_path / "train.txt").interactions) == 3


def test_test_user_outside_train_users(tmp_path):
    train = write(tmp_path / "train.txt", "0 1\n1 0\n")
    test = write(tmp_path / "test.txt", "0 0\n2 1\n")
    with pytest.raises(DataFormatError, match=r"test\.txt:2: field 'user_id': user 2 is not a known user "
                       r"\(the train file's users are 0\.\.1\)"):
        read_lightgcn(train, test)


def test_non_integer_item(tmp_path):
    train = write(tmp_path / "train.txt", "0 1 2\n1 2 x7\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:2: field 'item_id': expected a non-negative "
                       r"integer, got 'x7'"):
        read_lightgcn(train)


def test_non_integer_user(tmp_path):
    train = write(tmp_path / "train.txt", "0 1 2\n\n1.5 2\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:3: field 'user_id': expected a non-negative "
                       r"integer, got '1\.5'"):
        read_lightgcn(train)


def test_negative_id(tmp_path):
    train = write(tmp_path / "train.txt", "0 1\n1 -4\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:2: field 'item_id': negative id -4"):
        read_lightgcn(train)


def test_empty_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"train\.txt: empty file"):
        read_lightgcn(write(tmp_path / "train.txt", "\n  \n"))


def test_file_without_items(tmp_path):
    with pytest.raises(DataFormatError, match=r"train\.txt: no line holds an item"):
        read_lightgcn(write(tmp_path / "train.txt", "0\n1\n"))


def test_user_only_line_is_allowed_and_noted(tmp_path):
    train = write(tmp_path / "train.txt", "0 1\n1 0\n")
    test = write(tmp_path / "test.txt", "0 0\n1\n")
    dataset = read_lightgcn(train, test)
    assert len(dataset.interactions) == 3
    assert "test.txt: 1 lines hold a user id and no items (lines 2)" in dataset.notes


def test_duplicates_are_kept_and_counted(tmp_path):
    train = write(tmp_path / "train.txt", "0 1 1\n1 0\n")
    test = write(tmp_path / "test.txt", "0 1\n")
    dataset = read_lightgcn(train, test)
    assert len(dataset.interactions) == 4
    assert "2 interaction rows repeat an earlier (user, item) pair; all are kept " \
           "(1 within one fold, 1 across folds)" in dataset.notes


def test_item_outside_item_list(tmp_path):
    train = write(tmp_path / "train.txt", "0 1\n1 0 5\n")
    items = write(tmp_path / "item_list.txt", "org_id remap_id\na 0\nb 1\n")
    with pytest.raises(DataFormatError, match=r"train\.txt:2: field 'item_id': item 5 is not a known item"):
        read_lightgcn(train, item_list=items)


def test_id_list_must_be_a_permutation(tmp_path):
    with pytest.raises(DataFormatError, match=r"item_list\.txt: field 'remap_id': remap_id values must be "
                       r"0\.\.1, each once"):
        read_id_list(write(tmp_path / "item_list.txt", "org_id remap_id\na 0\nb 2\n"))


def test_id_list_wrong_field_count(tmp_path):
    with pytest.raises(DataFormatError, match=r"user_list\.txt:3: expected 2 fields"):
        read_id_list(write(tmp_path / "user_list.txt", "org_id remap_id\na 0\nb c 1\n"))


def test_repeated_user_note_counts_users_not_lines(tmp_path):
    """Issue 10, defect 6: one user on three lines is one user (two extra lines), not two."""
    dataset = read_lightgcn(write(tmp_path / "train.txt", "0 1\n0 2\n0 3\n1 0\n2 1\n2 0\n"))
    assert "train.txt: 2 users have more than one line (3 extra lines, train fold); their items are " \
           "combined" in dataset.notes


def test_counted_shape_is_refused_unless_confirmed(tmp_path):
    train = write(tmp_path / "train.txt", "1 5\n2 3 4\n")
    with pytest.raises(DataFormatError, match=r"train\.txt: every line's first field equals the number of "
                       r"ids after it \(all 2 lines\).*format 'counted'"):
        read_lightgcn(train)
    assert read_lightgcn(train, assume_user_ids=True).interactions.users.tolist() == [1, 2, 2]


def test_counted_shape_test_file_is_refused_too(tmp_path):
    train = write(tmp_path / "train.txt", "0 1 2\n1 0\n")
    test = write(tmp_path / "test.txt", "1 0\n2 1 0\n")
    with pytest.raises(DataFormatError, match=r"test\.txt: every line's first field"):
        read_lightgcn(train, test)


def test_huge_id_is_refused_before_any_allocation(tmp_path):
    """Issue 10, defect 3: 2**40 used to be a MemoryError (an 8 TiB id table)."""
    with pytest.raises(DataFormatError,
                       match=r"train\.txt:2: field 'item_id': id 1099511627776 is too large: "
                       r"the file's ids are used as dense item indices"):
        read_lightgcn(write(tmp_path / "train.txt", f"0 1\n1 {2**40}\n"))
    with pytest.raises(DataFormatError,
                       match=r"train\.txt:1: field 'user_id': id 1099511627776 is too large"):
        read_lightgcn(write(tmp_path / "train.txt", f"{2**40} 1\n"))


def test_gaps_within_the_bound_are_allowed(tmp_path):
    dataset = read_lightgcn(write(tmp_path / "train.txt", "0 1\n5000 900000\n"))
    assert (dataset.num_users, dataset.num_items) == (5_001, 900_001)


def test_blank_lines_are_noted(tmp_path):
    dataset = read_lightgcn(write(tmp_path / "train.txt", "0 1\n\n1 0\n"))
    assert "train.txt: 1 blank lines skipped" in dataset.notes


def test_id_list_refuses_a_missing_value_marker(tmp_path):
    with pytest.raises(DataFormatError,
                       match=r"user_list\.txt:3: field 'org_id': 'NaN' marks a missing value"):
        read_id_list(write(tmp_path / "user_list.txt", "org_id remap_id\na 0\nNaN 1\n"))
