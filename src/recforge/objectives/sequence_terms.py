"""Named next-item loss terms over one batch of sequence positions, for ``objective.weights``.

The counterpart of :mod:`recforge.objectives.batch_terms` for sequential encoders: each term maps
a :class:`NextItemOutputs` (the states at the batch's non-padding positions, their targets, sampled
negatives and the item table) to a scalar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from recforge.objectives.sequential import dros, next_item_bce, next_item_cross_entropy


@dataclass(frozen=True)
class NextItemOutputs:
    """``hidden`` (N, d) states at non-padding positions, ``targets`` (N,) 0-based next items,
    ``negatives`` (N, k) 0-based sampled items (k may be 0), ``items`` (I, d) the item table and
    ``item_weights`` (I,) DROS's popularity weights (None when DROS is not weighted)."""

    hidden: Tensor
    targets: Tensor
    negatives: Tensor
    items: Tensor
    item_weights: Tensor | None


@dataclass(frozen=True)
class SequenceTermParameters:
    dros_beta: float = 1.0


SEQUENCE_TERMS: dict[str, Callable[[NextItemOutputs, SequenceTermParameters], Tensor]] = {
    "ce": lambda o, p: next_item_cross_entropy(o.hidden, o.targets, o.items),
    "bce": lambda o, p: next_item_bce(o.hidden, o.items[o.targets], o.items[o.negatives]),
    "dros": lambda o, p: dros(o.hidden, o.targets, o.items, _weights(o), beta=p.dros_beta),
}
"""Every next-item term a config may weight, by name."""


def _weights(outputs: NextItemOutputs) -> Tensor:
    if outputs.item_weights is None:
        raise ValueError("the dros term needs item_weights (the task computes them when dros is weighted)")
    return outputs.item_weights
