"""LightGCN / NGCF split files: ``user_id item_id item_id ...`` per line, 0-based contiguous ids.

Gowalla, Yelp2018 and Amazon-Book as published with LightGCN (He et al., SIGIR 2020) and reused by
NGCF, SGL, SimGCL and BARS. The dense id *is* the file id, so results line up with every paper
that used these files; ``user_list.txt`` / ``item_list.txt`` (``org_id remap_id``) give the raw ids.

Because the file id is the dense id, an id far beyond the others (``2**40``) is refused rather than
turned into a trillion users (see :func:`~recforge.data.readers.common.check_id_space`), and a file in
which every line reads ``count item item ...`` is refused as probably the counted format
(:func:`~recforge.data.readers.common.looks_counted`) unless ``assume_user_ids=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recforge.data.dataset import Dataset, Fold, Interactions
from recforge.data.io import read_text, resolve_data_file
from recforge.data.readers.common import (
    MISSING_MARKERS,
    IntegerLines,
    check_id_space,
    duplicate_note,
    missing_marker_problem,
    read_integer_lines,
    refuse_counted_shape,
)
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError

_SHOWN_LINES = 5  # how many line numbers a note lists before "..."


@checked_options()
def read_lightgcn(
    train_path: str | Path,
    test_path: str | Path | None = None,
    *,
    item_list: str | Path | None = None,
    user_list: str | Path | None = None,
    name: str = "lightgcn",
    assume_user_ids: bool = False,
) -> Dataset:
    """Read a LightGCN-format train file (and test file) into one :class:`Dataset` with ``fold`` set.

    Args:
        train_path / test_path: ``u i i i ...`` files (plain or ``.gz``; ``x.txt`` finds ``x.txt.gz``).
        item_list / user_list: optional ``org_id remap_id`` files giving the raw id of each file id.
        name: the dataset's label.
        assume_user_ids: take each line's first field as a user id even when every line of a file
            reads ``count item item ...`` (refused by default: see the module docstring).

    The user space is the train file's (``max train user id + 1``, or the user list's length): a
    test user outside it is an error, because a model cannot rank for a user it never saw. A line
    holding only a user id (Amazon-Book's test file has some) is allowed and reported in ``notes``.
    Without a list, the id space (largest id + 1) must be within
    :func:`~recforge.data.readers.common.id_space_limit` of the distinct ids.
    """
    train = read_integer_lines(train_path, first_field="user_id", other_field="item_id")
    test = None
    if test_path is not None:
        test = read_integer_lines(test_path, first_field="user_id", other_field="item_id")
    files = [part for part in (train, test) if part is not None]
    for part in files:
        refuse_counted_shape(part, assume_user_ids)
    user_raw = None if user_list is None else read_id_list(user_list)
    item_raw = None if item_list is None else read_id_list(item_list)
    if user_raw is None:  # the user space is the train file's; test users are checked against it
        check_id_space([(train, train.is_first)], id_base=0, field="user_id", kind="user")
    if item_raw is None:
        check_id_space([(part, ~part.is_first) for part in files], id_base=0, field="item_id", kind="item")

    train_line_users = train.values[train.line_starts]
    num_users = len(user_raw) if user_raw is not None else int(train_line_users.max()) + 1
    notes: list[str] = []
    parts, folds = [], []
    for lines, fold in ((train, Fold.TRAIN), (test, Fold.TEST)):
        if lines is None:
            continue
        users, items = _pairs(lines)
        _check_users(lines, num_users, _user_space(user_raw, train))
        notes.extend(_line_notes(lines, fold))
        parts.append(Interactions(users=users, items=items))
        folds.append(np.full(len(users), fold, dtype=np.int8))
    interactions = Interactions.concatenate(parts)
    fold_column = np.concatenate(folds)
    if len(interactions) == 0:
        raise DataFormatError(train.path, "no line holds an item: expected 'user_id item_id item_id ...'")

    if item_raw is not None:
        for lines in (train, test):
            if lines is not None:
                _check_items(lines, len(item_raw), f"the item list has {len(item_raw)} items")
    num_items = len(item_raw) if item_raw is not None else int(interactions.items.max()) + 1
    duplicates = duplicate_note(interactions.users, interactions.items, fold_column)
    if duplicates:
        notes.append(duplicates)
    return Dataset(
        name=name,
        interactions=interactions,
        user_ids=user_raw if user_raw is not None else np.arange(num_users).astype(str),
        item_ids=item_raw if item_raw is not None else np.arange(num_items).astype(str),
        fold=fold_column,
        notes=notes,
    )


@checked_options()
def read_id_list(path: str | Path) -> np.ndarray:
    """Raw ids from an ``org_id remap_id`` file: ``result[remap_id] == org_id`` (as strings).

    The remapped ids must be exactly ``0..n-1`` (in any order), since they are the dense ids.
    """
    resolved = resolve_data_file(path)
    rows = [line.split() for line in read_text(resolved).split("\n")]
    numbered = [(number, row) for number, row in enumerate(rows, start=1) if row]
    if numbered and numbered[0][1] == ["org_id", "remap_id"]:
        numbered = numbered[1:]
    if not numbered:
        raise DataFormatError(resolved, "empty id list: expected lines of 'org_id remap_id'")
    for number, row in numbered:
        if len(row) != 2:
            raise DataFormatError(resolved, f"expected 2 fields 'org_id remap_id', got {len(row)}",
                                  line=number)
    for number, row in numbered:
        if row[0].lower() in MISSING_MARKERS:
            raise DataFormatError(resolved, missing_marker_problem().format(value=row[0]), line=number,
                                  field="org_id")
    remap_tokens = np.array([row[1] for _, row in numbered])
    if not np.char.isdigit(remap_tokens).all():
        index = int(np.flatnonzero(~np.char.isdigit(remap_tokens))[0])
        raise DataFormatError(
            resolved, f"expected a non-negative integer, got '{remap_tokens[index]}'",
            line=numbered[index][0], field="remap_id",
        )
    remap = remap_tokens.astype(np.int64)
    if not np.array_equal(np.sort(remap), np.arange(len(remap))):
        raise DataFormatError(resolved, f"remap_id values must be 0..{len(remap) - 1}, each once",
                              field="remap_id")
    raw = np.empty(len(remap), dtype=object)
    raw[remap] = [row[0] for _, row in numbered]
    return raw.astype(str)


def _pairs(lines: IntegerLines) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) rows: each line's first token repeated once per following token."""
    starts = lines.line_starts
    is_item = np.ones(len(lines.values), dtype=bool)
    is_item[starts] = False
    return np.repeat(lines.values[starts], lines.lengths - 1), lines.values[is_item]


def _user_space(user_raw: np.ndarray | None, train: IntegerLines) -> str:
    if user_raw is not None:
        return f"the user list has {len(user_raw)} users"
    return f"the train file's users are 0..{int(train.values[train.line_starts].max())}"


def _check_users(lines: IntegerLines, num_users: int, space: str) -> None:
    """An error at the first line whose user id is outside ``0..num_users-1``."""
    line_users = lines.values[lines.line_starts]
    outside = np.flatnonzero(line_users >= num_users)
    if len(outside):
        raise DataFormatError(
            lines.path, f"user {int(line_users[outside[0]])} is not a known user ({space})",
            line=int(lines.line_numbers[outside[0]]), field="user_id",
        )


def _check_items(lines: IntegerLines, limit: int, space: str) -> None:
    _, items = _pairs(lines)
    if len(items) and items.max() >= limit:
        starts = set(lines.line_starts.tolist())
        index = next(i for i in np.flatnonzero(lines.values >= limit).tolist() if i not in starts)
        raise DataFormatError(
            lines.path, f"item {int(lines.values[index])} is not a known item ({space})",
            line=lines.line_of_token(index), field="item_id",
        )


def _line_notes(lines: IntegerLines, fold: Fold) -> list[str]:
    notes = []
    blank = lines.blank_note()
    if blank:
        notes.append(blank)
    user_only = lines.line_numbers[lines.lengths == 1]
    if len(user_only):
        shown = ", ".join(str(n) for n in user_only[:_SHOWN_LINES])
        if len(user_only) > _SHOWN_LINES:
            shown += ", ..."
        notes.append(f"{lines.path.name}: {len(user_only)} lines hold a user id and no items (lines {shown})")
    _, lines_per_user = np.unique(lines.values[lines.line_starts], return_counts=True)
    repeated = lines_per_user > 1
    if repeated.any():  # count users, not their extra lines
        extra = int(lines_per_user[repeated].sum() - np.count_nonzero(repeated))
        notes.append(f"{lines.path.name}: {int(np.count_nonzero(repeated))} users have more than one line "
                     f"({extra} extra lines, {fold.name.lower()} fold); their items are combined")
    return notes
