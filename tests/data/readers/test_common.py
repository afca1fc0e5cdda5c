"""Tests of the shared reader pieces: the integer-line parser, the id-space bound, the counted
shape, missing-value markers."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recforge.data.readers.common import (
    check_id_space,
    id_space_limit,
    looks_counted,
    missing_markers,
    read_integer_lines,
)
from recforge.errors import DataFormatError


def lines_of(tmp_path, text):
    path = tmp_path / "f.txt"
    path.write_text(text)
    return read_integer_lines(path, first_field="user_id", other_field="item_id")


def test_id_space_limit():
    assert id_space_limit(0) == 2**20
    assert id_space_limit(1_000) == 2**20 + 10_000
    assert id_space_limit(10**9) == 2**31  # never more than int32 indices


def test_id_space_within_the_limit_is_its_size(tmp_path):
    lines = lines_of(tmp_path, "0 1 5\n3 2\n")
    assert check_id_space([(lines, ~lines.is_first)], id_base=0, field="item_id", kind="item") == 6
    assert check_id_space([(lines, lines.is_first)], id_base=0, field="user_id", kind="user") == 4


def test_an_id_beyond_the_limit_names_its_line(tmp_path):
    lines = lines_of(tmp_path, f"0 1\n1 2\n2 {2**20 + 40}\n")
    with pytest.raises(DataFormatError, match=r"f\.txt:3: field 'item_id': id 1048616 is too large: the "
                       r"file's ids are used as dense item indices, so this needs 1,048,617 item rows for 3 "
                       r"distinct item ids, over the limit of 1,048,606"):
        check_id_space([(lines, ~lines.is_first)], id_base=0, field="item_id", kind="item")


def test_looks_counted_needs_every_line_and_two_of_them(tmp_path):
    assert looks_counted(lines_of(tmp_path, "2 5 6\n0\n1 7\n"))
    assert not looks_counted(lines_of(tmp_path, "2 5 6\n1 7 8\n"))
    assert not looks_counted(lines_of(tmp_path, "1 5\n"))  # one line: too little evidence


def test_blank_lines_are_counted_but_not_the_final_newline(tmp_path):
    assert lines_of(tmp_path, "0 1\n1 2\n").blank_lines == 0
    lines = lines_of(tmp_path, "0 1\n\n  \n1 2\n\n")
    assert lines.blank_lines == 3
    assert lines.line_numbers.tolist() == [1, 4]
    assert lines.blank_note() == "f.txt: 3 blank lines skipped"


def test_too_many_digits_says_so(tmp_path):
    with pytest.raises(DataFormatError, match=r"f\.txt:1: field 'item_id': id 1234567890123456789 has more "
                       r"than 18 digits"):
        lines_of(tmp_path, "0 1234567890123456789\n")


def test_bom_and_nul(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"\xef\xbb\xbf0 1\n")
    assert read_integer_lines(path, first_field="u", other_field="i").values.tolist() == [0, 1]
    path.write_bytes(b"0 1\n1 5\x00\n")  # numpy would read b"5\x00" as 5
    with pytest.raises(DataFormatError, match=r"f\.txt:2: a NUL byte"):
        read_integer_lines(path, first_field="u", other_field="i")


def test_missing_markers():
    values = pl.Series(["NaN", " nan ", "-NaN", "NA", "n/a", "#N/A", "<NA>", "NULL", "None", "\\N",
                        "nana", "0", "Nancy", "", "inf"])
    assert np.flatnonzero(missing_markers(values).to_numpy()).tolist() == list(range(10))
