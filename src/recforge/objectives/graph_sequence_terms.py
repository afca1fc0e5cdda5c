r"""GSAU's named loss terms over one joint batch: graph (user, item) pairs and sequence positions.

GSAU's objective is :math:`L = L_{GA} + L_{SA} + \gamma (L_{GU} + L_{SU})` (Cao et al. 2024, eq. 5);
each part is a term, so ``objective.terms: {graph_alignment: {weight: 1}, ce: {weight: 1},
graph_uniformity: {weight: γ}, sequence_uniformity: {weight: γ}}`` is the paper's loss and any
ablation is a term left out.

* ``graph_alignment`` (:math:`L_{GA}`): DirectAU alignment of the LightGCN user and item of each
  training pair.
* ``graph_uniformity`` (:math:`L_{GU}`): uniformity of the batch's distinct users plus that of its
  distinct items (the authors' code sums the two, DirectAU averages them).
* ``ce`` / ``alignment`` (:math:`L_{SA}`): the sequence state against its next item, either by the
  recommendation loss (full-softmax cross-entropy; the paper's best variant, "GSAU (rec)") or by
  alignment on the sphere. These are the generic terms of :mod:`recforge.objectives.sequence_terms`
  and :mod:`recforge.objectives.batch_terms`: GSAU's task fills the same fields as SASRec's.
* ``sequence_uniformity`` (:math:`L_{SU}`): the sequence state is a "hyper-item": uniformity of the
  states, of the distinct target items, and between each state and another position's target
  (its negative), so sequences are pushed away from items that are not theirs.

``ce`` scores raw states, as for SASRec, so GSAU and SASRec differ only by the graph and the
uniformity terms. (The authors' code L2-normalises the state before this softmax,
which bounds every logit by the item's norm; we keep SASRec's loss as it is.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from recforge.objectives.contrastive import alignment, first_occurrences, paired_uniformity, uniformity
from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.term import AlignmentParams, Term, UniformityParams

GRAPH_PAIRS = "graph_pairs"
"""The view name under which GSAU's task puts its :class:`GraphPairs`."""


@dataclass(frozen=True)
class GraphPairs:
    """The graph half of a joint batch: the LightGCN rows ``users``/``items`` (P, d) of P training
    pairs, with their ids ``user_ids``/``item_ids`` (P,)."""

    users: Tensor
    items: Tensor
    user_ids: Tensor
    item_ids: Tensor


def _distinct_uniformity(rows: Tensor, ids: Tensor, t: float) -> Tensor:
    distinct = rows[first_occurrences(ids)]
    if len(distinct) < 2:  # a batch with one distinct row has no pairs: no gradient, same graph
        return rows.sum() * 0.0
    return uniformity(distinct, t=t)


class GraphAlignment(Term[AlignmentParams]):
    """:math:`L_{GA}`: DirectAU alignment of the LightGCN user and item of each training pair."""

    needs = frozenset({GRAPH_PAIRS})
    Params = AlignmentParams
    summary = "GSAU L_GA: alignment of the LightGCN user and item of each training pair"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        pairs = outputs.view(GRAPH_PAIRS, GraphPairs)
        return alignment(pairs.users, pairs.items, alpha=self.params.alpha)


class GraphUniformity(Term[UniformityParams]):
    """:math:`L_{GU}`: uniformity of the batch's distinct users plus that of its distinct items."""

    needs = frozenset({GRAPH_PAIRS})
    Params = UniformityParams
    summary = "GSAU L_GU: uniformity of the pairs' distinct users plus distinct items"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        pairs, t = outputs.view(GRAPH_PAIRS, GraphPairs), self.params.t
        return _distinct_uniformity(pairs.users, pairs.user_ids, t) + _distinct_uniformity(
            pairs.items, pairs.item_ids, t
        )


class SequenceUniformity(Term[UniformityParams]):
    """:math:`L_{SU}`: uniformity of the sequence states, of the distinct target items, and between
    each state and another position's target (drawn with :func:`other_rows` from torch's RNG)."""

    needs = frozenset({"queries", "positive_ids", "items"})
    Params = UniformityParams
    summary = "GSAU L_SU: uniformity of states, of distinct targets, and of states vs others' targets"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        hidden, target_ids, t = outputs["queries"], outputs["positive_ids"], self.params.t
        targets = outputs["items"][target_ids]
        if len(targets) < 2:
            return hidden.sum() * 0.0
        return (
            uniformity(hidden, t=t)
            + _distinct_uniformity(targets, target_ids, t)
            + paired_uniformity(hidden, targets[other_rows(len(targets), device=targets.device)], t=t)
        )


def other_rows(count: int, *, device: torch.device | None = None) -> Tensor:
    """A random derangement of ``0..count-1``: row b is paired with a row that is never b.

    Rows follow one random cycle (the permutation's order, shifted by one), so no rejection loop is
    needed and every row is some other row's partner exactly once. Draws from torch's global RNG.
    """
    if count < 2:
        raise ValueError(f"other_rows: a derangement needs at least 2 rows, got {count}")
    order = torch.randperm(count, device=device)
    partner = torch.empty_like(order)
    partner[order] = order.roll(1)
    return partner
