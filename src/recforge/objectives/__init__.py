"""Loss terms: plain functions of embeddings returning scalars, combined by ``weighted_sum``."""

from recforge.objectives.combine import weighted_sum
from recforge.objectives.contrastive import alignment, uniformity
from recforge.objectives.ranking import bpr, in_batch_softmax, sampled_softmax, shared_negatives_softmax
from recforge.objectives.regularization import l2_ego
from recforge.objectives.sequential import dros, dros_item_weights, next_item_bce, next_item_cross_entropy

__all__ = [
    "alignment",
    "bpr",
    "dros",
    "dros_item_weights",
    "in_batch_softmax",
    "l2_ego",
    "next_item_bce",
    "next_item_cross_entropy",
    "sampled_softmax",
    "shared_negatives_softmax",
    "uniformity",
    "weighted_sum",
]
