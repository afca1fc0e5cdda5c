"""Pieces every reader shares: the fast ``id id id ...`` line parser, the checks on what it parsed
(id bounds, the id-space bound, the counted-format shape), missing-value markers, the duplicate count.

The LightGCN, S3-Rec and counted formats are all "one line per user, whitespace-separated integers".
Parsing them token by token in Python costs seconds on Gowalla, so :func:`read_integer_lines` splits
the whole buffer at once and converts it with numpy (about 0.25 s for Gowalla's train file), and only
walks the file token by token to *explain* a failure, after the fast path has found that there is one.

**The id-space bound.** In the LightGCN, S3-Rec and counted formats (and GFormer's matrices) the file's
id *is* the dense id, so one id of ``2**40`` would make a trillion users. :func:`check_id_space`
refuses an id space (largest id + 1, after ``id_base``) larger than :func:`id_space_limit`:
``min(2**31, 2**20 + 10 × the number of distinct ids)``. Up to about a million unused ids are always
allowed (a small file with gaps), beyond that at most 90% of the ids may be unused, and never more than
2**31 (int32 indices). Published benchmark files are contiguous, far inside this bound.

**The counted shape.** Some datasets write ``count item item ...`` (the first field is the number of
items that follow). Such a file also parses as ``user item item ...``, with counts taken for user ids.
:func:`looks_counted` is the test: every line's first field equals the number of fields after it, on at
least two lines; the user-first readers refuse such a file unless told ``assume_user_ids=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import polars as pl

from recforge.data.io import check_text_bytes, read_bytes, resolve_data_file
from recforge.errors import DataFormatError

# A non-negative id of at most 18 digits always fits in int64; longer tokens are rejected up front.
_MAX_DIGITS = 18
MAX_ID_SPACE = 2**31
FREE_IDS = 2**20
IDS_PER_DISTINCT = 10
COUNTED_MIN_LINES = 2

# Text that tools write for a missing value (pandas, R, SQL dumps, str(None)); compared stripped and
# lower-cased. Such a value in an id column is refused: it is an absent id, not a user called "NaN".
MISSING_MARKERS: frozenset[str] = frozenset(
    {"nan", "-nan", "+nan", "na", "n/a", "#n/a", "<na>", "null", "none", "\\n"}
)


@dataclass(frozen=True)
class IntegerLines:
    """The non-blank lines of a file of whitespace-separated non-negative integers.

    Attributes:
        path: the file read (for error messages).
        values: every token, in file order (int64).
        lengths: how many tokens each non-blank line holds.
        line_numbers: the 1-based line number of each non-blank line.
        blank_lines: how many blank (or whitespace-only) lines were skipped; the newline that ends
            the last line opens no line.
    """

    path: Path
    values: np.ndarray
    lengths: np.ndarray
    line_numbers: np.ndarray
    blank_lines: int = 0

    @property
    def line_starts(self) -> np.ndarray:
        """Index into ``values`` of each line's first token."""
        return np.cumsum(self.lengths) - self.lengths

    @property
    def is_first(self) -> np.ndarray:
        """A mask over ``values``: True for each line's first token."""
        mask = np.zeros(len(self.values), dtype=bool)
        mask[self.line_starts] = True
        return mask

    def blank_note(self) -> str | None:
        """A sentence for ``Dataset.notes`` when blank lines were skipped, else None."""
        if not self.blank_lines:
            return None
        return f"{self.path.name}: {self.blank_lines} blank lines skipped"

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
    data = check_text_bytes(resolved, read_bytes(resolved))  # numpy would drop a trailing NUL: refuse it
    lines = data.split(b"\n")
    if lines and not lines[-1]:  # the newline ending the last line opens no line
        lines.pop()
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
        path=resolved, values=values, lengths=all_lengths[non_blank], line_numbers=non_blank + 1,
        blank_lines=len(lines) - len(non_blank),
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
                if token[:1] == b"-" and token[1:].isdigit():
                    problem = f"negative id {shown}"
                elif token.isdigit():
                    problem = f"id {shown} has more than {_MAX_DIGITS} digits (ids must fit in int64)"
                else:
                    problem = f"expected a non-negative integer, got '{shown}'"
                raise DataFormatError(path, problem, line=number, field=field)
    raise DataFormatError(path, "could not parse the file as integers")  # unreachable in practice


def check_minimum(
    lines: IntegerLines, minimum: int, *, first_field: str, other_field: str, why: str,
    only: np.ndarray | None = None,
) -> None:
    """Raise a :class:`DataFormatError` at the first token below ``minimum`` (e.g. a 0 in a 1-based
    file); ``only`` (a mask over ``values``) limits the check to some tokens."""
    below_mask = lines.values < minimum
    if only is not None:
        below_mask &= only
    below = np.flatnonzero(below_mask)
    if len(below):
        index = int(below[0])
        raise DataFormatError(
            lines.path,
            f"id {int(lines.values[index])} is below {minimum} ({why})",
            line=lines.line_of_token(index),
            field=lines.field_of_token(index, first_field, other_field),
        )


def id_space_limit(num_distinct: int) -> int:
    """The largest id space (largest id + 1) a file whose ids are dense ids may have, given how
    many distinct ids it holds (see the module docstring)."""
    return min(MAX_ID_SPACE, FREE_IDS + IDS_PER_DISTINCT * num_distinct)


def id_space_problem(size: int, num_distinct: int, kind: str) -> str | None:
    """Why an id space of ``size`` is refused for ``num_distinct`` distinct ids, or None if it is not."""
    limit = id_space_limit(num_distinct)
    if size <= limit:
        return None
    return (f"the file's ids are used as dense {kind} indices, so this needs {size:,} {kind} rows for "
            f"{num_distinct:,} distinct {kind} ids, over the limit of {limit:,} (2**31, and at most "
            f"2**20 + {IDS_PER_DISTINCT} per distinct id); renumber the ids densely")


def check_id_space(
    files: list[tuple[IntegerLines, np.ndarray]], *, id_base: int, field: str, kind: str
) -> int:
    """The id space ``max id - id_base + 1`` of some tokens of one or more files, if within
    :func:`id_space_limit`; else a :class:`DataFormatError` at the first too-large id.

    ``files`` pairs each file with a mask over its ``values`` selecting the ids of this ``kind``
    (``user`` or ``item``); the distinct ids are counted over all of them.
    """
    chosen = [lines.values[mask] for lines, mask in files]
    everything = np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)
    if len(everything) == 0:
        return 0
    size = int(everything.max()) - id_base + 1
    num_distinct = _count_distinct(everything)
    problem = id_space_problem(size, num_distinct, kind)
    if problem is None:
        return size
    limit = id_space_limit(num_distinct)
    for lines, mask in files:
        too_large = np.flatnonzero(mask & (lines.values - id_base >= limit))
        if len(too_large):
            index = int(too_large[0])
            raise DataFormatError(lines.path, f"id {int(lines.values[index])} is too large: {problem}",
                                  line=lines.line_of_token(index), field=field)
    raise AssertionError("unreachable: some id exceeds the limit")  # pragma: no cover


def looks_counted(lines: IntegerLines) -> bool:
    """Whether every line (at least two) reads ``count item item ...``: its first field equals the
    number of fields after it (see the module docstring)."""
    if len(lines.lengths) < COUNTED_MIN_LINES:
        return False
    return bool(np.array_equal(lines.values[lines.line_starts], lines.lengths - 1))


def refuse_counted_shape(lines: IntegerLines, assume_user_ids: bool) -> None:
    """A :class:`DataFormatError` if ``lines`` look counted and the caller did not confirm that the
    first field is a user id."""
    if assume_user_ids or not looks_counted(lines):
        return
    raise DataFormatError(
        lines.path,
        f"every line's first field equals the number of ids after it (all {len(lines.lengths):,} lines), "
        "so the first field is probably a count, not a user id: read the file with format 'counted' "
        "(read_counted: 'count item item ...', users are the lines in order), or pass "
        "assume_user_ids=True if the first field really is a user id",
    )


def missing_markers(values: pl.Series) -> pl.Series:
    """True where a text value is one of :data:`MISSING_MARKERS` (e.g. ``NaN``, ``null``, ``N/A``)."""
    return values.str.strip_chars().str.to_lowercase().is_in(sorted(MISSING_MARKERS))


def missing_marker_problem() -> str:
    """The problem text for a missing-value marker found where an id belongs (``{value}``: the value)."""
    return "{value!r} marks a missing value, not an id (refused: NaN, NA, N/A, null, None and the like)"


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
