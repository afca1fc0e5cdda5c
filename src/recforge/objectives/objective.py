"""The objective: the configured terms as one module, so terms with parameters train with the model.

.. math::  L = \\sum_k w_k \\cdot \\text{term}_k(\\text{outputs})

The trainer optimises ``model.parameters()`` and ``objective.parameters()`` together, saves both in
every checkpoint and restores both on resume. A step is ``loss, parts = objective(task.outputs(batch))``.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from recforge.objectives.combine import weighted_sum
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.registry import TERMS
from recforge.objectives.term import TermParams


def needs_of(terms: Mapping[str, TermParams]) -> frozenset[str]:
    """Every output name the configured terms read (known before anything is built)."""
    return frozenset().union(*(TERMS[name].needs for name in terms))


class Objective(nn.Module):
    """The weighted sum of named terms, in the config's order.

    Args:
        terms: term name -> its validated settings (``objective.terms`` of the config).
        context: what the terms may know of the training data (see :class:`TermContext`).
    """

    def __init__(self, terms: Mapping[str, TermParams], context: TermContext) -> None:
        super().__init__()
        if not terms:
            raise ValueError("Objective: at least one term is needed")
        self.weights = {name: params.weight for name, params in terms.items()}
        self.terms = nn.ModuleDict({name: TERMS[name](params, context) for name, params in terms.items()})

    @property
    def needs(self) -> frozenset[str]:
        return frozenset().union(*(TERMS[name].needs for name in self.terms))

    def on_epoch(self, epoch: int) -> None:
        for term in self.terms.values():
            term.on_epoch(epoch)  # type: ignore[operator]  # every entry is a Term

    def forward(self, outputs: BatchOutputs) -> tuple[Tensor, dict[str, Tensor]]:
        """``(total, parts)``: the total keeps the graph; parts are the unweighted terms, detached."""
        values = {name: term(outputs) for name, term in self.terms.items()}
        return weighted_sum(values, self.weights)
