"""Evaluation: every user against every item (full ranking, the default), or against sampled negatives.

Full-ranking protocol, for the users with at least one item in the evaluated fold:

* score all items (one matmul per batch of users; any model fits, by DESIGN idea 1);
* set to -inf the items the user saw earlier: train for ``"valid"``, train + valid for ``"test"``,
  so a heavy user is ranked on new items only and still gets ``k`` of them;
* ``torch.topk`` to the largest cut-off, look up which of those items are in the fold, and read
  every metric at every cut-off off that one hit matrix;
* average over users, overall and per activity slice (number of distinct training items).

Sampled-candidate protocol (``sampled_negatives=N``; DE-RRD's CiteULike logs use ``N = 499``): each
evaluated user's held-out items of the fold are ranked against ``N`` negatives drawn uniformly,
without replacement, from the items the user has no interaction with in *any* fold (train, valid or
test; catalogue items nobody interacted with count as candidates). With one held-out item that is
the usual ``1 + N`` candidates; with several, all of them are ranked together with the same ``N``
negatives (``|R| + N`` candidates) and every metric keeps its full-ranking definition over that list
(recall@k = hits / |R|, NDCG's ideal puts ``min(|R|, k)`` hits on top). Ties between a held-out item and
a negative count against the held-out item. Seen items (train for valid, train + valid for test) are
masked exactly as in full ranking, so a held-out item that is also a seen item is never a hit. The
negatives come from :func:`~recforge.evaluation.candidates.sample_unseen` seeded with
``(sampled_seed, fold number)``: they depend on the split, ``N`` and the seed only, so every run and
every model on one split meets the same candidates (valid and test draw theirs independently).

Result keys: the configured protocol's metrics have the plain keys (``"ndcg@10"``), so early stopping
(``train.early_stopping_metric``), tables and comparisons follow the configured protocol. In sampled
mode the same scores are also ranked in full, reported under :data:`FULL_RANKING_PREFIX`
(``"full/ndcg@10"``); :attr:`EvaluationResult.protocol` says which protocol the plain keys are.

The fold's index structures (evaluated users, masks, relevant items, sampled candidates) are built
once per fold and device, so evaluating every epoch costs only the scoring.
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
from recforge.evaluation.candidates import ranked_candidates, sample_unseen
from recforge.evaluation.metrics import PER_QUERY_METRICS, item_coverage, ranking_metrics
from recforge.evaluation.ranking import SparseRows, mask_seen_, ranked_items, top_k

__all__ = ["EVALUATED_FOLDS", "FULL_RANKING_PREFIX", "METRIC_NAMES", "EvaluationResult", "Evaluator",
           "ranked_items"]

EVALUATED_FOLDS = ("valid", "test")
METRIC_NAMES = (*PER_QUERY_METRICS, "coverage")
"""Names ``Evaluator(metrics=...)`` accepts; ``"coverage"`` is catalogue coverage, not a per-user mean."""
FULL_RANKING_PREFIX = "full/"
"""Prefix of the full-ranking keys an evaluator with ``sampled_negatives`` reports beside its own."""


@dataclass(frozen=True)
class EvaluationResult:
    """Metrics of one model on one fold.

    Attributes:
        fold: ``"valid"`` or ``"test"``.
        metrics: mean over evaluated users, keyed ``"recall@20"``; ``"coverage@20"`` is the fraction
            of items shown to at least one of them (in sampled mode: in their top-20 candidates).
            Plain keys are the configured protocol; in sampled mode ``"full/recall@20"`` etc. are
            full ranking of the same scores.
        slices: the same metrics per activity slice (``"<=5"``, ``"6-20"``, ``">20"`` training items),
            each with ``"num_users"``; NaN where a slice has no users.
        num_users: users evaluated (those with at least one item in the fold).
        seconds: wall time of the evaluation, scoring included.
        users: (num_users,) ids of the evaluated users, on the CPU.
        per_user: (num_users,) value per evaluated user of each per-user metric, aligned with
            ``users`` (for significance tests and custom slices); not part of :meth:`to_dict`.
        protocol: what the plain keys measure (:attr:`Evaluator.protocol`).
    """

    fold: str
    metrics: dict[str, float]
    slices: dict[str, dict[str, float]]
    num_users: int
    seconds: float
    users: Tensor = field(repr=False)
    per_user: dict[str, Tensor] = field(repr=False)
    protocol: str = "full ranking"

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready summary; NaN (an empty slice) becomes None, since JSON has no NaN."""
        return {
            "fold": self.fold,
            "protocol": self.protocol,
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

    ``users`` are the evaluated user ids in ascending order; row ``r`` of ``seen``, ``relevant`` and
    ``candidates`` is user ``users[r]``, so a batch of users is a contiguous range of rows.
    ``candidates`` (sampled mode only): (users, N + max |R|) item ids, the N sampled negatives, then the
    user's relevant items, then -1 padding.
    """

    users: Tensor
    num_relevant: Tensor
    slice_of_user: np.ndarray
    seen: SparseRows
    relevant: SparseRows
    candidates: Tensor | None = None

    def to(self, device: torch.device) -> _FoldIndex:
        candidates = None if self.candidates is None else self.candidates.to(device)
        return _FoldIndex(self.users.to(device), self.num_relevant.to(device), self.slice_of_user,
                          self.seen.to(device), self.relevant.to(device), candidates)


class Evaluator:
    """Evaluator of one split (full ranking, or sampled candidates), reusable across epochs and models.

    Args:
        split: the train / valid / test interactions.
        ks: cut-offs; the ranking goes to ``max(ks)`` once and every cut-off is read from it.
        metrics: names from :data:`METRIC_NAMES`.
        batch_size: users scored per matmul; scores take ``batch_size * num_items`` floats.
        activity_slices: ascending edges on a user's number of distinct training items; ``(5, 20)``
            gives the slices ``"<=5"``, ``"6-20"`` and ``">20"``; ``()`` gives none.
        sampled_negatives: None for full ranking; ``N`` to rank each user's held-out items against
            ``N`` sampled negatives (see the module docstring), full ranking then under ``"full/"``.
            Every evaluated user must have ``N`` items they never interacted with (checked here).
        sampled_seed: seed of the negatives (with the fold); a fixed value, not the experiment
            seed, so runs with different training seeds meet the same candidates.
    """

    def __init__(
        self,
        split: Split,
        *,
        ks: Sequence[int] = (10, 20),
        metrics: Sequence[str] = ("recall", "ndcg", "hit", "precision", "mrr", "map", "coverage"),
        batch_size: int = 1024,
        activity_slices: Sequence[int] = (5, 20),
        sampled_negatives: int | None = None,
        sampled_seed: int = 0,
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
        if sampled_negatives is not None and (not isinstance(sampled_negatives, Integral)
                                              or isinstance(sampled_negatives, bool)
                                              or sampled_negatives < 1):
            raise ConfigError(f"sampled_negatives must be None (full ranking) or a positive int, "
                              f"got {sampled_negatives!r}")
        if not isinstance(sampled_seed, Integral) or isinstance(sampled_seed, bool) or sampled_seed < 0:
            raise ConfigError(f"sampled_seed must be an int >= 0, got {sampled_seed!r}")
        self.split: Split = split
        self.ks: tuple[int, ...] = tuple(sorted({int(k) for k in ks}))
        self.metrics: tuple[str, ...] = tuple(dict.fromkeys(metrics))
        self.batch_size: int = int(batch_size)
        self.activity_slices: tuple[int, ...] = tuple(int(edge) for edge in edges)
        self.sampled_negatives: int | None = None if sampled_negatives is None else int(sampled_negatives)
        self.sampled_seed: int = int(sampled_seed)
        self._indexes: dict[tuple[str, torch.device], _FoldIndex] = {}
        if self.sampled_negatives is not None:  # before training starts, not at the first evaluation
            self._check_enough_negatives(self.sampled_negatives)

    def __repr__(self) -> str:
        sampled = ("" if self.sampled_negatives is None
                   else f", sampled_negatives={self.sampled_negatives}, sampled_seed={self.sampled_seed}")
        return (f"Evaluator(users={self.split.num_users}, items={self.split.num_items}, ks={list(self.ks)}, "
                f"metrics={list(self.metrics)}, batch_size={self.batch_size}, "
                f"activity_slices={list(self.activity_slices)}{sampled})")

    @property
    def protocol(self) -> str:
        """What the plain metric keys measure, in one line (kept in every result)."""
        if self.sampled_negatives is None:
            return "full ranking"
        return (f"sampled: held-out items + {self.sampled_negatives} negatives never interacted with "
                f"(seed {self.sampled_seed}); full ranking under '{FULL_RANKING_PREFIX}'")

    def candidates(self, fold: str) -> Tensor:
        """The sampled candidates of ``fold``, on the CPU (sampled mode only).

        Shape (num_users, N + max |R|): row ``r`` is user ``users[r]`` (ascending ids of the users with
        an item in the fold, as in :attr:`EvaluationResult.users`): its ``N`` negatives (ascending),
        then its held-out items, then -1 padding up to the largest ``|R|``.
        """
        candidates = self._index(fold, torch.device("cpu")).candidates
        if candidates is None:
            raise RecforgeError("this evaluator ranks in full; candidates exist only with sampled_negatives")
        return candidates

    def _interacted(self) -> sp.csr_matrix:
        """Every (user, item) of the split, any fold: what a sampled negative must not be."""
        combined = self.split.csr("train") + self.split.csr("valid") + self.split.csr("test")
        return sp.csr_matrix(combined.astype(bool).astype(np.float32))

    def _check_enough_negatives(self, wanted: int) -> None:
        available = self.split.num_items - np.diff(self._interacted().indptr)
        evaluated = np.zeros(self.split.num_users, dtype=bool)
        for fold in EVALUATED_FOLDS:
            evaluated |= np.diff(self.split.csr(fold).indptr) > 0
        short = np.flatnonzero(evaluated & (available < wanted))
        if len(short):
            user = int(short[0])
            raise ConfigError(
                f"sampled_negatives={wanted}: user {user} interacted with all but {int(available[user])} "
                f"of the {self.split.num_items} items ({len(short)} evaluated users have fewer than "
                f"{wanted} items to sample from); lower sampled_negatives"
            )

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
        sampled_hit_blocks: list[Tensor] = []
        sampled_item_blocks: list[Tensor] = []
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
            if on_scores.candidates is not None:  # the same masked scores, read at the candidates only
                block = on_scores.candidates[start:stop]
                sampled_hits, sampled_items = ranked_candidates(scores, block, self._held_out_slots(block),
                                                                max_k)
                sampled_hit_blocks.append(sampled_hits)
                if "coverage" in self.metrics:
                    sampled_item_blocks.append(sampled_items)
        # prefix -> (hits, top items); the configured protocol has the plain keys
        rankings = {"": (hit_blocks, item_blocks)}
        if self.sampled_negatives is not None:
            rankings = {"": (sampled_hit_blocks, sampled_item_blocks),
                        FULL_RANKING_PREFIX: (hit_blocks, item_blocks)}
        per_user: dict[str, Tensor] = {}
        top_items_of: dict[str, Tensor] = {}
        for prefix, (hit_parts, item_parts) in rankings.items():
            hits = torch.cat(hit_parts) if hit_parts else torch.zeros(0, max_k, dtype=torch.bool)
            values = ranking_metrics(hits, index.num_relevant.to(hits.device), self.ks,
                                     [name for name in self.metrics if name in PER_QUERY_METRICS])
            per_user.update({prefix + key: value.cpu() for key, value in values.items()})
            top_items_of[prefix] = (torch.cat(item_parts) if item_parts
                                    else torch.zeros(0, max_k, dtype=torch.long)).cpu()

        metrics = self._summarise(per_user, top_items_of, np.ones(len(index.users), dtype=bool))
        slices = {}
        for number, name in enumerate(self.slice_names):
            members = index.slice_of_user == number
            slices[name] = {**self._summarise(per_user, top_items_of, members),
                            "num_users": int(members.sum())}
        return EvaluationResult(fold=fold, metrics=metrics, slices=slices, num_users=len(index.users),
                                seconds=time.perf_counter() - started, users=index.users.cpu(),
                                per_user=per_user, protocol=self.protocol)

    def _held_out_slots(self, candidates: Tensor) -> Tensor:
        """Which entries of a (B, N + max |R|) candidate block are held-out items (not negatives, not -1)."""
        slot = torch.arange(candidates.shape[1], device=candidates.device)
        return (slot >= (self.sampled_negatives or 0)) & (candidates >= 0)

    def _summarise(
        self, per_user: dict[str, Tensor], top_items_of: dict[str, Tensor], members: np.ndarray
    ) -> dict[str, float]:
        """Mean of each per-user metric over ``members`` (a bool mask), and their catalogue coverage,
        for each protocol prefix of ``top_items_of`` in turn."""
        chosen = torch.from_numpy(members)
        summary = {}
        for prefix, top_items in top_items_of.items():
            for name in self.metrics:
                for k in self.ks:
                    key = f"{prefix}{name}@{k}"
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
        seen = self.split.seen_with_self(sp.csr_matrix(seen))  # a friend graph: nobody befriends themself
        num_relevant = np.diff(relevant.indptr)
        users = np.flatnonzero(num_relevant > 0)
        training_items = np.diff(self.split.csr("train").indptr)[users]
        candidates = None
        if self.sampled_negatives is not None:
            candidates = torch.from_numpy(
                self._sampled_candidates(fold, users, relevant[users], self.sampled_negatives))
        return _FoldIndex(
            users=torch.from_numpy(users.astype(np.int64)),
            num_relevant=torch.from_numpy(num_relevant[users].astype(np.int64)),
            slice_of_user=np.searchsorted(np.asarray(self.activity_slices, dtype=np.int64), training_items),
            seen=SparseRows.from_csr(sp.csr_matrix(seen)[users]),
            relevant=SparseRows.from_csr(relevant[users]),
            candidates=candidates,
        )

    def _sampled_candidates(
        self, fold: str, users: np.ndarray, relevant: sp.csr_matrix, num_negatives: int
    ) -> np.ndarray:
        """(users, N + max |R|): each user's N negatives, then their held-out items, then -1."""
        negatives = sample_unseen(self._interacted()[users], num_negatives,
                                  seed=(self.sampled_seed, EVALUATED_FOLDS.index(fold)))
        relevant = sp.csr_matrix(relevant)
        relevant.sort_indices()
        counts = np.diff(relevant.indptr)
        held_out = np.full((len(users), int(counts.max(initial=0))), -1, dtype=np.int64)
        rows = np.repeat(np.arange(len(users)), counts)
        held_out[rows, np.arange(relevant.nnz) - relevant.indptr[rows]] = relevant.indices
        return np.concatenate([negatives, held_out], axis=1)
