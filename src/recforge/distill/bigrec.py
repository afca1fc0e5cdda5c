"""BIGRec / DLLM2Rec teacher files as a position :class:`~recforge.distill.teacher.TeacherSignal`.

DLLM2Rec distils BIGRec (a 7B LLM recommender grounded on the item catalogue) into a sequential
student through three files, one row per *training example*: ``myrank_train.txt`` (K item ids per
row, best first), ``confidence_train.txt`` (BIGRec's distance between its generated text and each
grounded item, lower = surer) and ``all_embeddings.pt`` (one LLM embedding per item). A training
example there is a prefix of a user's training sequence and the item that follows it, which is
exactly a recforge *position* query (:func:`recforge.data.sequences.prefix_windows`).

The files carry no user or step column: a row is known only by its place in the file. So the
alignment is made explicit in both directions:

* :func:`write_positions` writes the rows recforge expects, in ``prefix_windows`` order, with the
  raw ids of the user, the target and the history, for the external teacher to answer line by
  line;
* :func:`import_bigrec` reads the answers back, refuses a file whose row count differs from the
  run's training prefixes (the one mistake that would silently shift every row), and maps every item
  through the run's raw ids, so nothing depends on BIGRec's dense ids matching recforge's.

Everything is checked at this boundary, naming the file, line and column, because a misaligned or
half-parsed teacher would otherwise train a student on wrong targets without any visible error.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recforge.distill.teacher import TeacherError, TeacherSignal, check_teacher, read_matrix
from recforge.errors import DataFormatError, RecforgeError
from recforge.files import atomic_write

POSITIONS_HEADER = ("row", "user", "step", "next", "history")
# float64 holds every integer up to 2**53 exactly; beyond it "integer-valued" means nothing
_LARGEST_EXACT_ID = float(2**53)
# tokens converted per numpy call: bounds the memory of the Python strings held at once
_CHUNK_TOKENS = 1 << 20
_WRITE_BLOCK = 8192


def write_positions(run_dir: str | Path, path: str | Path, *, history: int | None = None) -> int:
    """Write the rows a BIGRec-style teacher must answer, one per training prefix of the run's split.

    The file is tab-separated text: a header ``row user step next history``, then per prefix, in
    :func:`~recforge.data.sequences.prefix_windows` order (users in dense id order, steps rising),
    its 0-based row index, the raw user id, the step (items in the prefix), the raw id of the item
    that follows it (the training target) and the last ``history`` items of the prefix as
    space-separated raw item ids, oldest first. A teacher that writes one output line per row, in
    this order, produces files :func:`import_bigrec` aligns exactly.

    Args:
        run_dir: a finished run of a sequential model on the student's data.
        path: the file to write (whole: a temporary sibling and one rename).
        history: items of each prefix to list; defaults to the run's ``model.max_length``, the
            history the student itself reads.

    Returns:
        The number of rows written (the training prefixes).

    Raises:
        TeacherError: a run whose model reads no sequences, a history that is not a positive
            integer, raw ids that the tab/space-separated layout cannot hold unambiguously.
    """
    from recforge.data.sequences import prefix_windows

    recommender = _sequential_run(run_dir)
    length = _history_length(recommender, history)
    split = recommender.split
    _check_writable_ids(recommender)
    # the order is prefix_windows' own (a window of 1 keeps it cheap); the history is gathered here
    users, steps, _ = prefix_windows(split.train, split.num_users, 1)
    indptr, items = split.train.sequences(split.num_users)
    starts = indptr[users]
    ends = starts + steps
    firsts = np.maximum(ends - length, starts)
    tokens = np.asarray(recommender.item_ids, dtype=object)[items]  # raw id of every train event
    user_names = recommender.user_ids

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8", newline="\n") as out:
            out.write("\t".join(POSITIONS_HEADER) + "\n")
            for block in range(0, len(users), _WRITE_BLOCK):
                stop = min(block + _WRITE_BLOCK, len(users))
                out.writelines(
                    f"{row}\t{user_names[users[row]]}\t{steps[row]}\t{tokens[ends[row]]}\t"
                    f"{' '.join(tokens[firsts[row] : ends[row]])}\n"
                    for row in range(block, stop)
                )

    atomic_write(Path(path), write)
    return len(users)


def import_bigrec(
    run_dir: str | Path,
    *,
    ranking: str | Path,
    confidence: str | Path | None = None,
    embeddings: str | Path | None = None,
    embedding_ids: str | Path | None = None,
    producer: str = "bigrec",
) -> TeacherSignal:
    """A position TeacherSignal from DLLM2Rec's teacher files, on the split and catalogue of ``run_dir``.

    Args:
        run_dir: a finished run of a sequential model on the student's data; its training prefixes
            are the queries, row r of every file being row r of :func:`write_positions`.
        ranking: ``myrank_train.txt``: whitespace-separated, one row per training prefix, K raw item
            ids per row, best first. Written with ``np.savetxt``, so ``12`` and
            ``1.200000000000000000e+01`` are both read as item ``'12'``; a non-integer is refused.
            Scores are ``-rank`` (1..K), as :func:`~recforge.distill.teacher.import_teacher` gives.
        confidence: ``confidence_train.txt``: K floats per row, the ranking's exact shape, BIGRec's
            distance of each listed item (lower = surer).
        embeddings: ``all_embeddings.pt`` (or ``.npy``): a plain 2-D float tensor, one row per item,
            read with ``weights_only=True``. Row r is the item whose raw id is ``str(r)`` (DLLM2Rec
            indexes the table by the dataset's item ids) unless ``embedding_ids`` says otherwise.
            Every item of the run must have a row; rows for items the run does not know are dropped
            (counted in ``producer``). The result is in the run's item order.
        embedding_ids: a text file of one raw item id per line, line r naming embedding row r.
        producer: a name for the teacher, kept in ``teacher.json``.

    Raises:
        DataFormatError: an unreadable file, a ragged row, a value that is not a number, an id that is
            not an integer or not in the run's catalogue, an item listed twice in one row, NaN or
            infinite values (each naming the file, line and column).
        TeacherError: a row count other than the run's training prefixes, a confidence of another
            shape than the ranking, an embedding file that is not one plain 2-D float tensor or lacks
            rows for some items, an embedding ids file of another length, a run whose model reads no
            sequences.
    """
    from recforge.data.sequences import prefix_windows

    recommender = _sequential_run(run_dir)
    split = recommender.split
    users, steps, _ = prefix_windows(split.train, split.num_users, 1)
    ranking = Path(ranking)
    values, lines = _read_table(ranking, "ranking")
    if len(values) != len(users):
        raise TeacherError(
            f"{ranking}: {len(values)} rows, but {run_dir} has {len(users)} training prefixes; the "
            f"teacher must answer one line per row of `recforge teacher positions {run_dir} -o FILE`, "
            "in that order"
        )
    top_items = _item_ids(ranking, values, lines, recommender)
    num_queries, k = top_items.shape
    distances = None
    if confidence is not None:
        distances = _read_confidence(Path(confidence), (num_queries, k), ranking)
    if embedding_ids is not None and embeddings is None:
        raise TeacherError(f"{embedding_ids}: embedding ids name the rows of an embeddings file; none given")
    item_table: Tensor | None = None
    embedding_notes: dict[str, Any] = {}
    if embeddings is not None:
        item_table, embedding_notes = _read_embeddings(
            Path(embeddings), None if embedding_ids is None else Path(embedding_ids), recommender
        )
    signal = TeacherSignal(
        queries="positions",
        top_items=torch.from_numpy(top_items),
        top_scores=-torch.arange(1, k + 1, dtype=torch.float32).expand(num_queries, k).clone(),
        user_ids=recommender.user_ids,
        item_ids=recommender.item_ids,
        split_hash=split.content_hash,
        producer={
            "model": producer,
            "format": "dllm2rec",
            "run_dir": str(Path(run_dir).resolve()),
            "ranking": str(ranking.resolve()),
            "confidence": None if confidence is None else str(Path(confidence).resolve()),
            **embedding_notes,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        query_users=torch.as_tensor(users, dtype=torch.long),
        query_steps=torch.as_tensor(steps, dtype=torch.long),
        item_embeddings=item_table,
        confidence=None if distances is None else torch.from_numpy(distances),
    )
    check_teacher(signal, where=str(ranking))  # everything above should make this a formality
    return signal


# -- the run ---------------------------------------------------------------------------------------


def _sequential_run(run_dir: str | Path) -> Any:
    """The run's Recommender, refused when its model reads no sequences: position rows are the
    training examples of a sequential student, and their default history is its ``max_length``."""
    from recforge.retrieval.recommender import load_recommender

    recommender = load_recommender(run_dir, device="cpu")
    if not recommender.reads_histories:
        raise TeacherError(
            f"{run_dir}: model '{recommender.model_name}' reads no sequences; BIGRec/DLLM2Rec teachers "
            "answer training prefixes: use a run of a sequential model (e.g. sasrec) on the same data"
        )
    return recommender


def _history_length(recommender: Any, history: int | None) -> int:
    if history is None:
        history = getattr(recommender.config.model, "max_length", None)
        if not isinstance(history, int) or isinstance(history, bool):
            raise TeacherError(
                f"model '{recommender.model_name}' has no max_length; give the history length explicitly"
            )
    if isinstance(history, bool) or not isinstance(history, int) or history < 1:
        raise TeacherError(f"history must be a positive integer, got {history!r}")
    return history


def _check_writable_ids(recommender: Any) -> None:
    """Raw ids the positions file can hold unambiguously: no tab or line break in a user id (one
    column), no whitespace at all in an item id (the history is space-separated)."""
    for raw in recommender.user_ids:
        if not raw or any(character in raw for character in "\t\r\n"):
            raise TeacherError(f"user id {raw!r} is empty or holds a tab or line break: not writable as TSV")
    for raw in recommender.item_ids:
        if not raw or len(raw.split()) != 1 or raw.split()[0] != raw:
            raise TeacherError(
                f"item id {raw!r} is empty or holds whitespace: not writable in a space-separated history"
            )


# -- text tables -----------------------------------------------------------------------------------


def _read_table(path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, K) float64 values of a whitespace-separated table, and the 1-based file line of each row.

    Lines are split one by one only to find a ragged row (np.loadtxt would name neither the line nor
    the lengths); the numbers are converted in large chunks. Comment lines (``#``, as np.savetxt
    writes a header) are skipped; trailing blank lines are ignored; a blank line among the rows is
    an empty row, so ragged: a skipped row would shift every later one.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataFormatError(path, f"cannot read the {what} ({error})") from error
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    width, first_line = -1, 0
    numbers: list[int] = []
    chunks: list[np.ndarray] = []
    pending: list[str] = []
    pending_lines: list[int] = []
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("#"):
            continue
        fields = line.split()
        if width < 0:
            width, first_line = len(fields), number
            if width == 0:
                raise DataFormatError(path, f"an empty row: the {what} lists K values per row", line=number)
        elif len(fields) != width:
            raise DataFormatError(
                path,
                f"{len(fields)} values, but line {first_line} has {width}: every row of the {what} "
                "must hold the same K",
                line=number,
            )
        numbers.append(number)
        pending.extend(fields)
        pending_lines.append(number)
        if len(pending) >= _CHUNK_TOKENS:
            chunks.append(_to_floats(path, pending, pending_lines, width))
            pending, pending_lines = [], []
    if width < 0:
        raise DataFormatError(path, f"the {what} holds no rows")
    if pending:
        chunks.append(_to_floats(path, pending, pending_lines, width))
    return np.concatenate(chunks).reshape(-1, width), np.asarray(numbers, dtype=np.int64)


def _to_floats(path: Path, tokens: list[str], lines: list[int], width: int) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        pass
    for index, token in enumerate(tokens):  # only on failure: find the one to blame
        try:
            float(token)
        except ValueError:
            raise DataFormatError(
                path, f"column {index % width + 1}: '{token}' is not a number", line=lines[index // width]
            ) from None
    raise DataFormatError(path, "holds values that are not numbers")  # unreachable: float() agrees


def _first_bad(bad: np.ndarray, lines: np.ndarray) -> tuple[int, int, int]:
    """(row, 0-based column, file line) of the first True of a (rows, K) mask."""
    row, column = np.unravel_index(int(np.argmax(bad)), bad.shape)
    return int(row), int(column), int(lines[row])


def _item_ids(path: Path, values: np.ndarray, lines: np.ndarray, recommender: Any) -> np.ndarray:
    """(rows, K) int64 dense item ids of a ranking of raw ids, each distinct id looked up once."""
    integral = np.isfinite(values) & (np.abs(values) <= _LARGEST_EXACT_ID)
    integral[integral] = values[integral] == np.round(values[integral])
    if not integral.all():
        row, column, line = _first_bad(~integral, lines)
        raise DataFormatError(
            path, f"column {column + 1}: {float(values[row, column])!r} is not an integer item id", line=line
        )
    raw = values.astype(np.int64)
    distinct, inverse = np.unique(raw, return_inverse=True)
    dense = np.empty(len(distinct), dtype=np.int64)
    for position, value in enumerate(distinct.tolist()):
        try:
            dense[position] = recommender.item_index(str(value))
        except RecforgeError as error:
            row, column, line = _first_bad(raw == value, lines)
            raise DataFormatError(path, f"column {column + 1}: {error}", line=line) from None
    items = dense[inverse.reshape(raw.shape)]
    ordered = np.sort(items, axis=1)
    repeated = ordered[:, 1:] == ordered[:, :-1]
    if repeated.any():
        row = int(np.argmax(repeated.any(axis=1)))
        item = int(ordered[row, 1:][repeated[row]][0])
        raise DataFormatError(
            path, f"item '{recommender.item_ids[item]}' is listed twice in one row", line=int(lines[row])
        )
    return items


def _read_confidence(path: Path, shape: tuple[int, int], ranking: Path) -> np.ndarray:
    values, lines = _read_table(path, "confidence")
    if values.shape != shape:
        raise TeacherError(
            f"{path}: {values.shape[0]} rows of {values.shape[1]} distances, but the ranking {ranking} has "
            f"{shape[0]} rows of {shape[1]} items: the confidence gives one distance per listed item"
        )
    with np.errstate(over="ignore"):  # checked after the cast: 1e300 is inf in float32
        distances = values.astype(np.float32)
    finite = np.isfinite(distances)
    if not finite.all():
        row, column, line = _first_bad(~finite, lines)
        raise DataFormatError(
            path,
            f"column {column + 1}: {float(values[row, column])!r} is not a finite float32 distance",
            line=line,
        )
    return distances


# -- embeddings ------------------------------------------------------------------------------------


def _read_embeddings(path: Path, ids_path: Path | None, recommender: Any) -> tuple[Tensor, dict[str, Any]]:
    """The (I, d) item table in the run's item order, and what was read (for ``producer``)."""
    matrix = read_matrix(path)
    num_rows = int(matrix.shape[0])
    item_ids: list[str] = recommender.item_ids
    if ids_path is None:
        rows = np.array([_numeric_row(raw, num_rows) for raw in item_ids], dtype=np.int64)
        how = f"row r is read as the item with raw id r (0..{num_rows - 1})"
    else:
        names = _read_ids(ids_path)
        if len(names) != num_rows:
            raise TeacherError(
                f"{ids_path}: {len(names)} ids for the {num_rows} rows of {path}: one id per embedding row"
            )
        position = {raw: row for row, raw in enumerate(names)}
        rows = np.array([position.get(raw, -1) for raw in item_ids], dtype=np.int64)
        how = f"rows are named by {ids_path}"
    missing = np.flatnonzero(rows < 0)
    if len(missing):
        raise TeacherError(
            f"{path}: no embedding row for {len(missing)} of the run's {len(item_ids)} items "
            f"(e.g. '{item_ids[int(missing[0])]}'; {how}); a teacher embeds every item of the catalogue"
        )
    table = matrix[torch.from_numpy(rows)]
    finite = torch.isfinite(table).all(dim=1)
    if not bool(finite.all()):
        item = int(torch.nonzero(~finite)[0])
        raise DataFormatError(
            path, f"row {int(rows[item])} (item '{item_ids[item]}') holds NaN or infinite values"
        )
    notes = {
        "embeddings": str(path.resolve()),
        "embedding_ids": None if ids_path is None else str(ids_path.resolve()),
        "embedding_rows": num_rows,
        "embedding_rows_dropped": num_rows - len(item_ids),  # rows are distinct: the rest are unknown
    }
    return table.contiguous(), notes


def _numeric_row(raw: str, num_rows: int) -> int:
    """The row of raw id ``raw`` when row r is the item ``str(r)``: only a canonical decimal matches
    (``'007'`` is not row 7, as ``str(7)`` is ``'7'``); -1 when there is none."""
    if not (raw.isascii() and raw.isdecimal()) or str(int(raw)) != raw:
        return -1
    row = int(raw)
    return row if row < num_rows else -1


def _read_ids(path: Path) -> list[str]:
    """One raw item id per line (surrounding whitespace dropped); blank or repeated ids are refused,
    since either would leave an embedding row without a unique item."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataFormatError(path, f"cannot read the embedding ids ({error})") from error
    while lines and not lines[-1].strip():
        lines.pop()
    names = [line.strip() for line in lines]
    seen: dict[str, int] = {}
    for number, raw in enumerate(names, start=1):
        if not raw:
            raise DataFormatError(
                path, "a blank line: expected one raw item id per embedding row", line=number
            )
        if raw in seen:
            raise DataFormatError(path, f"item id '{raw}' repeats line {seen[raw]}", line=number)
        seen[raw] = number
    if not names:
        raise DataFormatError(path, "holds no ids")
    return names


__all__ = ["POSITIONS_HEADER", "import_bigrec", "write_positions"]
