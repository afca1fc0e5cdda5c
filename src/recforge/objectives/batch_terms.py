"""Recommendation terms over query rows and their positive and negative items.

They read the generic fields of :class:`~recforge.objectives.outputs.BatchOutputs`, so they apply
to any task that fills them: triplet batches of graph/CF encoders (queries are users), and, for
the terms that need no sampled negatives, the sequence positions of sequential encoders.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from recforge.objectives.contrastive import alignment, first_occurrences, uniformity
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.ranking import bpr, in_batch_softmax, sampled_softmax, shared_negatives_softmax
from recforge.objectives.regularization import l2_ego
from recforge.objectives.sequential import next_item_bce
from recforge.objectives.term import AlignmentParams, TemperatureParams, Term, TermParams, UniformityParams


class BPR(Term[TermParams]):
    """:func:`~recforge.objectives.ranking.bpr` of each query against its positive and negatives."""

    needs = frozenset({"queries", "positives", "negatives"})
    summary = "Bayesian personalised ranking, mean over the sampled negatives"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        return bpr(outputs["queries"], outputs["positives"], outputs["negatives"])


class SampledSoftmax(Term[TemperatureParams]):
    """:func:`~recforge.objectives.ranking.sampled_softmax` over the positive and own negatives."""

    needs = frozenset({"queries", "positives", "negatives"})
    Params = TemperatureParams
    summary = "softmax over the positive and the row's own sampled negatives"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        return sampled_softmax(
            outputs["queries"],
            outputs["positives"],
            outputs["negatives"],
            temperature=self.params.temperature,
        )


class SharedSoftmax(Term[TemperatureParams]):
    """:func:`~recforge.objectives.ranking.shared_negatives_softmax`: every row against the whole
    batch's negatives pooled, a row's own positive masked out of the pool."""

    needs = frozenset({"queries", "positives", "negatives", "positive_ids", "negative_ids"})
    Params = TemperatureParams
    summary = "softmax over the positive and the batch's pooled negatives"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        negatives = outputs["negatives"]
        return shared_negatives_softmax(
            outputs["queries"],
            outputs["positives"],
            negatives.reshape(-1, negatives.shape[-1]),
            temperature=self.params.temperature,
            positive_ids=outputs["positive_ids"],
            negative_ids=outputs["negative_ids"].reshape(-1),
        )


class InBatchSoftmaxParams(TemperatureParams):
    log_q_correction: Annotated[
        bool, Field(description="subtract log q (an item's share of the training positives) from its logit")
    ] = False


class InBatchSoftmax(Term[InBatchSoftmaxParams]):
    """:func:`~recforge.objectives.ranking.in_batch_softmax`: the other rows' positives are the
    negatives (copies of a row's own item excluded); with ``log_q_correction`` each candidate's
    logit is lowered by the log of its sampling probability, its share of the task's positives."""

    needs = frozenset({"queries", "positives", "positive_ids"})
    Params = InBatchSoftmaxParams
    summary = "softmax against the other rows' positives (optional log-Q correction)"

    def __init__(self, params: InBatchSoftmaxParams, context: TermContext) -> None:
        super().__init__(params, context)
        counts = context.positive_counts.float()
        self.log_q: Tensor
        # an item never a positive is never a candidate either: its value is never read
        self.register_buffer(
            "log_q", torch.log(counts.clamp_min(1) / counts.sum().clamp_min(1)), persistent=False
        )

    def forward(self, outputs: BatchOutputs) -> Tensor:
        positive_ids = outputs["positive_ids"]
        return in_batch_softmax(
            outputs["queries"],
            outputs["positives"],
            temperature=self.params.temperature,
            item_ids=positive_ids,
            log_q=self.log_q[positive_ids] if self.params.log_q_correction else None,
        )


class BinaryCrossEntropy(Term[TermParams]):
    """:func:`~recforge.objectives.sequential.next_item_bce`: the positive scored as 1, each sampled
    negative as 0 (SASRec's original loss)."""

    needs = frozenset({"queries", "positives", "negatives"})
    summary = "sigmoid cross-entropy: positive as 1, each sampled negative as 0"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        return next_item_bce(outputs["queries"], outputs["positives"], outputs["negatives"])


class Alignment(Term[AlignmentParams]):
    """DirectAU alignment (:func:`~recforge.objectives.contrastive.alignment`) of each query and
    its positive."""

    needs = frozenset({"queries", "positives"})
    Params = AlignmentParams
    summary = "DirectAU alignment of query and positive on the sphere"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        return alignment(outputs["queries"], outputs["positives"], alpha=self.params.alpha)


class Uniformity(Term[UniformityParams]):
    """DirectAU uniformity: the mean of the uniformity of the batch's distinct queries and of its
    distinct positives.

    Each entity is counted once, as a repeated row would add zero-distance pairs that the loss can
    never push apart. A side with a single distinct row has no pairs (a tiny last batch): it is left
    out of the average."""

    needs = frozenset({"queries", "query_ids", "positives", "positive_ids"})
    Params = UniformityParams
    summary = "DirectAU uniformity of the distinct queries and distinct positives (mean)"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        queries = outputs["queries"]
        sides = [
            queries[first_occurrences(outputs["query_ids"])],
            outputs["positives"][first_occurrences(outputs["positive_ids"])],
        ]
        values = [uniformity(side, t=self.params.t) for side in sides if len(side) >= 2]
        if not values:
            return queries.sum() * 0.0  # keeps the graph (and device) without adding a gradient
        return torch.stack(values).mean()


class L2(Term[TermParams]):
    """:func:`~recforge.objectives.regularization.l2_ego` of the batch's layer-0 rows."""

    needs = frozenset({"ego"})
    summary = "half the squared norm of the batch's layer-0 rows, per query"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        query_ego = outputs["query_ego"]
        return l2_ego(query_ego, outputs["positive_ego"], outputs["negative_ego"], batch_size=len(query_ego))
