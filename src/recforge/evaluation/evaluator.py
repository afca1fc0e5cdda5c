"""Full-ranking evaluation: every user against every item, seen items masked (DESIGN idea 4).

Protocol, for the users with at least one item in the evaluated fold:

* score all items (one matmul per batch of users; any model fits, by DESIGN idea 1);
* set to -inf the items the user saw earlier: train for ``"valid"``, train + valid for ``"test"``,
  so a heavy user is ranked on new items only and still gets ``k`` of them;
* ``torch.topk`` to the largest cut-off, look up which of those items are in the fold, and read
  every metric at every cut-off off that one hit matrix;
* average over users, overall and per activity slice (number of distinct training items).

The fold's index structures (evaluated users, masks, relevant items) are built once per fold and
device, so evaluating every epoch costs only the scoring.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from recforge.data.split import Split
from recforge.errors import ConfigError, RecforgeError, UnknownNameError
from recforge.evaluation.metrics import PER_QUERY_METRICS, item_coverage, ranking_metrics
from recforge.evaluation.ranking import SparseRows, mask_seen_, ranked_items, top_k

__all__ = ["EVALUATED_FOLDS", "METRIC_NAMES", "EvaluationResult", "Evaluator", "ranked_items"]

EVALUATED_FOLDS = ("valid", "test")
METRIC_NAMES = (*PER_QUERY_METRICS, "coverage")
"""Names ``Evaluator(metrics=...)`` accepts; ``"coverage"`` is catalogue coverage, not a per-user mean."""


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one model on one fold.

    Attributes:
        fold: ``"valid"`` or ``"test"``.
        metrics: mean over evaluated users, keyed ``"recall@20"``; ``"coverage@20"`` is the fraction
            of items shown to at least one of them.
        slices: the same metrics per activity slice (``"<=5"``, ``"6-20"``, ``">20"`` training items),
            each with ``"num_users"``; NaN where a slice has no users.
        num_users: users evaluated (those with at least one item in the fold).
        seconds: wall time of the evaluation, scoring included.
        users: (num_users,) ids of the evaluated users, on the CPU.
        per_user: (num_users,) value per evaluated user of each per-user metric, aligned with
            ``users`` (for significance tests and custom slices); not part of :meth:`to_dict`.
    """

    fold: str
    metrics: dict[str, float]
    slices: dict[str, dict[str, float]]
    num_users: int
    seconds: float
    users: Tensor = field(repr=False)
    per_user: dict[str, Tensor] = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary; NaN (an empty slice) becomes None, since JSON has no NaN."""
        return {
            "fold": self.fold,
            "num_users": self.num_users,
            "seconds": self.seconds,
            "metrics": _json_floats(self.metrics),
            "slices": {name: _json_floats(values) for name, values in self.slices.items()},
        }


def _json_floats(values: dict[str, float]) -> dict[str, float | None]:
    return {key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in values.items()}


@dataclass(frozen=True)
class _FoldIndex:
    """What evaluating one fold on one device needs, built once.

    ``users`` are the evaluated user ids in ascending order; row ``r`` of ``seen`` and ``relevant``
    is user ``users[r]``, so a batch of users is a contiguous range of rows.
    """

    users: Tensor
    num_relevant: Tensor
    slice_of_user: np.ndarray
    seen: SparseRows
    relevant: SparseRows

    def to(self, device: torch.device) -> _FoldIndex:
        return _FoldIndex(self.users.to(device), self.num_relevant.to(device), self.slice_of_user,
                          self.seen.to(device), self.relevant.to(device))


class Evaluator:
    """Full-ranking evaluator of one split, reusable across epochs and models.

    Args:
        split: the train / valid / test interactions.
        ks: cut-offs; the ranking goes to ``max(ks)`` once and every cut-off is read from it.
        metrics: names from :data:`METRIC_NAMES`.
        batch_size: users scored per matmul; scores take ``batch_size * num_items`` floats.
        activity_slices: ascending edges on a user's number of distinct training items; ``(5, 20)``
            gives the slices ``"<=5"``, ``"6-20"`` and ``">20"``; ``()`` gives none.
    """

    def __init__(
        self,
        split: Split,
        *,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = ("recall", "ndcg", "hit", "precision", "mrr", "map", "coverage"),
        batch_size: int = 1024,
        activity_slices: Sequence[int] = (5, 20),
    ) -> None:
        # checked here, not at evaluate(): a typo in a config should fail before training starts
        if not ks or any(not isinstance(k, Integral) or k < 1 for k in ks):
            raise ConfigError(f"ks must be a non-empty list of positive ints, got {list(ks)}")
        for name in metrics:
            if name not in METRIC_NAMES:
                raise UnknownNameError("metric", name, METRIC_NAMES)
        if not metrics:
            raise ConfigError("metrics must name at least one metric")
        if not isinstance(batch_size, Integral) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        edges = list(activity_slices)
        if any(not isinstance(e, Integral) or e < 0 for e in edges) or edges != sorted(set(edges)):
            raise ConfigError(f"activity_slices must be strictly increasing ints >= 0, got {edges}")
        self.split: Split = split
        self.ks: tuple[int, ...] = tuple(sorted({int(k) for k in ks}))
        self.metrics: tuple[str, ...] = tuple(dict.fromkeys(metrics))
        self.batch_size: int = int(batch_size)
        self.activity_slices: tuple[int, ...] = tuple(int(edge) for edge in edges)
        self._indexes: dict[tuple[str, torch.device], _FoldIndex] = {}

    def __repr__(self) -> str:
        return (f"Evaluator(users={self.split.num_users}, items={self.split.num_items}, ks={list(self.ks)}, "
                f"metrics={list(self.metrics)}, batch_size={self.batch_size}, "
                f"activity_slices={list(self.activity_slices)})")

    @property
    def slice_names(self) -> tuple[str, ...]:
        """Labels of the activity slices, lowest activity first."""
        edges = self.activity_slices
        if not edges:
            return ()
        middle = [f"{low + 1}-{high}" if high > low + 1 else str(high) for low, high in pairwise(edges)]
        return (f"<={edges[0]}", *middle, f">{edges[-1]}")

    def evaluate(self, user_embeddings: Tensor, item_embeddings: Tensor, fold: str) -> EvaluationResult:
        """Evaluate dot-product scores ``user_embeddings @ item_embeddings.T`` on ``fold``.

        Shapes: user_embeddings (U, d), item_embeddings (I, d), on one device; the evaluation runs
        there. Gradients are not tracked.
        """
        num_users, num_items = self.split.num_users, self.split.num_items
        if user_embeddings.dim() != 2 or user_embeddings.shape[0] != num_users:
            raise RecforgeError(f"user_embeddings must have shape ({num_users}, d) for this split, "
                                f"got {tuple(user_embeddings.shape)}")
        if item_embeddings.dim() != 2 or item_embeddings.shape != (num_items, user_embeddings.shape[1]):
            raise RecforgeError(f"item_embeddings must have shape ({num_items}, {user_embeddings.shape[1]}) "
                                f"for this split and user_embeddings, got {tuple(item_embeddings.shape)}")
        if user_embeddings.device != item_embeddings.device:
            raise RecforgeError(f"user_embeddings are on {user_embeddings.device}, item_embeddings on "
                                f"{item_embeddings.device}; put both on one device")
        user_embeddings, items_by_dim = user_embeddings.detach(), item_embeddings.detach().T
        # one (batch, items) buffer for every batch: a fresh 100+ MB block per batch costs page faults
        # (on the CPU, as much system time as the matmul itself); the evaluator only reads it in place
        buffer = user_embeddings.new_empty(min(self.batch_size, num_users), num_items)

        def score_batch(users: Tensor) -> Tensor:
            return torch.mm(user_embeddings[users], items_by_dim, out=buffer[: len(users)])

        return self.evaluate_scores(score_batch, fold, device=user_embeddings.device)

    @torch.no_grad()
    def evaluate_scores(
        self,
        score_batch: Callable[[Tensor], Tensor],
        fold: str,
        *,
        device: torch.device | str | None = None,
    ) -> EvaluationResult:
        """Evaluate any scorer on ``fold``: ``score_batch(users (B,)) -> scores (B, num_items)``.

        ``users`` are int64 ids on ``device`` (the CPU when None); masking and ranking run on the
        device of the returned scores. The scores are masked in place, so ``score_batch`` must not
        return a view of scores it still needs (a scratch buffer reused across batches is fine).
        """
        started = time.perf_counter()
        index = self._index(fold, torch.device(device) if device is not None else torch.device("cpu"))
        max_k = max(self.ks)
        hit_blocks: list[Tensor] = []
        item_blocks: list[Tensor] = []
        for start in range(0, len(index.users), self.batch_size):
            stop = min(start + self.batch_size, len(index.users))
            scores = score_batch(index.users[start:stop])
            if scores.shape != (stop - start, self.split.num_items):
                raise RecforgeError(f"score_batch returned shape {tuple(scores.shape)} for {stop - start} "
                                    f"users, expected ({stop - start}, {self.split.num_items})")
            on_scores = self._index(fold, scores.device)
            mask_seen_(scores, *on_scores.seen.block(start, stop))
            _, top_items = top_k(scores, max_k)
            hit_blocks.append(on_scores.relevant.contains(start, top_items))
            if "coverage" in self.metrics:
                item_blocks.append(top_items)
        hits = torch.cat(hit_blocks) if hit_blocks else torch.zeros(0, max_k, dtype=torch.bool)
        top_items = torch.cat(item_blocks) if item_blocks else torch.zeros(0, max_k, dtype=torch.long)
        per_user = ranking_metrics(hits, index.num_relevant.to(hits.device), self.ks,
                                   [name for name in self.metrics if name in PER_QUERY_METRICS])
        per_user = {key: values.cpu() for key, values in per_user.items()}
        top_items = top_items.cpu()

        metrics = self._summarise(per_user, top_items, np.ones(len(index.users), dtype=bool))
        slices = {}
        for number, name in enumerate(self.slice_names):
            members = index.slice_of_user == number
            slices[name] = {**self._summarise(per_user, top_items, members), "num_users": int(members.sum())}
        return EvaluationResult(fold=fold, metrics=metrics, slices=slices, num_users=len(index.users),
                                seconds=time.perf_counter() - started, users=index.users.cpu(),
                                per_user=per_user)

    def _summarise(
        self, per_user: dict[str, Tensor], top_items: Tensor, members: np.ndarray
    ) -> dict[str, float]:
        """Mean of each per-user metric over ``members`` (a bool mask), and their catalogue coverage."""
        chosen = torch.from_numpy(members)
        summary = {}
        for name in self.metrics:
            for k in self.ks:
                key = f"{name}@{k}"
                if not chosen.any():
                    summary[key] = float("nan")
                elif name == "coverage":
                    summary[key] = item_coverage(top_items[chosen], self.split.num_items, k).item()
                else:  # float64 mean: a float32 sum over a million users drifts in the 4th digit
                    summary[key] = per_user[key][chosen].double().mean().item()
        return summary

    def _index(self, fold: str, device: torch.device) -> _FoldIndex:
        """The fold's index on ``device``, built on first use and kept."""
        if fold not in EVALUATED_FOLDS:
            raise UnknownNameError("fold", fold, EVALUATED_FOLDS)
        if device.type == "cuda" and device.index is None:  # "cuda" and "cuda:0" must share one entry
            device = torch.device("cuda", torch.cuda.current_device())
        key = (fold, device)
        if key not in self._indexes:
            host_key = (fold, torch.device("cpu"))
            if host_key not in self._indexes:  # built once on the host, copied to each device
                self._indexes[host_key] = self._build_index(fold)
            self._indexes[key] = self._indexes[host_key].to(device)
        return self._indexes[key]

    def _build_index(self, fold: str) -> _FoldIndex:
        relevant = self.split.csr(fold)
        seen = self.split.csr("train")
        if fold == "test":  # validation items were revealed before test time: ranking them is not new
            seen = (seen + self.split.csr("valid")).astype(bool).astype(np.float32)
        num_relevant = np.diff(relevant.indptr)
        users = np.flatnonzero(num_relevant > 0)
        training_items = np.diff(self.split.csr("train").indptr)[users]
        return _FoldIndex(
            users=torch.from_numpy(users.astype(np.int64)),
            num_relevant=torch.from_numpy(num_relevant[users].astype(np.int64)),
            slice_of_user=np.searchsorted(np.asarray(self.activity_slices, dtype=np.int64), training_items),
            seen=SparseRows.from_csr(sp.csr_matrix(seen)[users]),
            relevant=SparseRows.from_csr(relevant[users]),
        )
