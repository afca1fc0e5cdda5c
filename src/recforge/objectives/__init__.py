"""Loss terms: plain functions of embeddings returning scalars, combined by ``weighted_sum``."""

from recforge.objectives.combine import weighted_sum
from recforge.objectives.contrastive import alignment, uniformity
from recforge.objectives.ranking import bpr, in_batch_softmax, sampled_softmax
from recforge.objectives.regularization import l2_ego

__all__ = ["alignment", "bpr", "in_batch_softmax", "l2_ego", "sampled_softmax", "uniformity", "weighted_sum"]
