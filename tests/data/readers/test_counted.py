"""Tests of the counted reader (``count item item ...`` per line, users = lines) and of the
refusal of counted-shaped files by the user-first readers."""

from __future__ import annotations

import numpy as np
import pytest

from recforge.data.readers.counted import read_counted
from recforge.data.readers.lightgcn import read_lightgcn
from recforge.data.readers.sequences import read_sequences
from recforge.data.registry import FORMATS, detect_format, read_path
from recforge.errors import DataFormatError


def write(path, text):
    path.write_text(text)
    return path


def counted_file(path, num_users, num_items, seed=0):
    """A CiteULike-like file: ``count item item ...``, 0-based distinct items per line."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(num_users):
        count = int(rng.integers(1, 40))
        items = rng.choice(num_items, size=count, replace=False)
        lines.append(" ".join(map(str, [count, *items.tolist()])))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_users_are_lines_in_file_order(tmp_path):
    dataset = read_counted(write(tmp_path / "users.dat", "2 5 1\n1 0\n3 2 5 4\n"))
    assert dataset.num_users == 3
    assert dataset.interactions.users.tolist() == [0, 0, 1, 2, 2, 2]
    assert dataset.interactions.items.tolist() == [5, 1, 0, 2, 5, 4]
    assert dataset.user_ids.tolist() == ["0", "1", "2"]
    assert dataset.item_ids.tolist() == [str(i) for i in range(6)]  # dense item id = file id
    assert dataset.interactions.timestamps is None
    assert dataset.name == "users"
    assert dataset.notes[0] == ("users.dat: counted format, one user per line; user u is line u + 1 "
                                 "(raw user ids 0..2)")


def test_id_base_one_shifts_items_and_names_users_from_one(tmp_path):
    dataset = read_counted(write(tmp_path / "c.txt", "1 1\n2 3 2\n"), id_base=1)
    assert dataset.interactions.items.tolist() == [0, 2, 1]
    assert dataset.user_ids.tolist() == ["1", "2"]
    assert dataset.item_ids.tolist() == ["1", "2", "3"]


def test_a_user_without_items_keeps_its_place(tmp_path):
    dataset = read_counted(write(tmp_path / "c.txt", "1 4\n0\n1 2\n\n\n"))
    assert dataset.num_users == 3
    assert dataset.interactions.users.tolist() == [0, 2]
    assert "c.txt: 1 users have no items (lines holding 0)" in dataset.notes
    assert "c.txt: 2 blank lines after the last user ignored" in dataset.notes


def test_count_that_disagrees_names_the_line(tmp_path):
    with pytest.raises(DataFormatError, match=r"c\.txt:2: field 'count': the line says 3 items but 2 follow"):
        read_counted(write(tmp_path / "c.txt", "1 0\n3 1 2\n"))


def test_blank_line_between_users_would_shift_them(tmp_path):
    with pytest.raises(DataFormatError, match=r"c\.txt:2: blank line: .*write '0' for a user with no items"):
        read_counted(write(tmp_path / "c.txt", "1 0\n\n1 2\n"))


def test_item_below_id_base(tmp_path):
    with pytest.raises(DataFormatError, match=r"c\.txt:2: field 'item_id': id 0 is below 1"):
        read_counted(write(tmp_path / "c.txt", "0\n1 0\n"), id_base=1)  # a count of 0 is no id


def test_duplicates_are_kept_and_noted(tmp_path):
    dataset = read_counted(write(tmp_path / "c.txt", "2 1 1\n"))
    assert "1 interaction rows repeat an earlier (user, item) pair; all are kept" in dataset.notes


def test_registered_and_detected(tmp_path):
    assert FORMATS["counted"] is read_counted
    path = write(tmp_path / "users.dat", "2 5 1\n1 0\n")
    assert detect_format(path) == "counted"
    assert read_path(path).num_users == 2


def test_citeulike_like_file_is_read_as_counted_and_refused_as_user_first(tmp_path):
    """Issue 10, defect 7: 7,947 users read as 1-to-39 "users" by the sequence and LightGCN readers."""
    path = counted_file(tmp_path / "users.txt", num_users=7_947, num_items=25_975)
    assert read_counted(path).num_users == 7_947
    assert read_path(path).num_users == 7_947  # .txt detected by content
    # the accident the readers used to accept: counts taken for user ids
    accidental = read_sequences(path, id_base=0, assume_user_ids=True)
    assert len(np.unique(accidental.interactions.users)) < 40
    message = r"users\.txt: every line's first field equals the number of ids after it \(all 7,947 lines\)"
    with pytest.raises(DataFormatError, match=message + r".*format 'counted'"):
        read_sequences(path, id_base=0)
    with pytest.raises(DataFormatError, match=message + r".*assume_user_ids=True"):
        read_lightgcn(path)
    with pytest.raises(DataFormatError, match=message):
        read_path(path, format="sequences", id_base=0)


def test_real_user_first_files_are_not_counted(shared_data):
    """The refusal rule must not touch the published files (they load as before: see their tests)."""
    for name in ("lightgcn-gowalla/train.txt", "lightgcn-gowalla/test.txt", "s3rec-beauty/Beauty.txt",
                 "s3rec-toys/Toys_and_Games.txt", "s3rec-lastfm/LastFM.txt"):
        path = shared_data / name
        with pytest.raises(DataFormatError, match=r"field 'count'"):
            read_counted(path)
