"""Pieces every reader shares: the fast ``id id id ...`` line parser and the duplicate count.

The LightGCN and S3-Rec formats are both "one line per user, whitespace-separated integers". Parsing
them token by token in Python costs seconds on Gowalla, so :func:`read_integer_lines` splits the
whole buffer at once and converts it with numpy (about 0.25 s for Gowalla's train file), and only
walks the file token by token to *explain* a failure, after the fast path has found that there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from recforge.data.io import read_bytes, resolve_data_file
from recforge.errors import DataFormatError

# A non-negative id of at most 18 digits always fits in int64; longer tokens are rejected up front.
_MAX_DIGITS = 18


@dataclass(frozen=True)
class IntegerLines:
    """The non-blank lines of a file of whitespace-separated non-negative integers.

    Attributes:
        path: the file read (for error messages).
        values: every token, in file order (int64).
        lengths: how many tokens each non-blank line holds.
        line_numbers: the 1-based line number of each non-blank line.
    """

    path: Path
    values: np.ndarray
    lengths: np.ndarray
    line_numbers: np.ndarray

    @property
    def line_starts(self) -> np.ndarray:
        """Index into ``values`` of each line's first token."""
        return np.cumsum(self.lengths) - self.lengths

    def line_of_token(self, index: int) -> int:
        """The 1-based file line holding ``values[index]``."""
        line = int(np.searchsorted(np.cumsum(self.lengths), index, side="right"))
        return int(self.line_numbers[line])

    def field_of_token(self, index: int, first_field: str, other_field: str) -> str:
        """``first_field`` for a line's first token, ``other_field`` for the rest."""
        return first_field if index in set(self.line_starts.tolist()) else other_field


def read_integer_lines(path: str | Path, *, first_field: str, other_field: str) -> IntegerLines:
    """Parse a file whose lines are whitespace-separated non-negative integers.

    Blank lines hold nothing and are skipped. A token that is not a non-negative integer is a
    :class:`DataFormatError` naming the line and the field (``first_field`` for the first token of
    a line, ``other_field`` for the others); an empty file is one too.
    """
    resolved = resolve_data_file(path)
    data = read_bytes(resolved)
    lines = data.split(b"\n")
    # One split per line to count tokens (per line, not per token), one C-level split for the tokens.
    all_lengths = np.fromiter((len(line.split()) for line in lines), dtype=np.int64, count=len(lines))
    tokens = np.array(data.split())
    if len(tokens) == 0:
        raise DataFormatError(resolved, f"empty file: expected lines of '{first_field} {other_field} ...'")
    values = _tokens_to_int64(tokens)
    if values is None:
        _raise_first_bad_token(resolved, lines, first_field, other_field)
    non_blank = np.flatnonzero(all_lengths)
    return IntegerLines(
        path=resolved, values=values, lengths=all_lengths[non_blank], line_numbers=non_blank + 1
    )


def _tokens_to_int64(tokens: np.ndarray) -> np.ndarray | None:
    """int64 values of byte-string tokens, or None if any token is not a plain non-negative integer."""
    # isdigit first: astype alone would accept "-3", "+3" and "1_0".
    if tokens.dtype.itemsize > _MAX_DIGITS or not np.char.isdigit(tokens).all():
        return None
    return tokens.astype(np.int64)


def _raise_first_bad_token(path: Path, lines: list[bytes], first_field: str, other_field: str) -> NoReturn:
    """Slow, line-by-line pass that runs only after the fast path failed: say where and why."""
    for number, line in enumerate(lines, start=1):
        for position, token in enumerate(line.split()):
            if not token.isdigit() or len(token) > _MAX_DIGITS:
                field = first_field if position == 0 else other_field
                shown = token.decode("utf-8", errors="replace")
                problem = (
                    f"negative id {shown}" if token[:1] == b"-" and token[1:].isdigit()
                    else f"expected a non-negative integer, got '{shown}'"
                )
                raise DataFormatError(path, problem, line=number, field=field)
    raise DataFormatError(path, "could not parse the file as integers")  # unreachable in practice


def check_minimum(lines: IntegerLines, minimum: int, *, first_field: str, other_field: str, why: str) -> None:
    """Raise a :class:`DataFormatError` at the first token below ``minimum`` (e.g. a 0 in a 1-based file)."""
    below = np.flatnonzero(lines.values < minimum)
    if len(below):
        index = int(below[0])
        raise DataFormatError(
            lines.path,
            f"id {int(lines.values[index])} is below {minimum} ({why})",
            line=lines.line_of_token(index),
            field=lines.field_of_token(index, first_field, other_field),
        )


def duplicate_note(users: np.ndarray, items: np.ndarray, fold: np.ndarray | None = None) -> str | None:
    """A sentence for ``Dataset.notes`` counting repeated (user, item) rows, or None if there are none.

    Readers keep duplicates (a repeated purchase can be signal); deduplication is an explicit
    filtering step, and this note is how a user learns that it is needed.
    """
    if len(users) == 0:
        return None
    keys = users.astype(np.int64) * (int(items.max()) + 1) + items
    repeated = len(keys) - _count_distinct(keys)
    if repeated == 0:
        return None
    note = f"{repeated} interaction rows repeat an earlier (user, item) pair; all are kept"
    if fold is not None:
        within = len(keys) - _count_distinct(keys * 3 + fold)  # Fold values are 0, 1, 2
        note += f" ({within} within one fold, {repeated - within} across folds)"
    return note


def padded_strings(lists: list[list[str]]) -> np.ndarray:
    """A 2-D str array, one row per list, right-padded with ``""`` to the longest list.

    The layout of every list-valued feature (genres, RecBole ``token_seq``): the first axis is the
    id, as filters that index features by kept ids require.
    """
    width = max((len(values) for values in lists), default=0)
    table = np.full((len(lists), width), "", dtype=object)
    for row, values in enumerate(lists):
        table[row, : len(values)] = values
    return table.astype(str)


def _count_distinct(keys: np.ndarray) -> int:
    # A sort beats np.unique here: numpy 2's hash-based unique is several times slower on 1M ids.
    ordered = np.sort(keys)
    return int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1
