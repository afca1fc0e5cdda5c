"""RecBole atomic files: ``.inter`` (interactions), ``.item`` and ``.user`` (side data).

Tab-separated, with a typed header such as ``user_id:token	item_id:token	rating:float``. The four
RecBole types map to numpy as follows (first axis = row of the file):

* ``token`` → str array (``""`` where empty);
* ``float`` → float64 array (NaN where empty);
* ``token_seq`` → 2-D str array, the space-separated tokens right-padded with ``""``;
* ``float_seq`` → 2-D float64 array, right-padded with NaN.

Id order: a ``.item`` (``.user``) file is the catalogue, so dense item (user) ids follow its row
order, items it lists that nobody interacted with included; this keeps ``item_titles`` aligned
with ids by construction and makes ids independent of the interaction order. Ids that appear in
``.inter`` but not in the catalogue are appended after it in order of first appearance (and
counted in ``notes``). Without a side file, ids follow first appearance in ``.inter``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from recforge.data.dataset import Dataset, Interactions, dense_ids
from recforge.data.io import read_text, resolve_data_file
from recforge.data.readers import options as checks
from recforge.data.readers.common import (
    duplicate_note,
    missing_marker_problem,
    missing_markers,
    padded_strings,
)
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


@dataclass(frozen=True)
class AtomicTable:
    """One parsed atomic file: its fields (name → type), the raw string columns, and line numbers.

    ``line_numbers[row]`` is the 1-based file line of data row ``row``, for error messages;
    ``blank_lines`` counts the empty lines skipped.
    """

    path: Path
    types: dict[str, str]
    columns: pl.DataFrame  # one String column per field, named by the field name (no type)
    line_numbers: np.ndarray
    blank_lines: int = 0

    def __len__(self) -> int:
        return self.columns.height

    def require(self, field: str) -> None:
        if field not in self.types:
            raise DataFormatError(
                self.path, f"no such field (the header has: {', '.join(self.types)})", line=1, field=field
            )

    def strings(self, field: str) -> np.ndarray:
        """A ``token`` column as a str array, used for ids: an empty value or a missing-value marker
        (``NaN``, ``null``, ...; see :data:`~recforge.data.readers.common.MISSING_MARKERS`) is an error."""
        self.require(field)
        column = self.columns[field]
        self._raise_at_first(column.is_null(), field, "empty value")
        self._raise_at_first(missing_markers(column), field, missing_marker_problem())
        return column.to_numpy().astype(str)

    def numbers(self, field: str, *, allow_empty: bool) -> np.ndarray:
        """A ``float`` column as float64; text that is not a number is an error naming its line.

        With ``allow_empty=False`` (ratings, timestamps) every value must be a finite number; with
        ``allow_empty=True`` (features) an empty value or ``nan`` reads as NaN.
        """
        self.require(field)
        column = self.columns[field]
        values = column.str.strip_chars().cast(pl.Float64, strict=False)
        not_numbers = values.is_null() & column.is_not_null()
        self._raise_at_first(not_numbers, field, "expected a number, got {value!r}")
        if not allow_empty:
            self._raise_at_first(column.is_null(), field, "empty value")
            self._raise_at_first(~values.is_finite(), field, "expected a finite number, got {value!r}")
        return values.fill_null(np.nan).to_numpy()

    def feature(self, field: str) -> np.ndarray:
        """A side-data column converted by its declared type (see the module docstring)."""
        kind = self.types[field]
        if kind == "token":
            return self.columns[field].fill_null("").to_numpy().astype(str)
        if kind == "float":
            return self.numbers(field, allow_empty=True)
        token_lists = self.columns[field].fill_null("").str.split(" ").to_list()
        token_lists = [[token for token in tokens if token] for tokens in token_lists]
        if kind == "token_seq":
            return padded_strings(token_lists)
        return self._padded_floats(field, token_lists)

    def _padded_floats(self, field: str, token_lists: list[list[str]]) -> np.ndarray:
        width = max((len(tokens) for tokens in token_lists), default=0)
        table = np.full((len(token_lists), width), np.nan)
        for row, tokens in enumerate(token_lists):
            try:
                table[row, : len(tokens)] = [float(token) for token in tokens]
            except ValueError as error:
                raise DataFormatError(self.path, f"expected numbers ({error})",
                                      line=int(self.line_numbers[row]), field=field) from error
        return table

    def _raise_at_first(self, bad: pl.Series, field: str, problem: str) -> None:
        if bad.any():
            row = int(bad.arg_true()[0])
            value = self.columns[field][row]
            raise DataFormatError(self.path, problem.format(value=value), line=int(self.line_numbers[row]),
                                  field=field)


@checked_options(encoding=checks.encoding)
def read_atomic_table(path: str | Path, *, encoding: str = "utf-8") -> AtomicTable:
    """Parse one atomic file: validate the typed header (line 1) and each line's field count.

    Blank lines are skipped. A header field without ``:type``, an unknown type, a repeated field
    name, or a line with another number of fields is a :class:`DataFormatError` naming the line.
    Line bookkeeping is vectorized over the byte buffer, so a 20M-line file costs no Python loop.
    """
    resolved = resolve_data_file(path)
    data = read_text(resolved, encoding=encoding).encode("utf-8")
    buffer = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buffer == ord("\n"))
    starts = np.r_[0, newlines + 1]
    ends = np.r_[newlines, len(data)]
    if len(starts) > 1 and starts[-1] == len(data):  # the final newline opens no line
        starts, ends = starts[:-1], ends[:-1]
    if len(starts) == 0 or ends[0] == starts[0]:
        raise DataFormatError(resolved, "expected a header like 'user_id:token<TAB>item_id:token'", line=1)
    types = _parse_header(resolved, data[: ends[0]].decode("utf-8"), 1)

    tab_line = np.searchsorted(starts, np.flatnonzero(buffer == ord("\t")), side="right") - 1
    tabs_per_line = np.bincount(tab_line, minlength=len(starts))
    blank = ends == starts
    wrong = np.flatnonzero(~blank & (tabs_per_line != len(types) - 1))
    if len(wrong):
        line = int(wrong[0])
        raise DataFormatError(resolved, f"expected {len(types)} tab-separated fields, got "
                              f"{int(tabs_per_line[line]) + 1}", line=line + 1)
    names = list(types)
    kept = np.flatnonzero(~blank)[1:]
    if blank.any():  # polars mis-sizes a table that starts with a blank line: hand it only the rest
        body = b"\n".join(data[starts[line] : ends[line]] for line in kept.tolist())
    else:
        body = data[ends[0] + 1 :]
    if len(kept):
        columns = pl.read_csv(io.BytesIO(body), has_header=False, new_columns=names, separator="\t",
                              quote_char=None, infer_schema=False)
        if columns.height != len(kept):
            raise DataFormatError(resolved, f"read {columns.height} rows from {len(kept)} lines")
    else:
        columns = pl.DataFrame(schema=dict.fromkeys(names, pl.String))
    line_numbers = kept + 1
    return AtomicTable(path=resolved, types=types, columns=columns, line_numbers=line_numbers,
                       blank_lines=int(np.count_nonzero(blank)))


def _parse_header(path: Path, header: str, line: int) -> dict[str, str]:
    types: dict[str, str] = {}
    for entry in header.split("\t"):
        field, separator, kind = entry.strip().rpartition(":")
        if not separator or not field:
            raise DataFormatError(path, f"header entry '{entry}' is not 'name:type'", line=line, field=entry)
        if kind not in ATOMIC_TYPES:
            raise DataFormatError(path, f"unknown type '{kind}'; expected one of {', '.join(ATOMIC_TYPES)}",
                                  line=line, field=field)
        if field in types:
            raise DataFormatError(path, "field appears twice in the header", line=line, field=field)
        types[field] = kind
    return types


@checked_options(user_field=checks.column_name, item_field=checks.column_name,
                 rating_field=checks.column_name, timestamp_field=checks.column_name,
                 encoding=checks.encoding)
def read_atomic(
    inter_path: str | Path,
    *,
    item_path: str | Path | None = None,
    user_path: str | Path | None = None,
    name: str | None = None,
    user_field: str = "user_id",
    item_field: str = "item_id",
    rating_field: str = "rating",
    timestamp_field: str = "timestamp",
    encoding: str = "utf-8",
) -> Dataset:
    """Read RecBole atomic files into a :class:`Dataset`.

    Args:
        inter_path: the ``.inter`` file; ``user_field`` and ``item_field`` (``token``) are required,
            ``rating_field`` and ``timestamp_field`` (``float``) are used when present.
        item_path / user_path: optional ``.item`` / ``.user`` files; they fix the id order (see the
            module docstring). A field whose name contains ``title`` becomes ``item_titles`` (the
            text as written); every other field becomes an item (user) feature.
        name: the dataset's label (default: the ``.inter`` file's stem).

    Timestamps are int64 when every value is a whole number (Unix seconds, as in ML-100K), else
    float64. Ratings are float32. Other ``.inter`` fields are not loaded, and ``notes`` names them.
    """
    inter = read_atomic_table(inter_path, encoding=encoding)
    for field in (user_field, item_field):
        inter.require(field)
        if inter.types[field] != "token":
            raise DataFormatError(inter.path, f"an id field must be of type token, not {inter.types[field]}",
                                  line=1, field=field)
    if len(inter) == 0:
        raise DataFormatError(inter.path, "no interactions (the file holds only a header)")
    notes: list[str] = []
    item_table = None if item_path is None else read_atomic_table(item_path, encoding=encoding)
    user_table = None if user_path is None else read_atomic_table(user_path, encoding=encoding)
    users, user_raw = _ids(inter.strings(user_field), user_table, user_field, notes)
    items, item_raw = _ids(inter.strings(item_field), item_table, item_field, notes)

    ratings = timestamps = None
    if rating_field in inter.types:
        ratings = inter.numbers(rating_field, allow_empty=False).astype(np.float32)
    if timestamp_field in inter.types:
        timestamps = _whole_numbers_as_int(inter.numbers(timestamp_field, allow_empty=False))
    unused = [f for f in inter.types if f not in {user_field, item_field, rating_field, timestamp_field}]
    if unused:
        notes.append(f"{inter.path.name}: fields not loaded: {', '.join(unused)}")
    for table in (inter, item_table, user_table):
        if table is not None and table.blank_lines:
            notes.append(f"{table.path.name}: {table.blank_lines} blank lines skipped")
    duplicates = duplicate_note(users, items)
    if duplicates:
        notes.append(duplicates)

    item_titles: np.ndarray | None = None
    item_features: dict[str, np.ndarray] = {}
    if item_table is not None:
        item_titles, item_features = _side_data(item_table, item_field, len(item_raw))
    user_features: dict[str, np.ndarray] = {}
    if user_table is not None:
        _, user_features = _side_data(user_table, user_field, len(user_raw))
    return Dataset(
        name=name or inter.path.name.removesuffix(".gz").removesuffix(".inter"),
        interactions=Interactions(users=users, items=items, timestamps=timestamps, ratings=ratings),
        user_ids=user_raw,
        item_ids=item_raw,
        item_titles=item_titles,
        item_features=item_features,
        user_features=user_features,
        notes=notes,
    )


def _ids(
    raw: np.ndarray, catalogue: AtomicTable | None, field: str, notes: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Dense ids of ``raw`` and the raw id of each dense id (catalogue rows first, see module doc)."""
    if catalogue is None:
        return dense_ids(raw)
    listed = catalogue.strings(field)
    order = np.argsort(listed, kind="stable")
    repeats = order[1:][listed[order[1:]] == listed[order[:-1]]]
    if len(repeats):
        row = int(repeats.min())
        raise DataFormatError(catalogue.path, f"id '{listed[row]}' is listed twice",
                              line=int(catalogue.line_numbers[row]), field=field)
    dense, raw_ids = dense_ids(np.concatenate([listed, raw]))
    extra = len(raw_ids) - len(listed)
    if extra:
        notes.append(f"{extra} {field} values in the interactions are missing from {catalogue.path.name}; "
                     "they get ids after the listed ones and empty side data")
    return dense[len(listed):], raw_ids


def _side_data(
    table: AtomicTable, id_field: str, total: int
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Titles and features of a catalogue, padded with empty rows for the ids it does not list."""
    titles: np.ndarray | None = None
    features: dict[str, np.ndarray] = {}
    for field, kind in table.types.items():
        if field == id_field:
            continue
        if "title" in field and kind in ("token", "token_seq"):
            titles = _pad_rows(table.columns[field].fill_null("").to_numpy().astype(str), total)
        else:
            features[field] = _pad_rows(table.feature(field), total)
    return titles, features


def _pad_rows(values: np.ndarray, total: int) -> np.ndarray:
    """``values`` extended to ``total`` rows with the empty value of its dtype ("" or NaN)."""
    missing = total - len(values)
    if missing == 0:
        return values
    fill = np.nan if values.dtype.kind == "f" else ""
    padding = np.full((missing, *values.shape[1:]), fill, dtype=values.dtype)
    return np.concatenate([values, padding])


def _whole_numbers_as_int(values: np.ndarray) -> np.ndarray:
    if np.all(np.isfinite(values)) and np.all(values == np.round(values)) and np.abs(values).max() < 2**62:
        return values.astype(np.int64)
    return values
