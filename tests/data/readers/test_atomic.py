"""Tests of the RecBole atomic-file reader (.inter / .item / .user with typed headers)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from recforge.data.readers.atomic import read_atomic, read_atomic_table
from recforge.errors import ConfigError, DataFormatError

INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "u2\t20\t4\t100\n"
    "u1\t10\t3.5\t90\n"
    "u2\t10\t5\t110\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tscore:float\n"
    "10\tToy Story\t1995\tAnimation Comedy\t0.5\n"
    "30\tNever Rated\t1990\tDrama\t\n"
    "20\tGoldenEye\t1995\tAction\t1.5\n"
)
USER = "user_id:token\tage:token\tgender:token\nu1\t24\tM\nu2\t53\tF\n"


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_catalogue_order_fixes_the_ids(tmp_path):
    dataset = read_atomic(write(tmp_path / "ml.inter", INTER), item_path=write(tmp_path / "ml.item", ITEM),
                          user_path=write(tmp_path / "ml.user", USER))
    assert dataset.name == "ml"
    assert dataset.item_ids.tolist() == ["10", "30", "20"]  # .item order, the never-rated item included
    assert dataset.user_ids.tolist() == ["u1", "u2"]
    assert dataset.interactions.users.tolist() == [1, 0, 1]
    assert dataset.interactions.items.tolist() == [2, 0, 0]
    assert dataset.item_titles.tolist() == ["Toy Story", "Never Rated", "GoldenEye"]
    assert dataset.item_features["release_year"].tolist() == ["1995", "1990", "1995"]
    assert dataset.item_features["class"].tolist() == [["Animation", "Comedy"], ["Drama", ""], ["Action", ""]]
    assert np.isnan(dataset.item_features["score"][1])
    assert dataset.item_features["score"][2] == 1.5
    assert dataset.user_features["gender"].tolist() == ["M", "F"]
    assert dataset.interactions.ratings.dtype == np.float32
    assert dataset.interactions.ratings.tolist() == [4.0, 3.5, 5.0]
    assert dataset.interactions.timestamps.dtype == np.int64  # whole numbers
    assert dataset.notes == []


def test_without_side_files_ids_follow_first_appearance(tmp_path):
    dataset = read_atomic(write(tmp_path / "a.inter", INTER))
    assert dataset.user_ids.tolist() == ["u2", "u1"]
    assert dataset.item_ids.tolist() == ["20", "10"]
    assert dataset.item_titles is None


def test_ids_missing_from_the_catalogue_come_after_it(tmp_path):
    item = "item_id:token\tmovie_title:token_seq\n10\tToy Story\n"
    dataset = read_atomic(write(tmp_path / "a.inter", INTER), item_path=write(tmp_path / "a.item", item))
    assert dataset.item_ids.tolist() == ["10", "20"]
    assert dataset.item_titles.tolist() == ["Toy Story", ""]
    assert "1 item_id values in the interactions are missing from a.item; they get ids after the listed " \
           "ones and empty side data" in dataset.notes


def test_fractional_timestamps_stay_float_and_extra_fields_are_named(tmp_path):
    inter = "user_id:token\titem_id:token\ttimestamp:float\treview:token_seq\na\tx\t1.5\tgood one\n"
    dataset = read_atomic(write(tmp_path / "a.inter", inter))
    assert dataset.interactions.timestamps.dtype == np.float64
    assert dataset.interactions.ratings is None
    assert "a.inter: fields not loaded: review" in dataset.notes


def test_float_seq_and_gz(tmp_path):
    item = "item_id:token\tvector:float_seq\nx\t1 2.5\ny\t3\n"
    (tmp_path / "a.item.gz").write_bytes(gzip.compress(item.encode()))
    dataset = read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id:token\na\tx\n"),
                          item_path=tmp_path / "a.item")
    vector = dataset.item_features["vector"]
    assert vector[0].tolist() == [1.0, 2.5]
    assert vector[1, 0] == 3.0
    assert np.isnan(vector[1, 1])


def test_blank_lines_are_skipped_and_lines_still_counted(tmp_path):
    inter = "user_id:token\titem_id:token\trating:float\n\na\tx\t1\n\nb\ty\tfive\n"
    with pytest.raises(DataFormatError, match=r"a\.inter:5: field 'rating': expected a number, got 'five'"):
        read_atomic(write(tmp_path / "a.inter", inter))
    table = read_atomic_table(write(tmp_path / "b.inter", inter.replace("five", "5")))
    assert table.line_numbers.tolist() == [3, 5]


def test_duplicates_are_kept_and_counted(tmp_path):
    dataset = read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id:token\na\tx\na\tx\n"))
    assert len(dataset.interactions) == 2
    assert "1 interaction rows repeat an earlier (user, item) pair; all are kept" in dataset.notes


def test_unknown_type(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.inter:1: field 'rating': unknown type 'int'; expected one "
                       r"of token, token_seq, float, float_seq"):
        read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id:token\trating:int\na\tx\t1\n"))


def test_header_entry_without_type(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.inter:1: field 'item_id': header entry 'item_id' is not "
                       r"'name:type'"):
        read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id\na\tx\n"))


def test_missing_id_field_lists_the_header(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.inter:1: field 'item_id': no such field \(the header has: "
                       r"user_id, product\)"):
        read_atomic(write(tmp_path / "a.inter", "user_id:token\tproduct:token\na\tx\n"))


def test_wrong_field_count(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.inter:3: expected 2 tab-separated fields, got 3"):
        read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id:token\na\tx\nb\ty\tz\n"))


def test_too_few_fields(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.inter:2: expected 2 tab-separated fields, got 1"):
        read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id:token\na\nb\ty\n"))


def test_empty_id(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.inter:3: field 'user_id': empty value"):
        read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id:token\na\tx\n\ty\n"))


def test_catalogue_id_listed_twice(tmp_path):
    item = "item_id:token\tmovie_title:token_seq\n10\tA\n20\tB\n10\tC\n"
    with pytest.raises(DataFormatError, match=r"a\.item:4: field 'item_id': id '10' is listed twice"):
        read_atomic(write(tmp_path / "a.inter", INTER), item_path=write(tmp_path / "a.item", item))


def test_header_only(tmp_path):
    with pytest.raises(DataFormatError, match=r"a\.inter: no interactions"):
        read_atomic(write(tmp_path / "a.inter", "user_id:token\titem_id:token\n"))


def test_missing_value_marker_id_and_non_finite_numbers(tmp_path):
    """Issue 10, defect 1, in the atomic reader: "NaN" ids and NaN ratings/timestamps are refused."""
    inter = tmp_path / "x.inter"
    inter.write_text("user_id:token\titem_id:token\trating:float\nu\ti\t1\nnan\tj\t2\n")
    with pytest.raises(DataFormatError, match=r"x\.inter:3: field 'user_id': 'nan' marks a missing value"):
        read_atomic(inter)
    inter.write_text("user_id:token\titem_id:token\trating:float\nu\ti\tNaN\n")
    with pytest.raises(DataFormatError,
                       match=r"x\.inter:2: field 'rating': expected a finite number, got 'NaN'"):
        read_atomic(inter)


def test_bom_and_blank_lines(tmp_path):
    inter = tmp_path / "x.inter"
    inter.write_bytes(b"\xef\xbb\xbfuser_id:token\titem_id:token\nu\ti\n\nv\ti\n")
    dataset = read_atomic(inter)
    assert dataset.user_ids.tolist() == ["u", "v"]
    assert "x.inter: 1 blank lines skipped" in dataset.notes


def test_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"read_atomic: option 'encoding': unknown encoding 'utf-9'"):
        read_atomic(tmp_path / "x.inter", encoding="utf-9")
