"""Next-item terms that score a query against the whole item table (sequential encoders, and any
task that provides the item table)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import Tensor

from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.sequential import dros, dros_item_weights, next_item_cross_entropy
from recforge.objectives.term import Term, TermParams


class CrossEntropy(Term[TermParams]):
    """:func:`~recforge.objectives.sequential.next_item_cross_entropy`: softmax over every item."""

    needs = frozenset({"queries", "positive_ids", "items"})
    summary = "softmax cross-entropy over the whole item table"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        return next_item_cross_entropy(outputs.item_scores(), outputs["positive_ids"])


class DROSParams(TermParams):
    beta: Annotated[float, Field(gt=0, allow_inf_nan=False, description="robust radius β")] = 1.0
    exponent: Annotated[
        float, Field(ge=0, allow_inf_nan=False, description="γ of the popularity weights")
    ] = 0.05


class DROS(Term[DROSParams]):
    """:func:`~recforge.objectives.sequential.dros` with the popularity weights of the task's
    training positives (:func:`~recforge.objectives.sequential.dros_item_weights`), computed once."""

    needs = frozenset({"queries", "positive_ids", "items"})
    Params = DROSParams
    summary = "DROS distributionally robust loss, weighted by training popularity"
    item_weights: Tensor

    def __init__(self, params: DROSParams, context: TermContext) -> None:
        super().__init__(params, context)
        weights = dros_item_weights(context.positive_counts.to(context.device), exponent=params.exponent)
        # derived from the data at every start: not state to save
        self.register_buffer("item_weights", weights, persistent=False)

    def forward(self, outputs: BatchOutputs) -> Tensor:
        return dros(outputs.item_scores(), outputs["positive_ids"], self.item_weights, beta=self.params.beta)


__all__ = ["DROS", "CrossEntropy", "DROSParams"]
