r"""Importance-aware ranking distillation (DLLM2Rec; Cui et al., "Distillation Matters: Empowering
Sequential Recommenders to Match the Performance of Large Language Models", RecSys 2024).

A teacher ranks K candidates for every training prefix of every user (``queries="positions"``).
For the student state at that prefix, with scores :math:`s` over the catalogue, each candidate
:math:`c_r` (teacher rank r = 1..K) is pushed up against one sampled negative j:

.. math::  \ell = \sum_{r=1}^{K} w_r \big[ -\log\sigma(s_{c_r}) - \log\sigma(-s_j) \big]
           = \sum_r w_r \operatorname{softplus}(-s_{c_r}) + \Big(\sum_r w_r\Big)
             \operatorname{softplus}(s_j)

with importance weights :math:`w = \mathrm{normalise}(\gamma_p w^p + \gamma_c w^c + \gamma_o w^o)`
mixing three distributions over the K candidates:

* position, :math:`w^p_r \propto e^{-r}`: the teacher's first choices matter most;
* confidence, :math:`w^c_r \propto e^{-d_r}` with :math:`d_r` the teacher's distance between its
  prediction and candidate r (``TeacherSignal.confidence``, (Q, K)): grounded items the teacher's
  output lies far from are unreliable;
* consistency, :math:`w^o_r \propto [c_r \in \text{the student's current top-K}]`: candidates the
  student already ranks high are the ones it can absorb.

Reference settings (istarryn/DLLM2Rec ``main.py``): K = 10, :math:`\gamma_p = 0.3`,
:math:`\gamma_c = 0.5`, :math:`\gamma_o = 0.1`, term weight λ = 0.8. Two differences from that code,
both deliberate and documented in ``docs/DLLM2REC.md``:

* the code adds its 0/1 consistency indicator *unnormalised* to the normalised position and
  confidence weights, so a row where 8 candidates agree gives consistency 0.8 of mass against
  0.8 for the other two together; here :math:`w^o` is normalised like the others
  (``consistency: share``), so the γ's are the shares they read as. ``consistency: indicator``
  is the code's form;
* the code's negative term is :math:`-\log\sigma(1 - s_j)`, a shifted logit; here it is the
  paper's :math:`-\log\sigma(-s_j)`.

A row whose mixed weights are all zero (only :math:`\gamma_o > 0` and no agreement) adds nothing.
The code also adds DROS's loss per candidate when the student trains with DROS; here the student's
own ``dros`` term is unchanged and the distillation term is the same for every student.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from recforge.distill.teacher import TeacherError, TeacherSignal
from recforge.errors import ConfigError
from recforge.objectives.outputs import POSITIONS, BatchOutputs, QueryPositions, TermContext
from recforge.objectives.term import Term, TermParams


class ImportanceRDParams(TermParams):
    k: Annotated[int, Field(gt=0, description="teacher candidates per prefix (K)")] = 10
    gamma_position: Annotated[
        float, Field(ge=0, allow_inf_nan=False, description="γ_p, share of exp(-r)")
    ] = 0.3
    gamma_confidence: Annotated[
        float, Field(ge=0, allow_inf_nan=False, description="γ_c, share of exp(-distance)")
    ] = 0.5
    gamma_consistency: Annotated[
        float, Field(ge=0, allow_inf_nan=False, description="γ_o, share of student-teacher agreement")
    ] = 0.1
    consistency: Annotated[
        Literal["share", "indicator"],
        Field(description="share: agreement normalised over K; indicator: the reference code's raw 0/1"),
    ] = "share"

    @model_validator(mode="after")
    def _some_weight(self) -> ImportanceRDParams:
        if self.gamma_position == self.gamma_confidence == self.gamma_consistency == 0:
            raise ValueError("gamma_position, gamma_confidence and gamma_consistency are all 0: no weights")
        return self


def importance_weights(
    distances: Tensor | None,
    agreement: Tensor | None,
    params: ImportanceRDParams,
) -> Tensor:
    """(N, K) weights of the module docstring from the teacher's (N, K) ``distances`` (None when
    γ_c = 0) and the (N, K) boolean ``agreement`` with the student's top-K (None when γ_o = 0)."""
    shape = distances.shape if distances is not None else agreement.shape  # type: ignore[union-attr]
    device = distances.device if distances is not None else agreement.device  # type: ignore[union-attr]
    ranks = torch.arange(1, shape[1] + 1, dtype=torch.float32, device=device)
    mixed = params.gamma_position * torch.softmax(-ranks, 0).expand(shape)
    if params.gamma_confidence > 0:
        assert distances is not None
        mixed = mixed + params.gamma_confidence * torch.softmax(-distances.float(), 1)
    if params.gamma_consistency > 0:
        assert agreement is not None
        consistent = agreement.float()
        if params.consistency == "share":
            consistent = consistent / consistent.sum(1, keepdim=True).clamp_min(1)
        mixed = mixed + params.gamma_consistency * consistent
    total = mixed.sum(1, keepdim=True)
    return torch.where(total > 0, mixed / total.clamp_min(torch.finfo(mixed.dtype).tiny), 0.0)


def ranking_distillation_loss(candidates: Tensor, negatives: Tensor, weights: Tensor) -> Tensor:
    """Per-row loss of the module docstring: candidate scores (N, K), one negative score (N,),
    weights (N, K) -> (N,). ``softplus(-x) = -log σ(x)``, finite for any score."""
    return (weights * F.softplus(-candidates)).sum(1) + weights.sum(1) * F.softplus(negatives)


class PositionRows:
    """Maps (user, step) of a training target to its row of a position TeacherSignal.

    The teacher must hold exactly one row per training prefix: steps 1..n_u - 1 for a user with n_u
    training items (what ``recforge teacher export`` and ``teacher import-bigrec`` write). Rows are
    sorted by (user, step) once; a lookup is then ``sorted_rows[first[user] + step - 1]``.
    """

    def __init__(self, teacher: TeacherSignal, train_counts: np.ndarray, *, where: str) -> None:
        if teacher.queries != "positions" or teacher.query_users is None or teacher.query_steps is None:
            raise ConfigError(
                f"{where}: the teacher's queries are {teacher.queries}; this term reads one list per "
                "training prefix (export a sequential teacher with --queries positions)"
            )
        users = teacher.query_users.long().numpy()
        steps = teacher.query_steps.long().numpy()
        expected = np.maximum(np.asarray(train_counts, dtype=np.int64) - 1, 0)
        if len(users) and (users.min() < 0 or users.max() >= len(expected)):
            raise TeacherError(f"{where}: the teacher names user {int(users.max())}, outside the split")
        order = np.lexsort((steps, users))
        per_user = np.bincount(users, minlength=len(expected))
        first = np.cumsum(per_user) - per_user
        rank_in_user = np.arange(len(order)) - first[users[order]]
        contiguous = steps[order] == rank_in_user + 1
        if not np.array_equal(per_user, expected) or not contiguous.all():
            differs = np.flatnonzero(per_user != expected)
            user = int(differs[0]) if len(differs) else int(users[order][~contiguous][0])
            raise TeacherError(
                f"{where}: the teacher does not hold one row per training prefix: user {user} has "
                f"{int(per_user[user])} rows for {int(expected[user])} prefixes (steps 1..n-1); "
                "export it from a run on the student's split"
            )
        self.sorted_rows = torch.from_numpy(order)
        self.first = torch.from_numpy(first)

    def to(self, device: torch.device) -> PositionRows:
        self.sorted_rows, self.first = self.sorted_rows.to(device), self.first.to(device)
        return self

    def __call__(self, users: Tensor, steps: Tensor) -> Tensor:
        return self.sorted_rows[self.first[users] + steps - 1]


class ImportanceRD(Term[ImportanceRDParams]):
    """DLLM2Rec's importance-aware ranking distillation over per-prefix teacher lists."""

    needs = frozenset({"queries", "items", "negative_ids", POSITIONS})
    teacher_needs = frozenset({"top_items"})
    Params = ImportanceRDParams
    summary = "DLLM2Rec importance-aware ranking distillation (position, confidence, consistency)"

    @classmethod
    def teacher_k(cls, params: TermParams) -> int:
        assert isinstance(params, ImportanceRDParams)
        return params.k

    def __init__(self, params: ImportanceRDParams, context: TermContext) -> None:
        super().__init__(params, context)
        where = "objective.terms.importance_rd"
        teacher = context.teacher
        if teacher is None or context.train_lengths is None:
            raise ConfigError(f"{where}: needs objective.teacher and a sequential task")
        self.rows = PositionRows(teacher, context.train_lengths, where=where).to(context.device)
        self.top_items: Tensor
        self.distances: Tensor | None
        self.register_buffer("top_items", teacher.top_items[:, : params.k].long(), persistent=False)
        distances = None
        if params.gamma_confidence > 0:
            if teacher.confidence is None or teacher.confidence.dim() != 2:
                raise TeacherError(
                    f"{where}: gamma_confidence > 0 needs the teacher's distance per listed item "
                    "(confidence of shape (Q, K)); a per-query value is the same for every candidate "
                    "and cancels in w_c's normalisation (set gamma_confidence: 0 to go without)"
                )
            distances = teacher.confidence[:, : params.k].float()
        self.register_buffer("distances", distances, persistent=False)
        self.to(context.device)

    def forward(self, outputs: BatchOutputs) -> Tensor:
        queries, items, negative_ids = outputs["queries"], outputs["items"], outputs["negative_ids"]
        if negative_ids.shape[-1] == 0:
            raise ConfigError("objective.terms.importance_rd: needs train.num_negatives >= 1")
        positions = outputs.view(POSITIONS, QueryPositions)
        rows = self.rows(positions.users, positions.steps)
        candidates = self.top_items[rows]  # (N, K)
        negatives = negative_ids.reshape(len(queries), -1)[:, 0]
        # the K + 1 scores with gradient from their own rows: a gather from the full (N, I) matrix
        # would backpropagate through all of it (a zero-filled (N, I) gradient per step)
        candidate_scores = torch.einsum("nd,nkd->nk", queries, items[candidates])
        negative_scores = (queries * items[negatives]).sum(1)
        agreement = None
        if self.params.gamma_consistency > 0:  # the student's own top-K, from the batch's shared scores
            student_top = outputs.item_scores().detach().topk(candidates.shape[1], dim=1).indices
            agreement = (candidates.unsqueeze(2) == student_top.unsqueeze(1)).any(2)
        distances = None if self.distances is None else self.distances[rows]
        weights = importance_weights(distances, agreement, self.params)
        return ranking_distillation_loss(candidate_scores, negative_scores, weights).mean()


__all__ = [
    "ImportanceRD",
    "ImportanceRDParams",
    "PositionRows",
    "importance_weights",
    "ranking_distillation_loss",
]
