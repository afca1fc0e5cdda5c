r"""RGT's self-supervised terms over one batch, next to the recommendation terms of
:mod:`recforge.objectives.batch_terms` (``bpr``, ``l2``, ...), so the paper's total loss

.. math::  L = L_{BPR} + \lambda_1 L_{rec} + \lambda_2 L_{CIR} + \lambda_3 L_{distill}
           + \lambda_4 L_{con} + L_2

is ``objective.weights: {bpr: 1, reconstruction: λ1, cir: λ2, distill: λ3, contrast: λ4, l2: ...}``
and each ablation is one weight left out.

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
  over the views.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from recforge.objectives.batch_terms import TERMS, TermParameters, TripletEmbeddings
from recforge.objectives.ranking import in_batch_softmax


@dataclass(frozen=True)
class RationaleOutputs:
    """One RGT batch.

    ``triplet``: the recommendation batch (final embeddings, ego rows, ids). ``masked_users`` /
    ``masked_items`` (M, d): decoded embeddings of M masked edges, ``masked_item_ids`` (M,).
    ``rationale`` / ``complement`` / ``final`` (N, d): the two graph views and the final embedding
    of the batch's N distinct nodes. ``students`` / ``teachers``: view name -> (N, d) prediction
    and target (targets are detached by the term, not by the caller).
    """

    triplet: TripletEmbeddings
    masked_users: Tensor | None
    masked_items: Tensor | None
    masked_item_ids: Tensor | None
    rationale: Tensor
    complement: Tensor
    final: Tensor
    students: dict[str, Tensor]
    teachers: dict[str, Tensor]


def reconstruction(outputs: RationaleOutputs, params: TermParameters) -> Tensor:
    if outputs.masked_users is None or outputs.masked_items is None:
        raise ValueError("the reconstruction term needs masked edges: set model.masked_autoencoding: true")
    # raw dot products, as the model is scored: GFormer's reconstruction is the softmax of u·i
    return in_batch_softmax(
        outputs.masked_users, outputs.masked_items, temperature=1.0, item_ids=outputs.masked_item_ids
    )


def contrast(outputs: RationaleOutputs, params: TermParameters) -> Tensor:
    return in_batch_softmax(
        F.normalize(outputs.rationale, dim=-1),
        F.normalize(outputs.final, dim=-1),
        temperature=params.temperature,
    )


def independence(outputs: RationaleOutputs, params: TermParameters) -> Tensor:
    return F.cosine_similarity(outputs.rationale, outputs.complement, dim=-1).square().mean()


def distillation(outputs: RationaleOutputs, params: TermParameters) -> Tensor:
    losses = [
        F.mse_loss(outputs.students[view], outputs.teachers[view].detach()) for view in outputs.students
    ]
    return torch.stack(losses).mean()


RATIONALE_TERMS: dict[str, Callable[[RationaleOutputs, TermParameters], Tensor]] = {
    "reconstruction": reconstruction,
    "contrast": contrast,
    "cir": independence,
    "distill": distillation,
}
"""RGT's own terms, by name; RGT also takes every term of :data:`TERMS`."""


def compute_rationale_terms(
    names: list[str] | tuple[str, ...], outputs: RationaleOutputs, params: TermParameters
) -> dict[str, Tensor]:
    return {
        name: RATIONALE_TERMS[name](outputs, params)
        if name in RATIONALE_TERMS
        else TERMS[name](outputs.triplet, params)
        for name in names
    }
