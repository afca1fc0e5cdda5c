"""S3-Rec style sequence files: ``user_id item_id item_id ...`` per line, items in time order.

The Amazon Beauty / Toys / Sports, Yelp and LastFM files of S3-Rec (Zhou et al., CIKM 2020), reused
by CoSeRec, ICLRec, DuoRec, FMLP-Rec and BSARec. Ids are 1-based there (0 is the padding item), so
the dense id is ``file id - id_base`` and the raw id is the file id, as a string.

The files carry no timestamps, only order. The reader makes the order explicit: an interaction's
timestamp is its position in the user's sequence (0, 1, 2, ...), so a temporal or leave-one-out
split needs no knowledge of where the data came from.

Dense id = file id - ``id_base``, so an id far beyond the others is refused rather than turned into
a huge id space (:func:`~recforge.data.readers.common.check_id_space`), and a file in which every line
reads ``count item item ...`` is refused as probably the counted format unless ``assume_user_ids=True``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from recforge.data.dataset import Dataset, Interactions
from recforge.data.io import read_text, resolve_data_file
from recforge.data.readers import options as checks
from recforge.data.readers.common import (
    IntegerLines,
    check_id_space,
    check_minimum,
    duplicate_note,
    read_integer_lines,
    refuse_counted_shape,
)
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError

ATTRIBUTE_PADDING = 0
MAX_ATTRIBUTE_ID = 2**63 - 1
MAX_ATTRIBUTE_CELLS = 2**28  # 2 GiB of int64 padding: far above any real attribute table


@checked_options(id_base=checks.id_base)
def read_sequences(
    path: str | Path,
    *,
    id_base: int = 1,
    item_attributes: str | Path | None = None,
    name: str | None = None,
    assume_user_ids: bool = False,
) -> Dataset:
    """Read a ``u i i ...`` chronological sequence file into a :class:`Dataset`.

    Args:
        path: the sequence file (plain or ``.gz``).
        id_base: the smallest id the file uses (1 for S3-Rec files, 0 for 0-based files); ids below
            it are an error. Dense id = file id - ``id_base``.
        item_attributes: optional JSON object ``{"item_id": [attribute_id, ...]}`` (S3-Rec's
            ``*_item2attributes.json``), loaded into ``item_features["attributes"]``; see
            :func:`read_item_attributes` for the layout.
        name: the dataset's label (default: the file name without suffixes).
        assume_user_ids: take each line's first field as a user id even when every line reads
            ``count item item ...`` (refused by default: see the module docstring).

    Timestamps are int64 positions within each user's sequence; a user on several lines continues
    counting from the previous line (and ``notes`` says so).
    """
    lines = read_integer_lines(path, first_field="user_id", other_field="item_id")
    refuse_counted_shape(lines, assume_user_ids)
    check_minimum(lines, id_base, first_field="user_id", other_field="item_id", why=f"id_base is {id_base}")
    check_id_space([(lines, lines.is_first)], id_base=id_base, field="user_id", kind="user")
    check_id_space([(lines, ~lines.is_first)], id_base=id_base, field="item_id", kind="item")
    starts = lines.line_starts
    is_item = np.ones(len(lines.values), dtype=bool)
    is_item[starts] = False
    users = np.repeat(lines.values[starts] - id_base, lines.lengths - 1)
    items = lines.values[is_item] - id_base
    if len(items) == 0:
        raise DataFormatError(lines.path, "no line holds an item: expected 'user_id item_id item_id ...'")
    num_users = int(lines.values[starts].max()) - id_base + 1
    num_items = int(items.max()) + 1
    notes = ["timestamps are positions in each user's sequence (the file's order)"]
    blank = lines.blank_note()
    if blank:
        notes.append(blank)
    notes.extend(_line_notes(lines, users, num_users))
    duplicates = duplicate_note(users, items)
    if duplicates:
        notes.append(duplicates)

    item_features: dict[str, np.ndarray] = {}
    if item_attributes is not None:
        item_features["attributes"], attribute_notes = read_item_attributes(
            item_attributes, num_items=num_items, id_base=id_base
        )
        notes.extend(attribute_notes)
    return Dataset(
        name=name or _stem(lines.path),
        interactions=Interactions(users=users, items=items, timestamps=_positions(users)),
        user_ids=(np.arange(num_users) + id_base).astype(str),
        item_ids=(np.arange(num_items) + id_base).astype(str),
        item_features=item_features,
        notes=notes,
    )


class _Pairs(list[tuple[str, object]]):
    """A JSON object as its (key, value) pairs, in file order, repeats kept (json.loads would keep
    only the last of a repeated key, silently)."""


@checked_options(id_base=checks.id_base)
def read_item_attributes(
    path: str | Path, *, num_items: int, id_base: int = 1
) -> tuple[np.ndarray, list[str]]:
    """Item attribute ids from a ``{"item_id": [attribute_id, ...]}`` JSON file.

    Returns ``(attributes, notes)``: ``attributes`` is int64 of shape ``(num_items, longest list)``;
    row ``i`` holds dense item ``i``'s attribute ids exactly as in the file (S3-Rec's are 1-based,
    repeats kept) followed by ``0`` padding. A padded array rather than CSR because the lists are
    short (at most a few dozen) and models embed them as a padded batch anyway; ``0`` can be the
    padding because an attribute id of 0 is rejected. Items the file does not mention get a row of
    padding, and ``notes`` counts them. An item key given twice is an error (naming its line).
    """
    resolved = resolve_data_file(path)
    text = read_text(resolved)
    try:
        pairs = json.loads(text, object_pairs_hook=_Pairs)
    except json.JSONDecodeError as error:
        raise DataFormatError(resolved, f"not valid JSON ({error.msg})", line=error.lineno) from error
    except RecursionError as error:
        raise DataFormatError(resolved, "not valid JSON (nested too deeply)") from error
    if not isinstance(pairs, _Pairs):
        raise DataFormatError(resolved, "expected a JSON object {\"item_id\": [attribute_id, ...]}")
    rows = np.empty(len(pairs), dtype=np.int64)
    lists: list[list[int]] = []
    key_of_item: dict[int, str] = {}
    for index, (key, values) in enumerate(pairs):
        item = _parse_item_key(resolved, key, id_base, num_items)
        if item in key_of_item:  # "1" twice, or "1" and "01"
            first = key_of_item[item]
            also = "" if first == key else f" (also as {first})"
            raise DataFormatError(resolved, f"item {key} appears twice{also}",
                                  line=_line_of_key(text, key, 2 if first == key else 1), field="item_id")
        key_of_item[item] = key
        if type(values) is not list or not all(
            type(v) is int and 0 < v <= MAX_ATTRIBUTE_ID for v in values
        ):  # type(...) is: a bool is an int, and a nested object would be a _Pairs list
            raise DataFormatError(
                resolved,
                f"item {key}: expected a list of positive integer attribute ids, got {values!r:.60}",
                field="attributes",
            )
        rows[index] = item
        lists.append(values)
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    cells = num_items * int(lengths.max(initial=0))
    if cells > MAX_ATTRIBUTE_CELLS:
        raise DataFormatError(resolved, f"the longest list ({int(lengths.max())} ids) would make a padded "
                              f"table of {cells:,} cells for {num_items:,} items, over the limit of "
                              f"{MAX_ATTRIBUTE_CELLS:,}", field="attributes")
    attributes = np.full((num_items, int(lengths.max(initial=0))), ATTRIBUTE_PADDING, dtype=np.int64)
    # Scatter all ids at once: row of each id, and its column = position within its list.
    flat = np.fromiter((v for values in lists for v in values), dtype=np.int64, count=int(lengths.sum()))
    columns = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    attributes[np.repeat(rows, lengths), columns] = flat
    notes = []
    missing = num_items - int(np.count_nonzero(np.bincount(rows, minlength=num_items)))
    if missing:
        notes.append(f"{resolved.name}: {missing} items have no attributes (rows of padding)")
    return attributes, notes


def _line_of_key(text: str, key: str, occurrence: int) -> int | None:
    """The 1-based line of the ``occurrence``-th ``"key":`` in a JSON text, if it can be found."""
    matches = list(re.finditer(rf'"{re.escape(key)}"\s*:', text))
    if len(matches) < occurrence:
        return None
    return text.count("\n", 0, matches[occurrence - 1].start()) + 1


def _parse_item_key(path: Path, key: str, id_base: int, num_items: int) -> int:
    if not (key.isascii() and key.isdigit()):
        raise DataFormatError(path, f"item key '{key}' is not an integer id", field="item_id")
    item = int(key) - id_base
    if not 0 <= item < num_items:
        raise DataFormatError(
            path, f"item {key} is not in the sequence file (ids {id_base}..{num_items - 1 + id_base})",
            field="item_id",
        )
    return item


def _positions(users: np.ndarray) -> np.ndarray:
    """Each row's position among its user's rows, in file order (int64)."""
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    group_start = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    sizes = np.diff(np.r_[group_start, len(users)])
    positions = np.empty(len(users), dtype=np.int64)
    positions[order] = np.arange(len(users)) - np.repeat(group_start, sizes)
    return positions


def _line_notes(lines: IntegerLines, users: np.ndarray, num_users: int) -> list[str]:
    notes = []
    lines_per_user = np.bincount(lines.values[lines.line_starts])
    repeated = int(np.count_nonzero(lines_per_user > 1))
    if repeated:
        notes.append(f"{lines.path.name}: {repeated} users have more than one line; their sequences continue")
    empty = int(np.count_nonzero(np.bincount(users, minlength=num_users) == 0))
    if empty:
        notes.append(f"{lines.path.name}: {empty} user ids in 0..{num_users - 1} have no items")
    return notes


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".txt"):
        name = name.removesuffix(suffix)
    return name
