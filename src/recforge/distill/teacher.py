"""A teacher is data: ranked lists, optional embeddings and confidences, on disk, checked on load.

A :class:`TeacherSignal` is a directory of two files:

* ``teacher.safetensors``: ``top_items`` (Q, K) int64 dense item ids, best first; ``top_scores``
  (Q, K) float32; optionally ``item_embeddings`` (I, d_t), ``query_embeddings`` (Q, d_q) of any
  dimensions, and ``confidence``: the teacher's *distance* per query (Q,) or per listed item (Q, K),
  lower meaning surer, as DLLM2Rec's ``confidence_train.txt`` holds BIGRec's distance between its
  generated text and each grounded item.
* ``teacher.json``: what the queries are (``users``: query q is user q; ``positions``: query q is
  ``(users[q], steps[q])``, the state after the first ``steps[q]`` training items of that user), K,
  the dimensions, the raw user and item ids of the dense ids, the split it was made on (its content
  hash: a student trains on exactly that split or the teacher is refused), and the producer.

Students read only this: no student code imports a teacher model, so a 7B-parameter recommender
and a 64-d MF meet through files. :func:`export_teacher` writes one from any recforge run;
:func:`import_teacher` builds one from plain files (ranking lists, ``.npy``, ``.pt`` tensors loaded
with ``weights_only=True``); :func:`load_teacher` validates everything a term could trip on.
"""

from __future__ import annotations

import json
import pickle  # only for the error type torch.load(weights_only=True) raises
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from recforge.data.split import Split
from recforge.errors import DataFormatError, RecforgeError
from recforge.evaluation.ranking import SparseRows, mask_seen_, top_k
from recforge.files import atomic_write

TENSORS_FILE = "teacher.safetensors"
META_FILE = "teacher.json"
FORMAT_VERSION = 1
QueryKind = Literal["users", "positions"]


class TeacherError(RecforgeError):
    """A TeacherSignal that is malformed, or made for other data than the student's."""


@dataclass(frozen=True)
class TeacherSignal:
    """A teacher's outputs over one split (see the module docstring for the fields)."""

    queries: QueryKind
    top_items: Tensor
    top_scores: Tensor
    user_ids: list[str]
    item_ids: list[str]
    split_hash: str
    producer: dict[str, Any]
    query_users: Tensor | None = None
    query_steps: Tensor | None = None
    item_embeddings: Tensor | None = None
    query_embeddings: Tensor | None = None
    confidence: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_queries(self) -> int:
        return int(self.top_items.shape[0])

    @property
    def k(self) -> int:
        return int(self.top_items.shape[1])

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        fields = [
            f"queries={self.queries}",
            f"num_queries={self.num_queries}",
            f"k={self.k}",
            f"items={self.num_items}",
        ]
        fields += [
            f"{name}={int(tensor.shape[1])}"
            for name, tensor in (("item_dim", self.item_embeddings), ("query_dim", self.query_embeddings))
            if tensor is not None
        ]
        fields += [f"split={self.split_hash}", f"producer={self.producer.get('model', '?')}"]
        return f"TeacherSignal({', '.join(fields)})"

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "queries": self.queries,
            "num_queries": self.num_queries,
            "k": self.k,
            "num_users": len(self.user_ids),
            "num_items": self.num_items,
            "item_dim": None if self.item_embeddings is None else int(self.item_embeddings.shape[1]),
            "query_dim": None if self.query_embeddings is None else int(self.query_embeddings.shape[1]),
            "has_confidence": self.confidence is not None,
            "split_hash": self.split_hash,
            "producer": self.producer,
            "user_ids": self.user_ids,
            "item_ids": self.item_ids,
            **self.extra,
        }

    def save(self, directory: str | Path) -> Path:
        """Write the two files (each whole: temporary sibling + rename). Returns the directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {"top_items": self.top_items.long(), "top_scores": self.top_scores.float()}
        optional = {
            "query_users": self.query_users,
            "query_steps": self.query_steps,
            "item_embeddings": self.item_embeddings,
            "query_embeddings": self.query_embeddings,
            "confidence": self.confidence,
        }
        tensors.update({name: value for name, value in optional.items() if value is not None})
        contiguous = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
        atomic_write(directory / TENSORS_FILE, lambda tmp: save_file(contiguous, str(tmp)))
        atomic_write(directory / META_FILE, lambda tmp: tmp.write_text(json.dumps(self.meta())))
        return directory


def load_teacher(
    directory: str | Path,
    *,
    split: Split | None = None,
    item_ids: Sequence[str] | None = None,
    min_k: int = 1,
    needs: Sequence[str] = (),
) -> TeacherSignal:
    """Read and check a TeacherSignal.

    Args:
        directory: holds ``teacher.safetensors`` and ``teacher.json``.
        split: the student's split; the teacher must have been made on it (same content hash).
        item_ids: the student's raw item ids; the teacher's must be the same catalogue, in order.
        min_k: the longest list a term will read.
        needs: optional fields a term reads (``item_embeddings``, ``query_embeddings``,
            ``confidence``).

    Raises:
        TeacherError: missing or malformed files, another split or catalogue, ids outside the
            catalogue, K too small, a needed field absent, NaN or infinite values.
    """
    directory = Path(directory)
    meta_path, tensors_path = directory / META_FILE, directory / TENSORS_FILE
    for path in (meta_path, tensors_path):
        if not path.is_file():
            raise TeacherError(f"{directory}: not a TeacherSignal ({path.name} is missing)")
    try:
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(tensors_path))
    except (OSError, ValueError, SafetensorError) as error:
        raise TeacherError(f"{directory}: unreadable TeacherSignal ({error})") from error
    try:
        signal = TeacherSignal(
            queries=meta["queries"],
            top_items=tensors["top_items"],
            top_scores=tensors["top_scores"],
            user_ids=[str(raw) for raw in meta["user_ids"]],
            item_ids=[str(raw) for raw in meta["item_ids"]],
            split_hash=str(meta["split_hash"]),
            producer=dict(meta.get("producer", {})),
            query_users=tensors.get("query_users"),
            query_steps=tensors.get("query_steps"),
            item_embeddings=tensors.get("item_embeddings"),
            query_embeddings=tensors.get("query_embeddings"),
            confidence=tensors.get("confidence"),
        )
    except (KeyError, TypeError) as error:
        raise TeacherError(f"{meta_path}: lacks the field {error}") from error
    check_teacher(signal, where=str(directory))
    if split is not None and signal.split_hash != split.content_hash:
        raise TeacherError(
            f"{directory}: the teacher was made on split {signal.split_hash}, the student trains on "
            f"{split.content_hash}; export the teacher from a run on the student's split (same data and "
            "data.split settings)"
        )
    if item_ids is not None and list(item_ids) != signal.item_ids:
        raise TeacherError(f"{directory}: the teacher's item catalogue differs from the student's")
    if signal.k < min_k:
        raise TeacherError(
            f"{directory}: the teacher ranks K = {signal.k} items per query, a term needs {min_k}"
        )
    for name in needs:
        if getattr(signal, name, None) is None:
            raise TeacherError(
                f"{directory}: a term needs the teacher's {name}, which this TeacherSignal lacks"
            )
    return signal


def check_teacher(signal: TeacherSignal, *, where: str) -> None:
    """Shapes, id ranges and finiteness of every tensor of ``signal``."""
    if signal.queries not in ("users", "positions"):
        raise TeacherError(f"{where}: queries must be 'users' or 'positions', got {signal.queries!r}")
    items, scores = signal.top_items, signal.top_scores
    if items.dim() != 2 or items.shape != scores.shape:
        raise TeacherError(
            f"{where}: top_items {tuple(items.shape)} and top_scores {tuple(scores.shape)} "
            "must share one (Q, K) shape"
        )
    if items.dtype.is_floating_point:
        raise TeacherError(f"{where}: top_items must hold integer item ids, got {items.dtype}")
    if len(items) and (int(items.min()) < 0 or int(items.max()) >= signal.num_items):
        bad = int(items.max()) if int(items.max()) >= signal.num_items else int(items.min())
        raise TeacherError(
            f"{where}: top_items holds item id {bad}, outside the catalogue 0..{signal.num_items - 1}"
        )
    expected_queries = len(signal.user_ids) if signal.queries == "users" else None
    if expected_queries is not None and signal.num_queries != expected_queries:
        raise TeacherError(f"{where}: {signal.num_queries} query rows for {expected_queries} users")
    if signal.queries == "positions":
        if signal.query_users is None or signal.query_steps is None:
            raise TeacherError(f"{where}: position queries need query_users and query_steps")
        for name, ids in (("query_users", signal.query_users), ("query_steps", signal.query_steps)):
            if ids.shape != (signal.num_queries,):
                raise TeacherError(f"{where}: {name} must have one entry per query ({signal.num_queries})")
    per_query = {"query_embeddings": signal.query_embeddings, "confidence": signal.confidence}
    for name, tensor in {
        "top_scores": scores,
        "item_embeddings": signal.item_embeddings,
        **per_query,
    }.items():
        if tensor is None:
            continue
        if not tensor.dtype.is_floating_point:
            raise TeacherError(f"{where}: {name} must be floating point, got {tensor.dtype}")
        if not bool(torch.isfinite(tensor).all()):
            rows = torch.nonzero(~torch.isfinite(tensor.reshape(len(tensor), -1)).all(1)).flatten()
            raise TeacherError(f"{where}: {name} holds NaN or infinite values (first at row {int(rows[0])})")
    if signal.item_embeddings is not None and signal.item_embeddings.shape[0] != signal.num_items:
        raise TeacherError(
            f"{where}: item_embeddings has {signal.item_embeddings.shape[0]} rows "
            f"for {signal.num_items} items"
        )
    for name, rows_of in per_query.items():
        if rows_of is not None and rows_of.shape[0] != signal.num_queries:
            raise TeacherError(
                f"{where}: {name} has {rows_of.shape[0]} rows for {signal.num_queries} queries"
            )
    confidence = signal.confidence
    if confidence is not None and confidence.shape not in ((signal.num_queries,), tuple(items.shape)):
        raise TeacherError(
            f"{where}: confidence has shape {tuple(confidence.shape)}; expected one distance per query "
            f"({signal.num_queries},) or per listed item {tuple(items.shape)}"
        )


def teacher_tables(context: Any, term: str) -> tuple[Tensor, Tensor]:
    """The teacher's (U, d_t) user and (I, d_t) item embeddings for a term that reads them, checked
    to be there and to be one row per user of the student's split."""
    teacher = context.teacher
    if teacher is None or teacher.query_embeddings is None or teacher.item_embeddings is None:
        raise TeacherError(f"{term}: needs a teacher with query and item embeddings (objective.teacher)")
    if teacher.queries != "users" or len(teacher.query_embeddings) != context.num_users:
        raise TeacherError(f"{term}: the teacher's query embeddings must be one row per user")
    return teacher.query_embeddings.float(), teacher.item_embeddings.float()


def top_unseen(
    score: Callable[[Tensor], Tensor],
    num_queries: int,
    k: int,
    exclude: Any = None,
    *,
    batch_size: int = 1024,
) -> tuple[Tensor, Tensor]:
    """(Q, k) best items and their scores, skipping each row's ``exclude`` (CSR) items, for
    ``score(rows (B,) int64) -> (B, I)`` fresh scores of queries ``0 .. num_queries - 1``."""
    top_items, top_scores = [], []
    seen = None
    with torch.no_grad():
        for start in range(0, num_queries, batch_size):
            stop = min(start + batch_size, num_queries)
            scores = score(torch.arange(start, stop))
            k = min(k, scores.shape[1])
            if exclude is not None and seen is None:
                seen = SparseRows.from_csr(exclude, scores.device)
            if seen is not None:
                mask_seen_(scores, *seen.block(start, stop))
            values, ranked = top_k(scores, k)
            top_items.append(ranked.cpu())
            top_scores.append(values.cpu())
    if not top_items:
        return torch.zeros(0, k, dtype=torch.long), torch.zeros(0, k)
    return torch.cat(top_items), torch.cat(top_scores)


def export_teacher(
    run_dir: str | Path,
    *,
    k: int = 500,
    queries: QueryKind | None = None,
    query_embeddings: bool | None = None,
    device: str = "auto",
) -> TeacherSignal:
    """The TeacherSignal of a finished recforge run, computed from its run directory alone.

    ``queries="users"`` (the default for models ranking by user): each user's top ``k`` items
    outside their training items, scored from the training history only (the query a model makes
    before the validation item), so a student never sees valid or test through its teacher; the
    user and item tables as embeddings (for a filter run, GF-CF, BSPM or EASE: the lists from the
    filter's own scores, the embeddings its low-rank ideal part, none for EASE).
    ``queries="positions"`` (sequential models): the state after every prefix of each training
    sequence, its top ``k`` items (nothing excluded: the next item is what the list should hold),
    the cosine distance 1 - cos(state, item) of each listed item as its ``confidence`` (the
    distance between a prediction and its grounded items, BIGRec's reliability signal), and, only
    when ``query_embeddings`` is true, the states themselves (P x d: ML-1M has ~1M prefixes, 1.5 GB
    at d = 384). ``query_embeddings`` defaults to true for users, false for positions.
    """
    from recforge.data.sequences import prefix_windows
    from recforge.models.scoring import FilterScorer
    from recforge.retrieval.recommender import load_recommender

    recommender = load_recommender(run_dir, device=device)
    scorer, split = recommender.scorer, recommender.split
    chosen: QueryKind = queries or ("positions" if scorer.reads_histories else "users")
    producer = {
        "model": recommender.model_name,
        "run_dir": str(Path(run_dir).resolve()),
        "epoch": recommender.info.epoch,
        "dataset": recommender.info.dataset,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    query_users = query_steps = confidence = None
    query_table: Tensor | None = None
    items: Tensor | None = None
    if chosen == "users":  # scored from the training history only (the query before valid)
        if isinstance(scorer, FilterScorer):  # a filter's own scores; its low-rank part, if any
            score = scorer.score_function(split, "valid")
            if scorer.has_embeddings:
                query_table, items = scorer.embeddings(split, "valid")
        else:
            query_table, items = scorer.embeddings(split, "valid")
            score = _dot_products(query_table, items)
        top_items, top_scores = top_unseen(score, split.num_users, k, split.csr("train"))
    else:
        if not scorer.reads_histories:
            raise TeacherError(
                f"{run_dir}: model '{recommender.model_name}' has no sequence states; "
                "export it with queries users"
            )
        items = recommender.item_embeddings()
        users, steps, windows = prefix_windows(split.train, split.num_users, _max_length(recommender))
        keep = bool(query_embeddings)
        parts = [
            _prefix_block(scorer, windows[start : start + 4096], items, k, keep)
            for start in range(0, len(windows), 4096)
        ]
        k = min(k, len(items))
        top_items = torch.cat([p[0] for p in parts]) if parts else torch.zeros(0, k, dtype=torch.long)
        top_scores = torch.cat([p[1] for p in parts]) if parts else torch.zeros(0, k)
        confidence = torch.cat([p[2] for p in parts]) if parts else torch.zeros(0, k)
        if keep:
            states = [p[3] for p in parts if p[3] is not None]
            query_table = torch.cat(states) if states else items.new_zeros(0, items.shape[1])
        query_users, query_steps = torch.as_tensor(users), torch.as_tensor(steps)
    keep_queries = query_embeddings if query_embeddings is not None else chosen == "users"
    return TeacherSignal(
        queries=chosen,
        top_items=top_items,
        top_scores=top_scores,
        user_ids=recommender.user_ids,
        item_ids=recommender.item_ids,
        split_hash=split.content_hash,
        producer=producer,
        query_users=query_users,
        query_steps=query_steps,
        item_embeddings=None if items is None else items.cpu(),
        query_embeddings=None if query_table is None or not keep_queries else query_table.cpu(),
        confidence=confidence,
    )


def _prefix_block(
    scorer: Any, windows: np.ndarray, items: Tensor, k: int, keep_states: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Top-k items, scores and cosine distances (and the states, if kept) of one block of prefix
    windows: a block at a time, so ~1M prefixes never hold their (P, d) states at once."""
    with torch.no_grad():
        states = scorer.history_queries(torch.as_tensor(windows, device=items.device))
        values, ranked = top_k(states @ items.T, min(k, len(items)))
        distances = cosine_distances(states, items, ranked)
    return ranked.cpu(), values.cpu(), distances.cpu(), states.cpu() if keep_states else None


def cosine_distances(queries: Tensor, items: Tensor, listed: Tensor, *, batch_size: int = 1024) -> Tensor:
    """(Q, K) ``1 - cos(queries[q], items[listed[q, k]])``, in blocks of queries (a zero vector
    has cosine 0 with everything, distance 1)."""
    unit_items = F.normalize(items, dim=1)
    blocks = [
        1
        - torch.einsum(
            "qd,qkd->qk",
            F.normalize(queries[start : start + batch_size], dim=1),
            unit_items[listed[start : start + batch_size]],
        )
        for start in range(0, len(queries), batch_size)
    ]
    return torch.cat(blocks) if blocks else queries.new_zeros(listed.shape)


def _dot_products(queries: Tensor, items: Tensor) -> Callable[[Tensor], Tensor]:
    return lambda rows: queries[rows.to(queries.device)] @ items.T


def import_teacher(
    run_dir: str | Path,
    *,
    ranking: str | Path,
    item_embeddings: str | Path | None = None,
    query_embeddings: str | Path | None = None,
    producer: str = "external",
) -> TeacherSignal:
    """A TeacherSignal from external files, on the split and catalogue of the run in ``run_dir``.

    ``ranking``: one line per user, ``user item item ...`` in raw ids, best first (at least one
    item; every line as long as the shortest is kept to that length K; scores are ``-rank``).
    Users absent from the file get an empty list, which is an error: a teacher covers every user.
    Embeddings: ``.npy`` (``allow_pickle=False``) or ``.pt`` holding one plain tensor (loaded with
    ``weights_only=True``); item rows in the run's item order, query rows in its user order.
    """
    from recforge.retrieval.recommender import load_recommender

    recommender = load_recommender(run_dir, device="cpu")
    ranking = Path(ranking)
    users, rows = _read_ranking(ranking, recommender)
    missing = [recommender.user_ids[u] for u in range(len(recommender.user_ids)) if u not in users]
    if missing:
        raise TeacherError(
            f"{ranking}: no ranking for {len(missing)} users (e.g. '{missing[0]}'); "
            "a teacher covers every user"
        )
    k = min(len(row) for row in rows.values())
    top_items = torch.tensor([rows[u][:k] for u in range(len(recommender.user_ids))], dtype=torch.long)
    top_scores = -torch.arange(1, k + 1, dtype=torch.float32).expand(len(top_items), k).clone()
    return TeacherSignal(
        queries="users",
        top_items=top_items,
        top_scores=top_scores,
        user_ids=recommender.user_ids,
        item_ids=recommender.item_ids,
        split_hash=recommender.split.content_hash,
        producer={
            "model": producer,
            "ranking": str(ranking.resolve()),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        item_embeddings=None if item_embeddings is None else read_matrix(item_embeddings),
        query_embeddings=None if query_embeddings is None else read_matrix(query_embeddings),
    )


def _read_ranking(path: Path, recommender: Any) -> tuple[set[int], dict[int, list[int]]]:
    rows: dict[int, list[int]] = {}
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataFormatError(path, f"cannot read the ranking ({error})") from error
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise DataFormatError(path, "expected a user id and at least one item id", line=number)
        try:
            user = recommender.user_index(fields[0])
        except RecforgeError as error:
            raise DataFormatError(path, str(error), line=number, field="user") from None
        if user in rows:
            raise DataFormatError(path, f"user '{fields[0]}' has a second line", line=number, field="user")
        try:
            rows[user] = [recommender.item_index(raw) for raw in fields[1:]]
        except RecforgeError as error:
            raise DataFormatError(path, str(error), line=number, field="item") from None
    return set(rows), rows


def read_matrix(path: str | Path) -> Tensor:
    """A 2-D float matrix from ``.npy`` (no pickles) or ``.pt`` (one plain tensor, ``weights_only``)."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            value: object = torch.from_numpy(np.load(path, allow_pickle=False))
        elif path.suffix == ".pt":
            value = torch.load(path, map_location="cpu", weights_only=True)
        else:
            raise TeacherError(f"{path}: embeddings must be a .npy or .pt file")
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        # weights_only: anything but plain tensors and containers is refused, never executed
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise TeacherError(f"{path}: not a plain tensor file ({reason})") from error
    if not isinstance(value, Tensor) or value.dim() != 2 or not value.dtype.is_floating_point:
        raise TeacherError(f"{path}: expected one 2-D float tensor, got {_describe(value)}")
    return value.float()


def _max_length(recommender: Any) -> int:
    max_length = getattr(recommender.config.model, "max_length", None)
    if not isinstance(max_length, int):
        raise TeacherError(f"model '{recommender.model_name}' has no max_length: it reads no sequences")
    return max_length


def _describe(value: object) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dim()}-D {value.dtype} tensor"
    return type(value).__name__


__all__ = [
    "TeacherError",
    "TeacherSignal",
    "check_teacher",
    "cosine_distances",
    "export_teacher",
    "import_teacher",
    "load_teacher",
    "read_matrix",
]
