"""Interaction tables: CSV, TSV (plain or ``.gz``) and Parquet, with a user-given column mapping.

The common case of "my own data": one row per interaction, columns named however the export named
them. Raw ids may be anything (numbers, hashes, emails); they are densified in order of first
appearance with :func:`~recforge.data.dataset.dense_ids`, and ``user_ids`` / ``item_ids`` keep them.
CSV columns are read as text first, so an id like ``007`` keeps its zeros and a bad number is
reported at its line rather than silently inferred as text.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl

from recforge.data.dataset import Dataset, Interactions, dense_ids
from recforge.data.io import read_bytes, resolve_data_file
from recforge.data.readers.common import duplicate_note
from recforge.errors import DataFormatError

TABLE_SUFFIXES: dict[str, str | None] = {".csv": ",", ".tsv": "\t", ".txt": "\t", ".parquet": None}
_ROW = "__recforge_row__"  # the source row number, kept through the dropping of blank lines


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
        separator: overrides the separator implied by the suffix (CSV/TSV only).
        name: the dataset's label (default: the file name without suffixes).

    A mapped column that does not exist, an empty value in a mapped column, or a value that is not
    a number (or date) is a :class:`DataFormatError` naming the column and the line (CSV/TSV: header
    is line 1, one row per line; Parquet: the 0-based row). Unmapped columns are listed in ``notes``.
    """
    resolved = resolve_data_file(path)
    suffix = _table_suffix(resolved)
    frame = _read_frame(resolved, suffix, separator)
    is_text = suffix != ".parquet"
    mapped = {"user": user, "item": item, "timestamp": timestamp, "rating": rating}
    for column in (c for c in mapped.values() if c is not None):
        if column not in frame.columns:
            available = ", ".join(c for c in frame.columns if c != _ROW)
            raise DataFormatError(resolved, f"no such column (available: {available})", field=column)
    if frame.height == 0:
        raise DataFormatError(resolved, "the table has no rows")
    locate = _Locator(resolved, frame, is_text)
    for column in (c for c in mapped.values() if c is not None):
        locate.raise_at_first(frame[column].is_null(), column, "empty value")

    users, user_raw = dense_ids(frame[user].cast(pl.String).to_numpy().astype(str))
    items, item_raw = dense_ids(frame[item].cast(pl.String).to_numpy().astype(str))
    timestamps = None if timestamp is None else _timestamps(frame[timestamp], locate)
    ratings = None if rating is None else _numbers(frame[rating], locate).astype(np.float32)
    notes = []
    unused = [c for c in frame.columns if c not in mapped.values() and c != _ROW]
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


def _read_frame(path: Path, suffix: str, separator: str | None) -> pl.DataFrame:
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path).with_row_index(_ROW)
        separator = separator or TABLE_SUFFIXES[suffix] or ","
        frame = pl.read_csv(io.BytesIO(read_bytes(path)), separator=separator, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataFormatError(path, f"cannot read the table ({str(error).splitlines()[0]})") from error
    # polars turns a blank line into an all-null row; drop those, keeping the row numbers of the rest.
    data_columns = frame.columns
    frame = frame.with_row_index(_ROW)
    return frame.filter(~pl.all_horizontal(pl.col(c).is_null() for c in data_columns))


class _Locator:
    """Turns a bad row into a message naming its line (text tables) or row (Parquet)."""

    def __init__(self, path: Path, frame: pl.DataFrame, is_text: bool):
        self.path, self.frame, self.is_text = path, frame, is_text

    def raise_at_first(self, bad: pl.Series, column: str, problem: str) -> None:
        if not bad.any():
            return
        index = int(bad.arg_true()[0])
        problem = problem.format(value=self.frame[column][index])
        row = int(self.frame[_ROW][index])
        if self.is_text:  # +1 for 1-based lines, +1 for the header line
            raise DataFormatError(self.path, problem, line=row + 2, field=column)
        raise DataFormatError(self.path, f"row {row}: {problem}", field=column)


def _numbers(column: pl.Series, locate: _Locator) -> np.ndarray:
    if column.dtype.is_numeric():
        return column.cast(pl.Float64).to_numpy()
    values = column.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    locate.raise_at_first(values.is_null(), column.name, "expected a number, got {value!r}")
    return values.to_numpy()


def _timestamps(column: pl.Series, locate: _Locator) -> np.ndarray:
    """Numbers as given (int64 when whole), dates and datetimes as Unix seconds."""
    if column.dtype.is_temporal():
        return column.cast(pl.Datetime("us")).dt.epoch("s").to_numpy()
    if not column.dtype.is_numeric():
        text = column.cast(pl.String).str.strip_chars()
        as_number = text.cast(pl.Float64, strict=False)
        if as_number.is_null().any():
            try:
                as_datetime = text.str.to_datetime(strict=False)
            except pl.exceptions.ComputeError:  # no date format fits any value
                as_datetime = pl.Series(column.name, [None] * len(text), dtype=pl.Datetime("us"))
            if as_datetime.is_not_null().all():
                return as_datetime.dt.epoch("s").to_numpy()
            bad = as_number.is_null() & as_datetime.is_null()
            locate.raise_at_first(bad, column.name, "expected a number or a date, got {value!r}")
            locate.raise_at_first(as_number.is_null(), column.name, "mixes numbers and dates, e.g. {value!r}")
        column = as_number
    values = column.cast(pl.Float64).to_numpy()
    if np.all(values == np.round(values)) and np.abs(values).max() < 2**62:
        return values.astype(np.int64)
    return values
