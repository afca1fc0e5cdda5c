"""Tests of the CSV / TSV / Parquet interaction-table reader."""

from __future__ import annotations

import gzip
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from recforge.data.readers.tabular import read_table
from recforge.errors import ConfigError, DataFormatError


def write(path, text):
    path.write_text(text)
    return path


def test_real_csv_with_a_column_mapping(shared_data):
    dataset = read_table(shared_data / "musae-twitch" / "ENGB_edges.csv.gz", user="from", item="to")
    assert len(dataset.interactions) == 35_324
    assert dataset.name == "ENGB_edges"
    assert dataset.user_ids[0] == "6194"
    assert dataset.item_ids[:2].tolist() == ["255", "980"]


def test_csv_ids_keep_their_text_and_first_appearance_order(tmp_path):
    path = write(tmp_path / "r.csv", "who,what,stars,when,extra\n007,b,4,10,x\n42,a,5,12,y\n007,a,3,11,z\n")
    dataset = read_table(path, user="who", item="what", rating="stars", timestamp="when")
    assert dataset.user_ids.tolist() == ["007", "42"]
    assert dataset.item_ids.tolist() == ["b", "a"]
    assert dataset.interactions.users.tolist() == [0, 1, 0]
    assert dataset.interactions.items.tolist() == [0, 1, 1]
    assert dataset.interactions.ratings.dtype == np.float32
    assert dataset.interactions.timestamps.tolist() == [10, 12, 11]
    assert dataset.interactions.timestamps.dtype == np.int64
    assert "r.csv: columns not loaded: extra" in dataset.notes


def test_tsv_gz_and_csv_agree(tmp_path):
    write(tmp_path / "a.csv", "user_id,item_id\nu,i\nv,i\n")
    (tmp_path / "b.tsv.gz").write_bytes(gzip.compress(b"user_id\titem_id\nu\ti\nv\ti\n"))
    first, second = read_table(tmp_path / "a.csv"), read_table(tmp_path / "b.tsv")
    assert np.array_equal(first.interactions.users, second.interactions.users)
    assert first.user_ids.tolist() == second.user_ids.tolist() == ["u", "v"]


def test_parquet_with_datetimes(tmp_path):
    frame = pl.DataFrame({"user_id": [3, 1], "item_id": ["x", "y"],
                          "ts": [datetime(2020, 1, 1), datetime(2020, 1, 2)]})
    frame.write_parquet(tmp_path / "r.parquet")
    dataset = read_table(tmp_path / "r.parquet", timestamp="ts")
    assert dataset.user_ids.tolist() == ["3", "1"]
    assert dataset.interactions.timestamps.tolist() == [1_577_836_800, 1_577_923_200]


def test_text_dates_become_unix_seconds(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,t\na,x,2020-01-01\nb,y,2020-01-02\n")
    assert read_table(path, timestamp="t").interactions.timestamps.tolist() == [1_577_836_800, 1_577_923_200]


def test_separator_override(tmp_path):
    path = write(tmp_path / "r.csv", "user_id;item_id\na;x\n")
    assert read_table(path, separator=";").item_ids.tolist() == ["x"]


def test_missing_column_lists_the_available_ones(tmp_path):
    path = write(tmp_path / "r.csv", "user,item\na,x\n")
    with pytest.raises(DataFormatError, match=r"r\.csv: field 'user_id': no such column \(available: user, "
                       r"item\)"):
        read_table(path)


def test_empty_value_names_the_line(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id\na,x\n\nb,\n")
    with pytest.raises(DataFormatError, match=r"r\.csv:4: field 'item_id': empty value"):
        read_table(path)


def test_bad_number_names_the_line(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,rating\na,x,4\nb,y,four\n")
    with pytest.raises(DataFormatError, match=r"r\.csv:3: field 'rating': expected a number, got 'four'"):
        read_table(path, rating="rating")


def test_bad_timestamp_names_the_line(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,t\na,x,10\nb,y,soon\n")
    with pytest.raises(DataFormatError, match=r"r\.csv:3: field 't': expected a number or a date, "
                       r"got 'soon'"):
        read_table(path, timestamp="t")


def test_parquet_null_names_the_row(tmp_path):
    pl.DataFrame({"user_id": ["a", None], "item_id": ["x", "y"]}).write_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataFormatError, match=r"r\.parquet: field 'user_id': row 1: empty value"):
        read_table(tmp_path / "r.parquet")


def test_unknown_suffix(tmp_path):
    with pytest.raises(DataFormatError, match=r"r\.xlsx: unknown table suffix '\.xlsx'"):
        read_table(write(tmp_path / "r.xlsx", "x"))


@pytest.mark.parametrize("marker", ["NaN", "nan", "NULL", "N/A", "None"])
def test_missing_value_marker_is_not_an_id(tmp_path, marker):
    """Issue 10, defect 1: "NaN" used to become a user called "NaN"."""
    path = write(tmp_path / "r.csv", f"user_id,item_id\na,x\n{marker},y\n")
    with pytest.raises(DataFormatError,
                       match=rf"r\.csv:3: field 'user_id': '{marker}' marks a missing value"):
        read_table(path)


def test_parquet_nan_ids_are_refused(tmp_path):
    frame = pl.DataFrame({"user_id": ["a", "b"], "item_id": [1.0, float("nan")]})
    frame.write_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataFormatError, match=r"r\.parquet: field 'item_id': row 1: NaN is not an id"):
        read_table(tmp_path / "r.parquet")


@pytest.mark.parametrize(("column", "value"),
                         [("t", "NaN"), ("t", "inf"), ("stars", "nan"), ("stars", "-inf")])
def test_non_finite_timestamps_and_ratings_are_refused(tmp_path, column, value):
    path = write(tmp_path / "r.csv", f"user_id,item_id,t,stars\na,x,1,2\nb,y,{value if column == 't' else 1},"
                 f"{value if column == 'stars' else 2}\n")
    with pytest.raises(DataFormatError, match=rf"r\.csv:3: field '{column}': expected a finite number"):
        read_table(path, timestamp="t", rating="stars")


@pytest.mark.parametrize(("row", "count"), [("b,y,z", 3), ("b", 1)])
def test_ragged_row_names_its_line(tmp_path, row, count):
    """Issue 10, defect 5: a long row was a polars error without a line; a short one passed silently."""
    path = write(tmp_path / "r.csv", f"user_id,item_id\na,x\n\n{row}\n")
    with pytest.raises(DataFormatError,
                       match=rf"r\.csv:4: expected 2 fields \(as the header has\), got {count}"):
        read_table(path)


def test_quoted_fields_keep_true_line_numbers(tmp_path):
    path = write(tmp_path / "r.csv", 'user_id,item_id,note\na,x,"one\ntwo, three"\nb,,z\n')
    with pytest.raises(DataFormatError, match=r"r\.csv:4: field 'item_id': empty value"):
        read_table(path)
    path = write(tmp_path / "r.csv", 'user_id,item_id,note\na,x,"one\ntwo, three"\nb,y,"z"\n')
    assert read_table(path).user_ids.tolist() == ["a", "b"]


def test_duplicate_header_name(tmp_path):
    with pytest.raises(DataFormatError,
                       match=r"r\.csv:1: field 'item_id': column appears twice in the header"):
        read_table(write(tmp_path / "r.csv", "user_id,item_id,item_id\na,x,y\n"))


@pytest.mark.parametrize(
    ("values", "dtype"),
    [([[1, 2]], r"List\(Int64\)"), ([{"k": 1}], r"Struct\(\{'k': Int64\}\)"), ([b"\x00"], "Binary")],
)
def test_non_scalar_parquet_column(tmp_path, values, dtype):
    """Issue 10, defect 4: a list column mapped as an id was a polars InvalidOperationError."""
    pl.DataFrame({"user_id": values, "item_id": ["x"]}).write_parquet(tmp_path / "r.parquet")
    with pytest.raises(DataFormatError,
                       match=rf"r\.parquet: field 'user_id': column has type {dtype}; a user "
                       r"column must hold text, integers or numbers"):
        read_table(tmp_path / "r.parquet")


def test_separator_by_name_and_a_bad_one(tmp_path):
    """Issue 10, defect 2: separator=tab was a polars ValueError."""
    path = write(tmp_path / "r.csv", "user_id|item_id\na|x\n")
    assert read_table(path, separator="pipe").item_ids.tolist() == ["x"]
    with pytest.raises(ConfigError,
                       match=r"read_table: option 'separator' must be one of tab, comma, semicolon, "
                       r"space, pipe"):
        read_table(path, separator="bar")


def test_integer_column_names_as_yaml_gives_them(tmp_path):
    path = write(tmp_path / "r.csv", "1,2,3\na,x,5\n")
    dataset = read_table(path, user=1, item=2, rating=3)
    assert dataset.user_ids.tolist() == ["a"]
    assert dataset.interactions.ratings.tolist() == [5.0]


def test_integer_timestamps_keep_every_digit(tmp_path):
    nanoseconds = 1_600_000_000_123_456_789  # float64 would round the last digits away
    path = write(tmp_path / "r.csv", f"user_id,item_id,t\na,x,{nanoseconds}\n")
    assert read_table(path, timestamp="t").interactions.timestamps.tolist() == [nanoseconds]
    frame = pl.DataFrame({"user_id": ["a"], "item_id": ["x"], "t": [nanoseconds]})
    frame.write_parquet(tmp_path / "r.parquet")
    assert read_table(tmp_path / "r.parquet", timestamp="t").interactions.timestamps.tolist() == [nanoseconds]


def test_blank_lines_are_noted(tmp_path):
    dataset = read_table(write(tmp_path / "r.csv", "\nuser_id,item_id\na,x\n\n  \nb,y\n"))
    assert "r.csv: 3 blank lines skipped" in dataset.notes
    assert dataset.user_ids.tolist() == ["a", "b"]
