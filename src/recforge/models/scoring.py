"""How a trained encoder ranks items: the query and item tables it is scored by (dot products).

A :class:`Scorer` wraps one encoder and the graph tensors it reads, and answers three questions:
the item table, every user's query for a fold (the evaluator's input, and a service's), and the
query of an arbitrary item history (for models that read histories). It needs the saved split
only, never the raw data or a training task, so the trainer's evaluation and
:func:`recforge.retrieval.recommender.load_recommender` score through the same code.

* :class:`EmbeddingScorer`: graph/CF encoders (MF, LightGCN, GAT, RGT): ``forward(**graph)`` gives
  users and items; a user's query is the same for every fold.
* :class:`SequenceScorer`: sequential encoders (SASRec, GRU4Rec): a user's query is the encoder's
  state after the history before the fold's held-out item.
* :class:`GraphSequenceScorer`: GSAU, ranking by the sequence encoder, the graph, or both.
* :class:`FilterScorer`: a training-free filter (GF-CF, BSPM, EASE), which scores a user from
  their history row and is *not* a dot product of two tables: :func:`evaluate_fold` ranks every
  scorer, this one through its score function.

Every table comes back detached, in eval mode, on the encoder's device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, cast

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recforge.data.sequences import evaluation_queries, latest_histories
from recforge.data.split import Split
from recforge.errors import RecforgeError
from recforge.evaluation.evaluator import EvaluationResult, Evaluator
from recforge.models.filters import EASE, GraphFilter, LowPassFilter


class Scorer(Protocol):
    """What ranks items for a trained encoder."""

    reads_histories: bool
    """Whether :meth:`history_queries` works (sequential and sequence-ranked GSAU models)."""

    def item_table(self) -> Tensor:
        """(I, d) item embeddings."""
        ...

    def embeddings(self, split: Split, fold: str | None) -> tuple[Tensor, Tensor]:
        """``(queries (U, d), items (I, d))`` for scoring ``fold``: each user's query is made from
        the history before that fold (``valid`` or ``test``) or, for ``None``, from everything
        known, as a deployed model answers."""
        ...

    def history_queries(self, sequences: Tensor) -> Tensor:
        """(B, d) queries of (B, L) left-padded sequence ids (see :mod:`recforge.data.sequences`)."""
        ...


def _no_histories(model: nn.Module) -> RecforgeError:
    return RecforgeError(
        f"{type(model).__name__} ranks by user embeddings learned in training; it has no query for an "
        "item history (history queries need a sequential model: sasrec, gru4rec, or gsau with "
        "score_with: sequence)"
    )


class EmbeddingScorer:
    """Users and items from ``model(**graph)``: the same query for every fold."""

    reads_histories = False

    def __init__(self, model: nn.Module, graph: dict[str, Tensor]) -> None:
        self.model, self.graph = model, graph

    @torch.no_grad()
    def tables(self) -> tuple[Tensor, Tensor]:
        self.model.eval()
        users, items = self.model(**self.graph)
        return users.detach(), items.detach()  # MF returns its parameters themselves

    def item_table(self) -> Tensor:
        return self.tables()[1]

    def embeddings(self, split: Split, fold: str | None) -> tuple[Tensor, Tensor]:
        return self.tables()

    def history_queries(self, sequences: Tensor) -> Tensor:
        raise _no_histories(self.model)


class SequenceScorer:
    """A sequential encoder's ``query_embeddings`` over histories, against ``item_embeddings()``."""

    reads_histories = True

    def __init__(self, model: nn.Module, max_length: int) -> None:
        self.model, self.max_length = model, max_length
        # every sequential encoder has them (the contract); nn.Module does not tell a type checker
        self.query = cast(Callable[[Tensor], Tensor], model.query_embeddings)
        self.items = cast(Callable[[], Tensor], model.item_embeddings)

    @torch.no_grad()
    def item_table(self) -> Tensor:
        self.model.eval()
        return self.items().detach()  # GRU4Rec's table is its parameter itself

    @torch.no_grad()
    def embeddings(self, split: Split, fold: str | None) -> tuple[Tensor, Tensor]:
        self.model.eval()
        items = self.items().detach()
        return sequence_queries(self.query, split, fold, self.max_length, items), items

    @torch.no_grad()
    def history_queries(self, sequences: Tensor) -> Tensor:
        self.model.eval()
        return self.query(sequences)


class GraphSequenceScorer:
    """GSAU's ranking policy, ``score_with``:

    * ``sequence``: the sequence state against the shared item table (the paper's choice);
    * ``graph``: the LightGCN user against the LightGCN items, unit-normalised;
    * ``both``: the unit-normalised sequence and graph embeddings concatenated, so a dot product is
      the sum of the two cosines.
    """

    def __init__(
        self,
        model: nn.Module,
        normalized_adjacency: Tensor,
        max_length: int,
        score_with: Literal["sequence", "graph", "both"],
    ) -> None:
        self.model, self.adjacency = model, normalized_adjacency
        self.max_length, self.score_with = max_length, score_with
        self.sequence = SequenceScorer(model, max_length)
        self.reads_histories = score_with == "sequence"
        self.graph_embeddings = cast(Callable[[Tensor], tuple[Tensor, Tensor]], model.graph_embeddings)

    @torch.no_grad()
    def _graph_tables(self) -> tuple[Tensor, Tensor]:
        self.model.eval()
        users, items = self.graph_embeddings(self.adjacency)
        return F.normalize(users, dim=-1), F.normalize(items, dim=-1)

    def item_table(self) -> Tensor:
        if self.score_with == "sequence":
            return self.sequence.item_table()
        graph_items = self._graph_tables()[1]
        if self.score_with == "graph":
            return graph_items
        return torch.cat([F.normalize(self.sequence.item_table(), dim=-1), graph_items], dim=1)

    def embeddings(self, split: Split, fold: str | None) -> tuple[Tensor, Tensor]:
        if self.score_with == "sequence":
            return self.sequence.embeddings(split, fold)
        graph_users, graph_items = self._graph_tables()
        if self.score_with == "graph":
            return graph_users, graph_items
        queries, items = self.sequence.embeddings(split, fold)
        return (
            torch.cat([F.normalize(queries, dim=-1), graph_users], dim=1),
            torch.cat([F.normalize(items, dim=-1), graph_items], dim=1),
        )

    def history_queries(self, sequences: Tensor) -> Tensor:
        if not self.reads_histories:
            raise RecforgeError(
                f"this GSAU run ranks with score_with: {self.score_with}, which needs a user's graph "
                "embedding; an item history alone can be ranked only with score_with: sequence"
            )
        return self.sequence.history_queries(sequences)


def sequence_queries(
    query: Callable[[Tensor], Tensor],
    split: Split,
    fold: str | None,
    max_length: int,
    items: Tensor,
    batch_size: int = 1024,
) -> Tensor:
    """Each user's query: the encoder's state after the history before ``fold``'s item (for test,
    the valid item is part of it); for ``fold=None`` after the whole known history. Users with
    nothing to answer for (no item in ``fold``, or no history at all) get zeros; the evaluator
    never scores them."""
    if fold is None:
        users = np.flatnonzero(np.bincount(_all_users(split), minlength=split.num_users)).astype(np.int64)
        sequences = latest_histories(split, users, max_length)
    else:
        users, sequences = evaluation_queries(split, fold, max_length)
    queries = torch.zeros(split.num_users, items.shape[1], dtype=items.dtype, device=items.device)
    user_rows = torch.as_tensor(users, device=items.device)
    for start in range(0, len(users), batch_size):
        block = torch.as_tensor(sequences[start : start + batch_size], device=items.device)
        queries[user_rows[start : start + batch_size]] = query(block)
    return queries


def _all_users(split: Split) -> np.ndarray:
    return np.concatenate([split.train.users, split.valid.users, split.test.users]).astype(np.int64)


def known_before(split: Split, fold: str | None) -> sp.csr_matrix:
    """(U, I) binary: what each user had done before ``fold`` (valid: train; test: train + valid;
    None: everything), the history a history-reading model answers from."""
    folds = {"valid": ("train",), "test": ("train", "valid"), None: ("train", "valid", "test")}
    if fold not in folds:
        raise RecforgeError(f"fold must be 'valid', 'test' or None, got {fold!r}")
    known = sum((split.csr(name) for name in folds[fold][1:]), split.csr(folds[fold][0]))
    return sp.csr_matrix(known)


class FilterScorer:
    """A fitted filter's scores of each user from their history before the fold (valid: the
    training row, the one the filter was fitted on; test: train + valid; a deployed answer:
    everything known). The embeddings are the low-rank ideal part of GF-CF and BSPM only, what a
    student can be taught in embedding space; they do not rank (EASE has none)."""

    reads_histories = False

    def __init__(self, fitted: GraphFilter) -> None:
        self.filter = fitted

    @property
    def has_embeddings(self) -> bool:
        """Whether the filter has a low-rank part to export as embeddings (GF-CF, BSPM; not EASE)."""
        return isinstance(self.filter, LowPassFilter)

    def _ideal(self) -> LowPassFilter:
        if not isinstance(self.filter, LowPassFilter):
            name = "EASE" if isinstance(self.filter, EASE) else type(self.filter).__name__
            raise RecforgeError(f"{name} has no embeddings (its item-item weights have full rank); "
                                "embeddings come from gfcf and bspm runs, which have a low-rank part")
        return self.filter

    def item_table(self) -> Tensor:
        return self._ideal().item_factors_

    def embeddings(self, split: Split, fold: str | None) -> tuple[Tensor, Tensor]:
        ideal = self._ideal()
        return ideal.history_factors(known_before(split, fold)), ideal.item_factors_

    def history_queries(self, sequences: Tensor) -> Tensor:
        raise RecforgeError(f"{type(self.filter).__name__} scores user histories as rows, not sequence "
                            "queries; ask it by user")

    def score_function(
        self, split: Split, fold: str | None, *, buffer_rows: int = 0
    ) -> Callable[[Tensor], Tensor]:
        """``users (B,) -> (B, I)`` float32 CPU scores from each user's history before ``fold``.
        With ``buffer_rows`` > 0, batches of up to that many users are written into one reused
        buffer (the evaluator masks it in place and reads it before the next call: no page faults
        for a fresh 100+ MB block per batch); otherwise each call returns a fresh tensor."""
        history = known_before(split, fold)
        buffer = torch.empty(min(buffer_rows, split.num_users), split.num_items)

        def score(users: Tensor) -> Tensor:
            rows = history[users.cpu().numpy()]
            reuse = len(users) <= len(buffer)
            return self.filter.history_scores(rows, out=buffer[: len(users)] if reuse else None)

        return score


def evaluate_fold(scorer: Scorer, evaluator: Evaluator, fold: str) -> EvaluationResult:
    """Score every user of ``fold``: dot products of the scorer's tables, or a filter's scores."""
    if isinstance(scorer, FilterScorer):
        score = scorer.score_function(evaluator.split, fold, buffer_rows=evaluator.batch_size)
        return evaluator.evaluate_scores(score, fold)
    return evaluator.evaluate(*scorer.embeddings(evaluator.split, fold), fold)

