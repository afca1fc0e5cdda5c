r"""GSAU's named loss terms over one joint batch: graph (user, item) pairs and sequence positions.

GSAU's objective is :math:`L = L_{GA} + L_{SA} + \gamma (L_{GU} + L_{SU})` (Cao et al. 2024, eq. 5);
each part is a term here, so ``objective.weights: {graph_alignment: 1, sequence_ce: 1,
graph_uniformity: γ, sequence_uniformity: γ}`` is the paper's loss and any ablation is a weight.

* ``graph_alignment`` (:math:`L_{GA}`): DirectAU alignment of the LightGCN user and item of each
  training pair.
* ``graph_uniformity`` (:math:`L_{GU}`): uniformity of the batch's distinct users plus that of its
  distinct items (the authors' code sums the two, DirectAU averages them).
* ``sequence_ce`` / ``sequence_alignment`` (:math:`L_{SA}`): the sequence state against its next
  item, either by the recommendation loss (full-softmax cross-entropy; the paper's best variant,
  "GSAU (rec)") or by alignment on the sphere.
* ``sequence_uniformity`` (:math:`L_{SU}`): the sequence state is a "hyper-item": uniformity of the
  states, of the distinct target items, and between each state and another position's target
  (its negative), so sequences are pushed away from items that are not theirs.

``sequence_ce`` scores raw states, exactly as SASRec's ``ce`` term, so GSAU and SASRec differ only by
the graph and the uniformity terms. (The authors' code L2-normalises the state before this softmax,
which bounds every logit by the item's norm; we keep SASRec's loss as it is.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from recforge.objectives.contrastive import alignment, first_occurrences, paired_uniformity, uniformity
from recforge.objectives.sequential import next_item_cross_entropy


@dataclass(frozen=True)
class GraphSequenceOutputs:
    """One joint batch.

    ``graph_users``/``graph_items`` (P, d): the LightGCN rows of P training pairs, with their ids
    ``user_ids``/``item_ids`` (P,). ``hidden`` (N, d): sequence states at non-padding positions,
    ``targets`` (N,) their next items (0-based), ``items`` (I, d) the table states are scored against.
    """

    graph_users: Tensor
    graph_items: Tensor
    user_ids: Tensor
    item_ids: Tensor
    hidden: Tensor
    targets: Tensor
    items: Tensor


@dataclass(frozen=True)
class GraphSequenceTermParameters:
    alignment_alpha: float = 2.0
    uniformity_t: float = 2.0


def _distinct_uniformity(rows: Tensor, ids: Tensor, t: float) -> Tensor:
    distinct = rows[first_occurrences(ids)]
    if len(distinct) < 2:  # a batch with one distinct row has no pairs: no gradient, same graph
        return rows.sum() * 0.0
    return uniformity(distinct, t=t)


def _graph_uniformity(o: GraphSequenceOutputs, p: GraphSequenceTermParameters) -> Tensor:
    t = p.uniformity_t
    return _distinct_uniformity(o.graph_users, o.user_ids, t) + _distinct_uniformity(
        o.graph_items, o.item_ids, t
    )


def _sequence_uniformity(o: GraphSequenceOutputs, p: GraphSequenceTermParameters) -> Tensor:
    t = p.uniformity_t
    targets = o.items[o.targets]
    if len(targets) < 2:
        return o.hidden.sum() * 0.0
    return (
        uniformity(o.hidden, t=t)
        + _distinct_uniformity(targets, o.targets, t)
        + paired_uniformity(o.hidden, targets[other_rows(len(targets), device=targets.device)], t=t)
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


GRAPH_SEQUENCE_TERMS: dict[str, Callable[[GraphSequenceOutputs, GraphSequenceTermParameters], Tensor]] = {
    "graph_alignment": lambda o, p: alignment(o.graph_users, o.graph_items, alpha=p.alignment_alpha),
    "graph_uniformity": _graph_uniformity,
    "sequence_ce": lambda o, p: next_item_cross_entropy(o.hidden, o.targets, o.items),
    "sequence_alignment": lambda o, p: alignment(o.hidden, o.items[o.targets], alpha=p.alignment_alpha),
    "sequence_uniformity": _sequence_uniformity,
}
"""Every GSAU term a config may weight, by name."""
