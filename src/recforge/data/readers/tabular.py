"""Interaction tables: CSV, TSV (plain or ``.gz``) and Parquet, with a user-given column mapping.

The common case of "my own data": one row per interaction, columns named however the export named
them. Raw ids may be anything (numbers, hashes, emails); they are densified in order of first
appearance with :func:`~recforge.data.dataset.dense_ids`, and ``user_ids`` / ``item_ids`` keep them.
CSV columns are read as text first, so an id like ``007`` keeps its zeros and a bad number is
reported at its line rather than silently inferred as text.

Text tables are checked line by line before polars parses them: the header (the first non-blank
line) must name each column once, and every other non-blank line must have as many fields, so a
ragged row is reported at its line. A file without a double quote is split by numpy; a file with
quotes (a field may then hold the separator or a line break) goes through Python's ``csv`` module,
which knows where each record starts. Blank lines are skipped and counted in ``notes``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recforge.data.dataset import Dataset, Interactions, dense_ids
from recforge.data.io import read_text, resolve_data_file
from recforge.data.readers import options as checks
from recforge.data.readers.common import duplicate_note, missing_marker_problem, missing_markers
from recforge.data.readers.options import checked_options
from recforge.errors import ConfigError, DataFormatError

TABLE_SUFFIXES: dict[str, str | None] = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None}
_WHITESPACE = b" \t\r\x0b\x0c"


def _is_text_type(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def _is_id_type(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean or _is_text_type(dtype)


def _is_timestamp_type(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Date or isinstance(dtype, pl.Datetime) or _is_text_type(dtype)


def _is_rating_type(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or _is_text_type(dtype)


# What each mapped role may hold: scalars only (a list or struct column is not an id).
_COLUMN_TYPES = {
    "user": (_is_id_type, "text, integers or numbers (an id is one scalar per row)"),
    "item": (_is_id_type, "text, integers or numbers (an id is one scalar per row)"),
    "timestamp": (_is_timestamp_type, "numbers, dates, datetimes or text"),
    "rating": (_is_rating_type, "numbers or text holding numbers"),
}


@checked_options(user=checks.column_name, item=checks.column_name,
                 timestamp=checks.optional_column_name, rating=checks.optional_column_name,
                 separator=checks.separator)
def read_table(
    path: str | Path,
    *,
    user: str = "user_id",
    item: str = "item_id",
    timestamp: str | None = None,
    rating: str | None = None,
    separator: str | None = None,
    name: str | None = None,
) -> Dataset:
    """Read an interaction table into a :class:`Dataset`.

    Args:
        path: ``.csv``, ``.tsv``, ``.txt`` (tab-separated), each optionally ``.gz``, or ``.parquet``.
        user / item: the columns holding raw user and item ids.
        timestamp: optional column of numbers (kept as int64 when whole, else float64) or
            dates/datetimes (converted to Unix seconds, int64).
        rating: optional numeric column (float32).
        separator: overrides the separator implied by the suffix (CSV/TSV only): one of ``tab``,
            ``comma``, ``semicolon``, ``space``, ``pipe``, or a single character.
        name: the dataset's label (default: the file name without suffixes).

    Column options may be ints (YAML reads ``user: 1`` as one): they name the column ``"1"``.

    A :class:`DataFormatError` names the column and the line (CSV/TSV: the file's line, the header
    being line 1 when it comes first; Parquet: the 0-based row) for: a mapped column that does not
    exist or holds non-scalars (a Parquet list or struct), an empty value in a mapped column, an id
    that is a missing-value marker (``NaN``, ``null``, ``N/A``, ...; see
    :data:`~recforge.data.readers.common.MISSING_MARKERS`) or a float NaN, a rating or timestamp
    that is not a finite number (or date), a ragged row, a repeated header name. Unmapped columns
    and skipped blank lines are listed in ``notes``.
    """
    resolved = resolve_data_file(path)
    suffix = _table_suffix(resolved)
    if suffix == ".parquet" and separator is not None:
        raise ConfigError(f"read_table: option 'separator' applies to CSV/TSV files, not to {resolved.name}")
    notes: list[str] = []
    if suffix == ".parquet":
        parsed = _read_parquet(resolved)
    else:
        parsed = _read_text_table(resolved, separator or TABLE_SUFFIXES[suffix] or ",")
        if parsed.blank_lines:
            notes.append(f"{resolved.name}: {parsed.blank_lines} blank lines skipped")
    frame = parsed.frame
    mapped = {"user": user, "item": item, "timestamp": timestamp, "rating": rating}
    for role, column in mapped.items():
        if column is None:
            continue
        if column not in frame.columns:
            available = ", ".join(frame.columns)
            raise DataFormatError(resolved, f"no such column (available: {available})", field=column)
        accepts, expected = _COLUMN_TYPES[role]
        if not accepts(frame[column].dtype):
            raise DataFormatError(resolved, f"column has type {frame[column].dtype}; a {role} column must "
                                  f"hold {expected}", field=column)
    if frame.height == 0:
        raise DataFormatError(resolved, "the table has no rows")
    locate = _Locator(resolved, frame, parsed.line_numbers)
    for column in (c for c in mapped.values() if c is not None):
        locate.raise_at_first(frame[column].is_null(), column, "empty value")

    users, user_raw = dense_ids(_id_strings(frame[user], locate))
    items, item_raw = dense_ids(_id_strings(frame[item], locate))
    timestamps = None if timestamp is None else _timestamps(frame[timestamp], locate)
    ratings = None if rating is None else _numbers(frame[rating], locate).astype(np.float32)
    unused = [c for c in frame.columns if c not in mapped.values()]
    if unused:
        notes.append(f"{resolved.name}: columns not loaded: {', '.join(unused)}")
    duplicates = duplicate_note(users, items)
    if duplicates:
        notes.append(duplicates)
    return Dataset(
        name=name or resolved.name.split(".")[0],
        interactions=Interactions(users=users, items=items, timestamps=timestamps, ratings=ratings),
        user_ids=user_raw,
        item_ids=item_raw,
        notes=notes,
    )


def _table_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in TABLE_SUFFIXES:
        expected = ", ".join(TABLE_SUFFIXES)
        raise DataFormatError(path, f"unknown table suffix '{suffix}'; expected one of {expected}")
    return suffix


@dataclass(frozen=True)
class _ParsedTable:
    """The table as text columns (Parquet: as stored), and where each row came from.

    ``line_numbers[row]`` is the 1-based file line where text row ``row`` starts; None for Parquet,
    whose rows are reported by their 0-based index.
    """

    frame: pl.DataFrame
    line_numbers: np.ndarray | None
    blank_lines: int = 0


def _read_parquet(path: Path) -> _ParsedTable:
    try:
        return _ParsedTable(pl.read_parquet(path), None)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as error:
        raise DataFormatError(path, f"cannot read the table ({str(error).splitlines()[0]})") from error


def _read_text_table(path: Path, separator: str) -> _ParsedTable:
    """Check the header and every line's field count, then parse (see the module docstring)."""
    text = read_text(path)  # NUL bytes, bad UTF-8 (at their line), a BOM, \r\n: handled there
    if '"' in text:
        header, header_line, rows, line_numbers, blank_count = _split_quoted(path, text, separator)
        _check_header(path, header, header_line)
        frame = pl.DataFrame(
            {name: [row[index] or None for row in rows] for index, name in enumerate(header)},
            schema=dict.fromkeys(header, pl.String),
        )
        return _ParsedTable(frame, line_numbers, blank_count)

    data = text.encode("utf-8")
    buffer = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == ord("\n"))
    starts = np.r_[0, newlines + 1]
    ends = np.r_[newlines, len(data)]
    if len(starts) > 1 and starts[-1] == len(data):  # the newline ending the last line opens no line
        starts, ends = starts[:-1], ends[:-1]

    def per_line(positions: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(starts, positions, side="right") - 1, minlength=len(starts))

    separators = per_line(np.flatnonzero(buffer == ord(separator)))
    blank = np.zeros(len(starts), dtype=bool)
    for line in np.flatnonzero(separators == 0).tolist():  # few: a header has separators, so do rows
        blank[line] = not data[starts[line] : ends[line]].strip(_WHITESPACE)
    non_blank = np.flatnonzero(~blank)
    if len(non_blank) == 0:
        raise DataFormatError(path, "empty file: expected a header line naming the columns")
    first = int(non_blank[0])
    header = data[starts[first] : ends[first]].decode("utf-8").split(separator)
    _check_header(path, header, first + 1)
    records = non_blank[1:]
    wrong = records[separators[records] != len(header) - 1]
    if len(wrong):
        line = int(wrong[0])
        raise DataFormatError(path, f"expected {len(header)} fields (as the header has), got "
                              f"{int(separators[line]) + 1}", line=line + 1)
    if len(records) == 0:
        frame = pl.DataFrame(schema=dict.fromkeys(header, pl.String))
    else:
        if len(records) == len(starts) - first - 1:  # no blank line after the header: parse in one go
            body = data[starts[records[0]] :]
        else:
            body = b"\n".join(data[starts[line] : ends[line]] for line in records.tolist())
        try:
            frame = pl.read_csv(io.BytesIO(body), has_header=False, separator=separator, quote_char=None,
                                schema=dict.fromkeys(header, pl.String))
        except pl.exceptions.PolarsError as error:  # pragma: no cover - the lines were checked above
            raise DataFormatError(path, f"cannot read the table ({str(error).splitlines()[0]})") from error
        if frame.height != len(records):  # pragma: no cover - a guard on the line bookkeeping
            raise DataFormatError(path, f"read {frame.height} rows from {len(records)} lines")
    return _ParsedTable(frame, records + 1, int(np.count_nonzero(blank)))


def _split_quoted(
    path: Path, text: str, separator: str
) -> tuple[list[str], int, list[list[str]], np.ndarray, int]:
    """Header, its line, the data records, the line each record starts on, and the blank-line count
    of a CSV with quoted fields; a ragged record or broken quoting is an error at its line."""
    reader = csv.reader(io.StringIO(text), delimiter=separator, strict=True)
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    lines: list[int] = []
    blank = 0
    previous_end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise DataFormatError(path, f"malformed CSV ({error})", line=reader.line_num) from error
        line, previous_end = previous_end + 1, reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            blank += 1
            continue
        if header is None:
            header, header_line = row, line
            continue
        if len(row) != len(header):
            raise DataFormatError(path, f"expected {len(header)} fields (as the header has), got {len(row)}",
                                  line=line)
        rows.append(row)
        lines.append(line)
    if header is None:
        raise DataFormatError(path, "empty file: expected a header line naming the columns")
    return header, header_line, rows, np.array(lines, dtype=np.int64), blank


def _check_header(path: Path, header: list[str], line: int) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataFormatError(path, "column appears twice in the header", line=line, field=name)
        seen.add(name)


class _Locator:
    """Turns a bad row into a message naming its line (text tables) or row (Parquet)."""

    def __init__(self, path: Path, frame: pl.DataFrame, line_numbers: np.ndarray | None):
        self.path, self.frame, self.line_numbers = path, frame, line_numbers

    def raise_at_first(self, bad: pl.Series | np.ndarray, column: str, problem: str) -> None:
        if not bad.any():
            return
        index = int(np.flatnonzero(np.asarray(bad))[0])
        problem = problem.format(value=self.frame[column][index])
        if self.line_numbers is not None:
            raise DataFormatError(self.path, problem, line=int(self.line_numbers[index]), field=column)
        raise DataFormatError(self.path, f"row {index}: {problem}", field=column)


def _id_strings(column: pl.Series, locate: _Locator) -> np.ndarray:
    """Raw ids as strings; a float NaN or infinity, or a missing-value marker, is an error."""
    if column.dtype.is_float():
        locate.raise_at_first(column.is_nan(), column.name, "NaN is not an id")
        locate.raise_at_first(column.is_infinite(), column.name, "{value} is not an id")
    text = column.cast(pl.String)
    locate.raise_at_first(missing_markers(text), column.name, missing_marker_problem())
    return text.to_numpy().astype(str)


def _finite(values: np.ndarray, column: pl.Series, locate: _Locator) -> np.ndarray:
    locate.raise_at_first(~np.isfinite(values), column.name, "expected a finite number, got {value!r}")
    return values


def _numbers(column: pl.Series, locate: _Locator) -> np.ndarray:
    if column.dtype.is_numeric():
        return _finite(column.cast(pl.Float64).to_numpy(), column, locate)
    values = column.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    locate.raise_at_first(values.is_null(), column.name, "expected a number, got {value!r}")
    return _finite(values.to_numpy(), column, locate)


def _timestamps(column: pl.Series, locate: _Locator) -> np.ndarray:
    """Numbers as given (int64 when whole), dates and datetimes as Unix seconds.

    Integers stay int64 end to end: through float64, a nanosecond timestamp would lose its last digits.
    """
    if column.dtype == pl.Date or isinstance(column.dtype, pl.Datetime):
        return column.dt.epoch("s").to_numpy()
    original = column
    if column.dtype.is_integer():
        as_int = column.cast(pl.Int64, strict=False)
        locate.raise_at_first(as_int.is_null(), column.name, "{value} does not fit in int64")
        return as_int.to_numpy()
    if not column.dtype.is_numeric():
        text = column.cast(pl.String).str.strip_chars()
        as_int = text.cast(pl.Int64, strict=False)
        if as_int.is_not_null().all():
            return as_int.to_numpy()
        as_number = text.cast(pl.Float64, strict=False)
        if as_number.is_null().any():
            try:
                as_datetime = text.str.to_datetime(strict=False)
            except pl.exceptions.PolarsError:  # no date format fits any value
                as_datetime = pl.Series(column.name, [None] * len(text), dtype=pl.Datetime("us"))
            if as_datetime.is_not_null().all():
                return as_datetime.dt.epoch("s").to_numpy()
            bad = as_number.is_null() & as_datetime.is_null()
            locate.raise_at_first(bad, column.name, "expected a number or a date, got {value!r}")
            locate.raise_at_first(as_number.is_null(), column.name, "mixes numbers and dates, e.g. {value!r}")
        column = as_number
    values = _finite(column.cast(pl.Float64).to_numpy(), original, locate)
    if np.all(values == np.round(values)) and np.abs(values).max() < 2**62:
        return values.astype(np.int64)
    return values
