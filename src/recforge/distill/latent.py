r"""Latent distillation: the student's representations must carry the teacher's.

**DE** (distillation experts; Kang et al., "DE-RRD", CIKM 2020). M experts map a student
representation s (dim :math:`d_s`) into the teacher's space (dim :math:`d_t`), each a small MLP
:math:`E_m(s) = W_2\,\mathrm{ReLU}(W_1 s)` with hidden width :math:`\lfloor (d_s + d_t)/2 \rfloor`
(:math:`\lfloor d_s/2 \rfloor` when the dimensions are equal). A selection network reads the
*teacher's* representation t and picks one expert per entity through a Gumbel-softmax whose
temperature is annealed from ``start_temperature`` to ``end_temperature`` over ``anneal_epochs``
(:math:`T_e = T_0 (T_{end}/T_0)^{e/E}`), so selection is soft early and one-hot late:

.. math::  \alpha = \mathrm{softmax}\big((\log(\mathrm{softmax}(W_g t) + 10^{-10}) + g)/T_e\big),
           \qquad \ell = \big\lVert t - \textstyle\sum_m \alpha_m E_m(s) \big\rVert_2^2

summed over the batch's distinct users, plus half the sum over its distinct positive items and
half over its distinct negative items (the reference's weighting), users and items with experts of
their own. The student side is the rows the task scores (for MF its free tables, for LightGCN its
propagated ones). The reference sums next to a BPR loss summed over the batch; here the sum is
divided by the batch size B, so its weight λ (0.01) carries over. Experts and selection networks
are the term's parameters: trained and checkpointed with the model, dropped at inference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from recforge.distill.teacher import teacher_tables
from recforge.objectives.contrastive import first_occurrences
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.term import Term, TermParams


class DEParams(TermParams):
    experts: Annotated[int, Field(gt=0, description="experts per side (M)")] = 30
    start_temperature: Annotated[
        float, Field(gt=0, allow_inf_nan=False, description="Gumbel T at epoch 0")
    ] = 1.0
    end_temperature: Annotated[float, Field(gt=0, allow_inf_nan=False, description="Gumbel T at the end")] = (
        1e-10
    )
    anneal_epochs: Annotated[int, Field(gt=0, description="epochs over which T is annealed (E)")] = 1000


class Experts(nn.Module):
    """M expert MLPs from the student's space to the teacher's, and the selection network on the
    teacher's representation that weighs them."""

    def __init__(self, student_dim: int, teacher_dim: int, count: int) -> None:
        super().__init__()
        hidden = student_dim // 2 if student_dim == teacher_dim else (student_dim + teacher_dim) // 2
        self.count, self.teacher_dim = count, teacher_dim
        # all M experts as one batched pair of weights: one matmul each instead of M small ones
        self.hidden = nn.Parameter(torch.empty(count, student_dim, hidden))
        self.hidden_bias = nn.Parameter(torch.empty(count, 1, hidden))
        self.output = nn.Parameter(torch.empty(count, hidden, teacher_dim))
        self.output_bias = nn.Parameter(torch.empty(count, 1, teacher_dim))
        self.selection = nn.Linear(teacher_dim, count)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for weight, bias in ((self.hidden, self.hidden_bias), (self.output, self.output_bias)):
            bound = 1.0 / weight.shape[1] ** 0.5  # nn.Linear's default, per expert
            nn.init.uniform_(weight, -bound, bound)
            nn.init.uniform_(bias, -bound, bound)
        self.selection.reset_parameters()

    def forward(self, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
        """(N,) squared error of the selected experts' reconstruction of ``teacher`` (N, d_t)
        from ``student`` (N, d_s)."""
        count, student_dim, width = self.hidden.shape
        # every expert's hidden layer in one GEMM: (N, d_s) @ (d_s, M·h)
        hidden = student @ self.hidden.transpose(0, 1).reshape(student_dim, count * width)
        hidden = torch.relu(hidden + self.hidden_bias.reshape(1, count * width))
        if count == 1:
            weights = hidden.new_ones(len(student), 1)
        else:
            probabilities = F.softmax(self.selection(teacher), dim=1)
            uniform = torch.rand_like(probabilities).clamp_(1e-10, 1 - 1e-7)
            gumbel = -torch.log(-torch.log(uniform))
            weights = F.softmax(((probabilities + 1e-10).log() + gumbel) / temperature, dim=1)  # (N, M)
        # Σ_m α_m (h_m W_m + b_m) = [α_1 h_1, …, α_M h_M] @ [W_1; …; W_M] + α @ B: the mixture as one
        # GEMM, never the (M, N, d_t) stack of every expert's output
        scaled = (hidden.view(len(student), count, width) * weights.unsqueeze(2)).view(len(student), -1)
        mixed = scaled @ self.output.reshape(count * width, -1) + weights @ self.output_bias.squeeze(1)
        return (teacher - mixed).pow(2).sum(1)

    def extra_repr(self) -> str:
        return f"experts={self.count}, student_dim={self.hidden.shape[1]}, teacher_dim={self.teacher_dim}"


class DE(Term[DEParams]):
    """Distillation experts (module docstring)."""

    needs = frozenset({"query_ids", "queries", "positive_ids", "positives", "negative_ids", "negatives"})
    teacher_needs = frozenset({"query_embeddings", "item_embeddings"})
    Params = DEParams
    summary = "DE-RRD distillation experts: selected MLPs map student rows onto the teacher's embeddings"
    teacher_users: Tensor
    teacher_items: Tensor

    def __init__(self, params: DEParams, context: TermContext) -> None:
        super().__init__(params, context)
        users, items = teacher_tables(context, "de")
        self.register_buffer("teacher_users", users, persistent=False)
        self.register_buffer("teacher_items", items, persistent=False)
        self.user_experts = Experts(context.dim, users.shape[1], params.experts)
        self.item_experts = Experts(context.dim, items.shape[1], params.experts)
        self.temperature = params.start_temperature

    def on_epoch(self, epoch: int) -> None:
        params = self.params
        progress = min(epoch / params.anneal_epochs, 1.0)
        self.temperature = (
            params.start_temperature * (params.end_temperature / params.start_temperature) ** progress
        )

    def forward(self, outputs: BatchOutputs) -> Tensor:
        def loss(experts: Experts, table: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
            return lambda student, ids: experts(student, table[ids], self.temperature)

        return side_losses(
            outputs, loss(self.user_experts, self.teacher_users), loss(self.item_experts, self.teacher_items)
        )


class PHRParams(TermParams):
    hidden: Annotated[int, Field(gt=0, description="width of the projection's hidden layer")] = 64


class PersonalisedProjection(nn.Module):
    r"""One projection from the student's space to the teacher's, whose features the entity's
    teacher representation rescales (FiLM without the shift):
    :math:`\hat t = W_2\,[\mathrm{ReLU}(W_1 s) \odot (1 + \gamma(t))] + b`, with :math:`W_1`
    bias-free and :math:`\gamma` linear in t, initialised to zero (so training starts from one
    shared projection, DE with a single expert).

    Why no shift and no bias in :math:`W_1`: any path by which t reaches :math:`\hat t` without
    passing through features of s lets the projection copy the target from the target. A first
    design had one (:math:`+\beta(t)`, FiLM's shift): it learnt to reconstruct t from t, the
    student's embeddings got almost no gradient, and on CiteULike the student's valid NDCG@10
    followed the student trained alone to within 0.001 at every epoch. Now a student row of zeros
    projects to b for every entity, whatever its teacher row."""

    def __init__(self, student_dim: int, teacher_dim: int, hidden: int) -> None:
        super().__init__()
        self.encode = nn.Linear(student_dim, hidden, bias=False)
        self.scale = nn.Linear(teacher_dim, hidden)
        self.decode = nn.Linear(hidden, teacher_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.encode.reset_parameters()
        self.decode.reset_parameters()
        nn.init.zeros_(self.scale.weight)
        nn.init.zeros_(self.scale.bias)

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """(N,) squared error of the personalised projection of ``student`` against ``teacher``."""
        hidden = torch.relu(self.encode(student)) * (1 + self.scale(teacher))
        return (teacher - self.decode(hidden)).pow(2).sum(1)


class PHR(Term[PHRParams]):
    r"""Personalised hint regression (after Kang et al., KBS 2022, whose abstract describes a
    personalisation network that builds each entity's projection from its teacher representation,
    generalising DE's discrete experts; the paper's body is not public, so this is our design).

    DE picks one of M fixed experts per entity; PHR gives every entity its own projection, a
    shared MLP whose hidden features the entity's teacher embedding rescales (FiLM's scale). That is
    continuous where DE is discrete, costs one d_t×h map instead of M experts, needs no annealed
    Gumbel temperature, and starts as a one-expert DE whose hidden layer has no bias (the
    modulation is initialised to zero). The loss and its weighting (distinct users, half of
    distinct positive and of negative items, divided by the batch size) are DE's."""

    needs = DE.needs
    teacher_needs = DE.teacher_needs
    Params = PHRParams
    summary = "PHR personalised hint regression: a projection rescaled by each entity's teacher row"
    teacher_users: Tensor
    teacher_items: Tensor

    def __init__(self, params: PHRParams, context: TermContext) -> None:
        super().__init__(params, context)
        users, items = teacher_tables(context, "phr")
        self.register_buffer("teacher_users", users, persistent=False)
        self.register_buffer("teacher_items", items, persistent=False)
        self.user_projection = PersonalisedProjection(context.dim, users.shape[1], params.hidden)
        self.item_projection = PersonalisedProjection(context.dim, items.shape[1], params.hidden)

    def forward(self, outputs: BatchOutputs) -> Tensor:
        def loss(projection: PersonalisedProjection, table: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
            return lambda student, ids: projection(student, table[ids])

        return side_losses(
            outputs,
            loss(self.user_projection, self.teacher_users),
            loss(self.item_projection, self.teacher_items),
        )


def side_losses(
    outputs: BatchOutputs,
    user_loss: Callable[[Tensor, Tensor], Tensor],
    item_loss: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """DE's weighting of per-entity losses ``loss(student rows, ids) -> (N,)``: the batch's distinct
    users, plus half of its distinct positive and of its distinct negative items, over the batch size."""

    def distinct(ids: Tensor, rows: Tensor, loss: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
        ids, rows = ids.reshape(-1), rows.reshape(-1, rows.shape[-1])
        first = first_occurrences(ids)
        return loss(rows[first], ids[first]).sum()

    users = distinct(outputs["query_ids"], outputs["queries"], user_loss)
    positives = distinct(outputs["positive_ids"], outputs["positives"], item_loss)
    negatives = distinct(outputs["negative_ids"], outputs["negatives"], item_loss)
    return (users + 0.5 * (positives + negatives)) / len(outputs["query_ids"])
