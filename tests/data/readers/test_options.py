"""Tests of the reader-option checks: named checks, annotation-derived checks, and the contract that
every reader is checked at its boundary."""

from __future__ import annotations

from pathlib import Path

import pytest

from recforge.data import readers, registry
from recforge.data.movielens import load_ml100k, read_ml100k_directory
from recforge.data.readers import options
from recforge.data.readers.options import annotation_check, checked_options
from recforge.errors import ConfigError


@pytest.mark.parametrize(
    ("given", "expected"),
    [("tab", "\t"), ("comma", ","), ("semicolon", ";"), ("space", " "), ("pipe", "|"), ("\\t", "\t"),
     ("\t", "\t"), (";", ";"), (None, None)],
)
def test_separator_names_and_characters(given, expected):
    assert options.separator("read_table", "separator", given) == expected


@pytest.mark.parametrize("bad", ["tabs", "", '"', "\n", "::", "§", 9])
def test_bad_separator_lists_what_is_accepted(bad):
    with pytest.raises(ConfigError, match=r"read_table: option 'separator' must be one of tab, comma, "
                       r"semicolon, space, pipe, or a single ASCII character other than a quote or a line "
                       r"break, got "):
        options.separator("read_table", "separator", bad)


def test_column_name_takes_an_int_as_its_text():
    assert options.column_name("read_table", "user", 1) == "1"
    assert options.column_name("read_table", "user", "who") == "who"
    assert options.optional_column_name("read_table", "rating", None) is None
    for bad in (True, 1.5, "", ["a"]):
        with pytest.raises(ConfigError, match=r"read_table: option 'user' must be a column name"):
            options.column_name("read_table", "user", bad)


def test_id_base_is_exactly_zero_or_one():
    assert options.id_base("read_sequences", "id_base", 0) == 0
    assert options.id_base("read_sequences", "id_base", 1) == 1
    for bad, shown in (("abc", r"'abc' \(str\)"), (True, r"True \(bool\)"), (2, r"2 \(int\)"),
                       (1.0, r"1\.0 \(float\)"), ("1", r"'1' \(str\)")):
        with pytest.raises(ConfigError, match=rf"read_sequences: option 'id_base' must be the int 0 or 1, "
                           rf"got {shown}"):
            options.id_base("read_sequences", "id_base", bad)


def test_encoding_must_be_known():
    assert options.encoding("read_atomic", "encoding", "latin-1") == "latin-1"
    with pytest.raises(ConfigError, match=r"read_atomic: option 'encoding': unknown encoding 'utf-9'"):
        options.encoding("read_atomic", "encoding", "utf-9")
    with pytest.raises(ConfigError, match=r"must be an encoding name"):
        options.encoding("read_atomic", "encoding", 8)


def test_annotation_checks():
    path_or_none = annotation_check(str | Path | None)
    assert path_or_none is not None
    assert path_or_none("r", "p", "a/b") == "a/b"  # str | Path keeps the string
    with pytest.raises(ConfigError, match=r"r: option 'p' must be a path or None, got 3 \(int\)"):
        path_or_none("r", "p", 3)
    path_only = annotation_check(Path)
    assert path_only is not None
    assert path_only("r", "p", "a/b") == Path("a/b")  # a Path-only parameter gets a Path
    flag = annotation_check(bool)
    assert flag is not None
    with pytest.raises(ConfigError, match=r"r: option 'f' must be true or false, got 'yes' \(str\)"):
        flag("r", "f", "yes")
    count = annotation_check(int)
    assert count is not None
    with pytest.raises(ConfigError, match=r"must be an int, got False \(bool\)"):
        count("r", "n", False)
    assert annotation_check(list[str]) is None  # not a simple type: left to the reader


def test_checked_options_binds_and_checks_only_what_is_given():
    @checked_options(item=options.column_name)
    def read_demo(path: str | Path, *, item: str = "item_id", flag: bool = False) -> tuple[object, ...]:
        return path, item, flag

    assert read_demo("x", item=2) == ("x", "2", False)
    with pytest.raises(ConfigError, match=r"read_demo: got an unexpected keyword argument 'items'"):
        read_demo("x", items="y")
    with pytest.raises(ConfigError, match=r"read_demo: option 'flag' must be true or false"):
        read_demo("x", flag="no")
    with pytest.raises(TypeError, match=r"has no parameters \['nothing'\]"):
        checked_options(nothing=options.column_name)(read_demo.__wrapped__)


def test_every_reader_checks_its_options():
    """A new reader must be wrapped too: this lists every public entry point that takes options."""
    entry_points = [getattr(readers, name) for name in readers.__all__ if name != "load_known_pickle"]
    entry_points += list(registry.FORMATS.values())
    entry_points += [registry.load_dataset, registry.read_path, load_ml100k, read_ml100k_directory]
    unchecked = [function.__name__ for function in entry_points if not hasattr(function, "__wrapped__")]
    assert unchecked == []
