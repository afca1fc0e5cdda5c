r"""Ranking distillation: the student learns the order of the teacher's top items.

**RRD** (relaxed ranking distillation; Kang et al., "DE-RRD: A Knowledge Distillation Framework
for Recommender System", CIKM 2020). For each user, K "interesting" items are drawn from the
teacher's top-N list with :math:`p(r) \propto e^{-r/T}` (rank r = 1..N), kept in the teacher's
order :math:`\pi_1, \dots, \pi_K`, and L "uninteresting" items are drawn uniformly from the items
that are neither the user's training items nor in that top-N list. With the student's scores s,
the relaxed Plackett-Luce log-likelihood asks only that the interesting items come in the
teacher's order, above every uninteresting one (whose own order is left free):

.. math::  \ell_u = -\sum_{k=1}^{K} \Big[ s_{\pi_k} - \log \Big( \sum_{l \ge k} e^{s_{\pi_l}}
           + \sum_{j \in \mathcal U_u} e^{s_j} \Big) \Big]

Both sets are drawn again every epoch, for every user at once (a function of the seed and the
epoch, so a resumed run draws the same). The reference code sums :math:`\ell_u` over the batch's
distinct users next to a BPR loss summed over the batch; recforge's terms are means over the batch,
so this term is that sum divided by the batch size B, and the reference's weight λ (0.001 on
CiteULike) carries over unchanged.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import Tensor

from recforge.distill.teacher import teacher_tables
from recforge.errors import ConfigError
from recforge.evaluation.ranking import SparseRows
from recforge.objectives.contrastive import first_occurrences
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.term import Term, TermParams


class RRDParams(TermParams):
    k: Annotated[int, Field(gt=0, description="interesting items per user (K)")] = 40
    l: Annotated[int, Field(gt=0, description="uninteresting items per user (L)")] = 40  # noqa: E741
    temperature: Annotated[
        float, Field(gt=0, allow_inf_nan=False, description="T of the rank weights exp(-r/T)")
    ] = 10.0
    top: Annotated[int, Field(gt=0, description="teacher list length N the K are drawn from")] = 500


def relaxed_ranking_loss(interesting: Tensor, uninteresting: Tensor) -> Tensor:
    r"""Per-row :math:`\ell` of the module docstring: interesting (N, K) scores in the teacher's
    order, uninteresting (N, L) -> (N,). Log-sum-exps throughout (finite for any scores)."""
    tail = interesting.flip(1).logcumsumexp(1).flip(1)  # log sum_{l >= k} exp s_l, (N, K)
    rest = uninteresting.logsumexp(1, keepdim=True)  # (N, 1)
    return -(interesting - torch.logaddexp(tail, rest)).sum(1)


def sample_interesting(top_items: Tensor, k: int, temperature: float, generator: torch.Generator) -> Tensor:
    """(Q, k) items drawn without replacement from each row of ``top_items`` (Q, N) with weights
    exp(-r/T) for rank r = 1..N, returned in rank order."""
    ranks = torch.arange(1, top_items.shape[1] + 1, dtype=torch.float64)
    # exp(-(r-1)/T) is exp(-r/T) scaled by a constant: the same distribution, and rank 1 keeps
    # weight 1 however small T is (exp(-r/T) would underflow to all zeros)
    weights = torch.exp(-(ranks - 1) / temperature).expand(len(top_items), -1)
    drawn = torch.multinomial(weights, k, replacement=False, generator=generator).sort(dim=1).values
    return top_items.gather(1, drawn)


def sample_uninteresting(
    excluded: sp.csr_matrix, num_items: int, count: int, generator: torch.Generator
) -> Tensor:
    """(Q, count) distinct items per row, uniform over the items not in that row of ``excluded``.

    Rejection sampling, vectorised: draw twice as many candidates as needed, drop excluded and
    repeated ones, keep the first ``count``; rows left short (rare unless a row excludes almost
    everything) draw again on their own."""
    num_rows = excluded.shape[0]
    allowed = num_items - np.diff(excluded.indptr)
    if num_rows and int(allowed.min()) < count:
        row = int(allowed.argmin())
        raise ConfigError(
            f"rrd: row {row} has only {int(allowed.min())} items outside its training items and the "
            f"teacher's list; it cannot draw {count} uninteresting ones (lower the term's l)"
        )
    result = torch.full((num_rows, count), -1, dtype=torch.long)
    pending = torch.arange(num_rows)
    while len(pending):
        width = 2 * count
        candidates = torch.randint(num_items, (len(pending), width), generator=generator)
        rows_csr = SparseRows.from_csr(excluded[pending.numpy()])
        valid = ~rows_csr.contains(0, candidates)
        ordered, order = candidates.sort(dim=1, stable=True)
        repeated = torch.zeros_like(valid)
        repeated.scatter_(1, order[:, 1:], ordered[:, 1:] == ordered[:, :-1])
        valid &= ~repeated
        enough = valid.sum(1) >= count
        # the first `count` valid candidates of each row, in draw order
        position = torch.where(valid, torch.arange(width).expand_as(valid), width)
        chosen = position.sort(dim=1).values[:, :count]
        picked = candidates.gather(1, chosen.clamp(max=width - 1))
        done = pending[enough]
        result[done] = picked[enough]
        pending = pending[~enough]
    return result


class RRD(Term[RRDParams]):
    """Relaxed ranking distillation from the teacher's per-user top lists (module docstring)."""

    needs = frozenset({"query_ids", "queries", "items"})
    teacher_needs = frozenset({"top_items"})
    Params = RRDParams
    summary = "DE-RRD relaxed ranking distillation of the teacher's top-N order (per user)"

    @classmethod
    def teacher_k(cls, params: TermParams) -> int:
        assert isinstance(params, RRDParams)
        return params.top

    def __init__(self, params: RRDParams, context: TermContext) -> None:
        super().__init__(params, context)
        teacher = context.teacher
        if teacher is None or context.train is None:
            raise ConfigError("rrd: needs objective.teacher and a task with a user-item training matrix")
        if teacher.queries != "users":
            raise ConfigError(f"rrd: the teacher's queries are {teacher.queries}; rrd reads per-user lists")
        if params.k > params.top:
            raise ConfigError(
                f"objective.terms.rrd: k = {params.k} interesting items cannot come from top = {params.top}"
            )
        self.seed, self.num_items = context.seed, context.num_items
        self.top_items = teacher.top_items[:, : params.top].long()
        self.excluded = _union(context.train, self.top_items, context.num_items)
        self.interesting: Tensor
        self.uninteresting: Tensor
        self.register_buffer("interesting", torch.zeros(0, params.k, dtype=torch.long), persistent=False)
        self.register_buffer("uninteresting", torch.zeros(0, params.l, dtype=torch.long), persistent=False)
        self.device = context.device

    def on_epoch(self, epoch: int) -> None:
        seed = int(np.random.SeedSequence(self.seed, spawn_key=(epoch, 71)).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        params = self.params
        self.interesting = sample_interesting(self.top_items, params.k, params.temperature, generator).to(
            self.device
        )
        self.uninteresting = sample_uninteresting(self.excluded, self.num_items, params.l, generator).to(
            self.device
        )

    def forward(self, outputs: BatchOutputs) -> Tensor:
        if not len(self.interesting):
            raise RuntimeError("rrd: on_epoch() draws the samples; the trainer calls it before each pass")
        query_ids = outputs["query_ids"]
        first = first_occurrences(query_ids)
        users, queries, items = query_ids[first], outputs["queries"][first], outputs["items"]
        interesting = torch.einsum("nd,nkd->nk", queries, items[self.interesting[users]])
        uninteresting = torch.einsum("nd,nkd->nk", queries, items[self.uninteresting[users]])
        return relaxed_ranking_loss(interesting, uninteresting).sum() / len(query_ids)


class IRRRDParams(TermParams):
    k: Annotated[int, Field(gt=0, description="interesting users per item (K)")] = 20
    l: Annotated[int, Field(gt=0, description="uninteresting users per item (L)")] = 20  # noqa: E741
    temperature: Annotated[
        float, Field(gt=0, allow_inf_nan=False, description="T of the rank weights exp(-r/T)")
    ] = 10.0
    top: Annotated[int, Field(gt=0, description="teacher's users per item the K are drawn from")] = 500


class IRRRD(Term[IRRRDParams]):
    r"""Item-side relaxed ranking distillation (IR-RRD; Kang et al., Information Sciences 2021): RRD
    with the roles swapped. For each item, K "interesting" users come from the teacher's ranking of
    users for that item (top ``top``, weights :math:`e^{-r/T}`, teacher order) and L uninteresting
    ones uniformly from the users neither in that list nor interacting with the item in training;
    the student must rank the interesting users in the teacher's order above the others.

    The teacher's item-side ranking is computed once from its embeddings (scores are dot products
    of its query and item embeddings, training interactions left out), so the teacher must export
    both. The items are the batch's distinct positive and negative items (the reference takes the
    items RRD drew for the batch's users; here the two terms are independent, and either can be
    used alone). The sum over items is divided by the batch size B, as for RRD."""

    needs = frozenset({"query_ids", "positive_ids", "negative_ids", "items", "users"})
    teacher_needs = frozenset({"query_embeddings", "item_embeddings"})
    Params = IRRRDParams
    summary = "IR-RRD item-side relaxed ranking distillation: each item ranks users as the teacher does"

    def __init__(self, params: IRRRDParams, context: TermContext) -> None:
        super().__init__(params, context)
        teacher_users, teacher_items = teacher_tables(context, "ir_rrd")
        if context.train is None:
            raise ConfigError("ir_rrd: needs a task with a user-item training matrix")
        top = min(params.top, context.num_users)
        if params.k > top:
            raise ConfigError(
                f"objective.terms.ir_rrd: k = {params.k} interesting users cannot come from {top}"
            )
        train_by_item = sp.csr_matrix(context.train.T, dtype=np.float32)
        self.top_users = teacher_item_rankings(teacher_items, teacher_users, train_by_item, top)
        self.excluded = _union(train_by_item, self.top_users, context.num_users)
        self.seed, self.num_users, self.device = context.seed, context.num_users, context.device
        self.interesting: Tensor
        self.uninteresting: Tensor
        self.register_buffer("interesting", torch.zeros(0, params.k, dtype=torch.long), persistent=False)
        self.register_buffer("uninteresting", torch.zeros(0, params.l, dtype=torch.long), persistent=False)

    def on_epoch(self, epoch: int) -> None:
        seed = int(np.random.SeedSequence(self.seed, spawn_key=(epoch, 73)).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        params = self.params
        self.interesting = sample_interesting(self.top_users, params.k, params.temperature, generator).to(
            self.device
        )
        self.uninteresting = sample_uninteresting(self.excluded, self.num_users, params.l, generator).to(
            self.device
        )

    def forward(self, outputs: BatchOutputs) -> Tensor:
        if not len(self.interesting):
            raise RuntimeError("ir_rrd: on_epoch() draws the samples; the trainer calls it before each pass")
        item_ids = torch.cat([outputs["positive_ids"], outputs["negative_ids"].reshape(-1)]).unique()
        items, users = outputs["items"][item_ids], outputs["users"]
        interesting = torch.einsum("nd,nkd->nk", items, users[self.interesting[item_ids]])
        uninteresting = torch.einsum("nd,nkd->nk", items, users[self.uninteresting[item_ids]])
        return relaxed_ranking_loss(interesting, uninteresting).sum() / len(outputs["query_ids"])


def teacher_item_rankings(
    items: Tensor, users: Tensor, exclude: sp.csr_matrix, top: int, *, batch_size: int = 2048
) -> Tensor:
    """(I, top) users by the teacher's score ``items @ users.T``, best first, skipping each item's
    ``exclude`` row (its training users)."""
    seen = SparseRows.from_csr(exclude)
    ranked = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            stop = min(start + batch_size, len(items))
            scores = items[start:stop].float() @ users.float().T
            rows, columns = seen.block(start, stop)
            scores[rows, columns] = float("-inf")
            ranked.append(scores.topk(top, dim=1).indices)
    return torch.cat(ranked) if ranked else torch.zeros(0, top, dtype=torch.long)


def _union(train: sp.csr_matrix, top_items: Tensor, num_items: int) -> sp.csr_matrix:
    """(Q, I) binary: each row's training entries and its teacher-list entries."""
    rows = np.repeat(np.arange(len(top_items)), top_items.shape[1])
    listed = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, top_items.reshape(-1).numpy())),
        shape=(len(top_items), num_items),
    )
    union = (sp.csr_matrix(train, dtype=np.float32) + listed).tocsr()
    union.data[:] = 1.0
    union.sort_indices()
    return union


__all__ = [
    "IRRRD",
    "RRD",
    "IRRRDParams",
    "RRDParams",
    "relaxed_ranking_loss",
    "sample_interesting",
    "sample_uninteresting",
    "teacher_item_rankings",
]
