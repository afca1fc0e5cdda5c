r"""RGT's self-supervised terms over one batch, next to the recommendation terms of
:mod:`recforge.objectives.batch_terms` (``bpr``, ``l2``, ...), so the paper's total loss

.. math::  L = L_{BPR} + \lambda_1 L_{rec} + \lambda_2 L_{CIR} + \lambda_3 L_{distill}
           + \lambda_4 L_{con} + L_2

is ``objective.terms: {bpr: {weight: 1}, reconstruction: {weight: λ1}, cir: {weight: λ2},
distill: {weight: λ3}, contrast: {weight: λ4}, l2: {weight: ...}}`` and each ablation is one term
left out.

* ``reconstruction`` (generative SSL): the decoder must recover the masked interactions. For a
  batch of masked (user, item) edges, a softmax over the batch's items of the dot products of the
  decoded embeddings (temperature 1, as GFormer's softmax over u·i): the masked item has to
  outscore the others.
* ``contrast`` (InfoNCE, temperature τ): each batch node's rationale-graph view against its scored
  (full-graph) embedding, the other batch nodes being negatives: the rationale carries the signal
  the model keeps.
* ``cir`` (contrastive independence regularisation): the rationale and complement views of the
  same node should be independent; measured as their mean squared cosine, 0 when orthogonal.
  (GFormer's code minimises the raw dot product, which is unbounded below; the squared cosine is
  bounded in [0, 1] and is minimal exactly at decorrelation.)
* ``distill`` (auto-distillation): light student heads on the ego embeddings predict the teacher's
  final embeddings and both views; mean squared error against the *detached* teacher, averaged
  over the views. The heads are this term's own parameters (one ``Linear(d, d)`` per view):
  trained, saved and resumed with the model, but not part of the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.ranking import in_batch_softmax
from recforge.objectives.term import TemperatureParams, Term, TermParams

MASKED_EDGES = "masked_edges"
RATIONALE_VIEWS = "rationale_views"
COMPLEMENT_VIEWS = "complement_views"
NODE_EGO = "node_ego"
"""View names of RGT's task: each is computed only when a weighted term needs it."""

STUDENT_VIEWS = ("final", "rationale", "complement")


@dataclass(frozen=True)
class MaskedEdges:
    """Decoded embeddings ``users``/``items`` (M, d) of M masked (user, item) edges, ``item_ids`` (M,)."""

    users: Tensor
    items: Tensor
    item_ids: Tensor


@dataclass(frozen=True)
class NodeRows:
    """One (N, d) row per node of the batch's N distinct self-supervised nodes (a graph view, or the
    ego table's rows)."""

    rows: Tensor


@dataclass(frozen=True)
class RationaleViews:
    """The batch's N distinct nodes in the scored full-graph encoding (``final``) and in the
    rationale graph's (``rationale``), (N, d) each."""

    final: Tensor
    rationale: Tensor


class Reconstruction(Term[TermParams]):
    """The decoder must recover the masked interactions: in-batch softmax of the decoded user
    against the decoded items (raw dot products at temperature 1, as GFormer's softmax of u·i)."""

    needs = frozenset({MASKED_EDGES})
    summary = "RGT: recover the masked edges (in-batch softmax of decoded user vs items)"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        masked = outputs.view(MASKED_EDGES, MaskedEdges)
        return in_batch_softmax(masked.users, masked.items, temperature=1.0, item_ids=masked.item_ids)


class Contrast(Term[TemperatureParams]):
    """InfoNCE of each node's rationale view against its final embedding, cosine / τ."""

    needs = frozenset({RATIONALE_VIEWS})
    Params = TemperatureParams
    summary = "RGT: InfoNCE of rationale view vs final embedding per node"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        views = outputs.view(RATIONALE_VIEWS, RationaleViews)
        return in_batch_softmax(
            F.normalize(views.rationale, dim=-1),
            F.normalize(views.final, dim=-1),
            temperature=self.params.temperature,
        )


class Independence(Term[TermParams]):
    """CIR: mean squared cosine between each node's rationale and complement views (0 when
    orthogonal, at most 1)."""

    needs = frozenset({RATIONALE_VIEWS, COMPLEMENT_VIEWS})
    summary = "RGT CIR: mean squared cosine of rationale vs complement view"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        rationale = outputs.view(RATIONALE_VIEWS, RationaleViews).rationale
        complement = outputs.view(COMPLEMENT_VIEWS, NodeRows).rows
        return F.cosine_similarity(rationale, complement, dim=-1).square().mean()


class Distillation(Term[TermParams]):
    r"""Auto-distillation: a student head per teacher view maps the nodes' ego rows to a guess of
    that view; :math:`\frac13 \sum_v \mathrm{MSE}(W_v e + b_v, \mathrm{sg}(t_v))` over the views
    final, rationale and complement (sg: the teacher is detached)."""

    needs = frozenset({RATIONALE_VIEWS, COMPLEMENT_VIEWS, NODE_EGO})
    summary = "RGT: student heads on ego rows regress the detached final/rationale/complement views"

    def __init__(self, params: TermParams, context: TermContext) -> None:
        super().__init__(params, context)
        self.students = nn.ModuleDict({view: nn.Linear(context.dim, context.dim) for view in STUDENT_VIEWS})

    def forward(self, outputs: BatchOutputs) -> Tensor:
        views = outputs.view(RATIONALE_VIEWS, RationaleViews)
        teachers = {
            "final": views.final,
            "rationale": views.rationale,
            "complement": outputs.view(COMPLEMENT_VIEWS, NodeRows).rows,
        }
        ego = outputs.view(NODE_EGO, NodeRows).rows
        losses = [F.mse_loss(self.students[view](ego), teachers[view].detach()) for view in STUDENT_VIEWS]
        return torch.stack(losses).mean()
