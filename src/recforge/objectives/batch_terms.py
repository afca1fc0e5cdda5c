"""Named recommendation loss terms over one training batch, so a config can weight any of them.

Each term maps a :class:`TripletEmbeddings` (the batch's users, positives and sampled negatives,
propagated and ego) to a scalar. ``objective.weights`` in the config picks terms by these names;
:func:`recforge.objectives.combine.weighted_sum` adds them up and returns the parts to log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from recforge.objectives.contrastive import alignment, first_occurrences, uniformity
from recforge.objectives.ranking import bpr, in_batch_softmax, sampled_softmax, shared_negatives_softmax
from recforge.objectives.regularization import l2_ego


@dataclass(frozen=True)
class TermParameters:
    """Hyperparameters some terms read (temperatures, DirectAU exponents)."""

    temperature: float = 0.2
    alignment_alpha: float = 2.0
    uniformity_t: float = 2.0


@dataclass(frozen=True)
class TripletEmbeddings:
    """One batch: ``user``/``positive`` (B, d), ``negatives`` (B, n, d); ``*_ego`` are the layer-0 rows
    the L2 term penalises; ``user_ids``/``positive_ids`` (B,) and ``negative_ids`` (B, n) let terms
    spot duplicates."""

    user: Tensor
    positive: Tensor
    negatives: Tensor
    user_ego: Tensor
    positive_ego: Tensor
    negatives_ego: Tensor
    user_ids: Tensor
    positive_ids: Tensor
    negative_ids: Tensor

    @classmethod
    def gather(
        cls,
        users_all: Tensor,
        items_all: Tensor,
        ego_users: Tensor,
        ego_items: Tensor,
        users: Tensor,
        positives: Tensor,
        negatives: Tensor,
    ) -> TripletEmbeddings:
        """The batch's rows of the propagated (``*_all``) and layer-0 (``ego_*``) tables."""
        user, positive, negative = users_all[users], items_all[positives], items_all[negatives]
        if ego_users is users_all and ego_items is items_all:  # MF: output and ego tables are one
            ego = (user, positive, negative)  # each gather's backward zero-fills a whole table
        else:
            ego = (ego_users[users], ego_items[positives], ego_items[negatives])
        return cls(user, positive, negative, *ego, users, positives, negatives)


def _uniformity_of_batch(batch: TripletEmbeddings, params: TermParameters) -> Tensor:
    # DirectAU averages the uniformity of users and of items; each entity is counted once, as a
    # repeated row would add zero-distance pairs that the loss can never push apart. A side with a
    # single distinct row has no pairs (a tiny last batch): it is left out of the average.
    sides = [
        batch.user[first_occurrences(batch.user_ids)],
        batch.positive[first_occurrences(batch.positive_ids)],
    ]
    values = [uniformity(side, t=params.uniformity_t) for side in sides if len(side) >= 2]
    if not values:
        return batch.user.sum() * 0.0  # keeps the graph (and device) without adding a gradient
    return torch.stack(values).mean()


TERMS: dict[str, Callable[[TripletEmbeddings, TermParameters], Tensor]] = {
    "bpr": lambda b, p: bpr(b.user, b.positive, b.negatives),
    "softmax": lambda b, p: sampled_softmax(b.user, b.positive, b.negatives, temperature=p.temperature),
    "shared_softmax": lambda b, p: shared_negatives_softmax(
        b.user,
        b.positive,
        b.negatives.reshape(-1, b.negatives.shape[-1]),
        temperature=p.temperature,
        positive_ids=b.positive_ids,
        negative_ids=b.negative_ids.reshape(-1),
    ),
    "in_batch_softmax": lambda b, p: in_batch_softmax(
        b.user, b.positive, temperature=p.temperature, item_ids=b.positive_ids
    ),
    "alignment": lambda b, p: alignment(b.user, b.positive, alpha=p.alignment_alpha),
    "uniformity": _uniformity_of_batch,
    "l2": lambda b, p: l2_ego(b.user_ego, b.positive_ego, b.negatives_ego, batch_size=len(b.user_ids)),
}
"""Every term a config may weight, by name."""


def compute_terms(
    names: list[str] | tuple[str, ...], batch: TripletEmbeddings, params: TermParameters
) -> dict[str, Tensor]:
    """Evaluate just the named terms (unweighted ones cost nothing)."""
    return {name: TERMS[name](batch, params) for name in names}
