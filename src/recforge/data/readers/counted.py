"""Counted user files: one line per user, ``count item item ...``, the first field being how many
item ids follow.

Several public datasets are written this way, with 0-based ids (CiteULike's ``users.dat`` from
Wang & Blei, KDD 2011, and the CiteULike-t and other collaborative-topic-regression data). The file
holds no user ids: **user ``u`` is the ``u``-th line** (0-based, in file order), so the file holds
exactly one line per user, and a line ``0`` is a user with no items. A blank line before the last
user would shift every later user, so it is an error; blank lines after the last user are ignored.

Dense item id = file id - ``id_base``, as in the sequence reader; raw ids are the file's ids (users:
``str(u + id_base)``, so a 1-based dataset's first user is ``"1"``). The item order within a line
is kept as the row order but is not taken as time: the format promises none, so ``timestamps`` is
None. The same file also parses as ``user item item ...`` with the counts taken for user ids; the
user-first readers refuse it (:func:`~recforge.data.readers.common.looks_counted`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recforge.data.dataset import Dataset, Interactions
from recforge.data.readers import options as checks
from recforge.data.readers.common import check_id_space, check_minimum, duplicate_note, read_integer_lines
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError


@checked_options(id_base=checks.id_base)
def read_counted(path: str | Path, *, id_base: int = 0, name: str | None = None) -> Dataset:
    """Read a ``count item item ...`` file (one line per user) into a :class:`Dataset`.

    Args:
        path: the file (plain or ``.gz``).
        id_base: the smallest item id the file uses (0 for the usual 0-based files, or 1).
        name: the dataset's label (default: the file name without suffixes).

    A line whose count differs from the number of ids after it, a blank line between users, an id
    below ``id_base`` or an item id space far larger than the distinct items
    (:func:`~recforge.data.readers.common.id_space_limit`) is a :class:`DataFormatError` naming the
    line and the field (``count`` or ``item_id``).
    """
    lines = read_integer_lines(path, first_field="count", other_field="item_id")
    numbering = np.arange(1, len(lines.line_numbers) + 1)
    shifted = np.flatnonzero(lines.line_numbers != numbering)
    if len(shifted):
        blank = int(numbering[shifted[0]])
        raise DataFormatError(
            lines.path,
            "blank line: in the counted format each line is one user (its position is the user id), "
            "so a blank line would shift every later user; write '0' for a user with no items",
            line=blank,
        )
    counts = lines.values[lines.line_starts]
    following = lines.lengths - 1
    wrong = np.flatnonzero(counts != following)
    if len(wrong):
        index = int(wrong[0])
        raise DataFormatError(
            lines.path, f"the line says {int(counts[index])} items but {int(following[index])} follow",
            line=int(lines.line_numbers[index]), field="count",
        )
    is_item = ~lines.is_first
    check_minimum(lines, id_base, first_field="count", other_field="item_id", why=f"id_base is {id_base}",
                  only=is_item)
    num_items = check_id_space([(lines, is_item)], id_base=id_base, field="item_id", kind="item")
    if num_items == 0:
        raise DataFormatError(lines.path, "no line holds an item: expected 'count item_id item_id ...'")
    num_users = len(lines.lengths)
    users = np.repeat(np.arange(num_users, dtype=np.int64), following)
    items = lines.values[is_item] - id_base

    notes = [f"{lines.path.name}: counted format, one user per line; user u is line u + 1 "
             f"(raw user ids {id_base}..{num_users - 1 + id_base})"]
    if lines.blank_lines:
        notes.append(f"{lines.path.name}: {lines.blank_lines} blank lines after the last user ignored")
    without_items = int(np.count_nonzero(following == 0))
    if without_items:
        notes.append(f"{lines.path.name}: {without_items} users have no items (lines holding 0)")
    duplicates = duplicate_note(users, items)
    if duplicates:
        notes.append(duplicates)
    return Dataset(
        name=name or _stem(lines.path),
        interactions=Interactions(users=users, items=items),
        user_ids=(np.arange(num_users) + id_base).astype(str),
        item_ids=(np.arange(num_items) + id_base).astype(str),
        notes=notes,
    )


def _stem(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    return name.rsplit(".", 1)[0] if "." in name else name
