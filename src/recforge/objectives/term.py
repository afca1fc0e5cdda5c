"""The contract of a loss term: what it reads, what it is configured by, what it returns.

A term is an ``nn.Module`` (so one with parameters, a projection head or DE's experts, is trained,
saved and resumed with the model) built from its typed settings and a :class:`TermContext`; its
``forward`` maps one :class:`BatchOutputs` to a scalar. ``needs`` names the outputs it reads (see
:mod:`recforge.objectives.outputs`), checked against the model's task when the config is loaded.

In a config each term is ``name: {weight: w, <its own parameters>}``; the objective's total is
:math:`\\sum_k w_k \\cdot \\text{term}_k`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Generic, TypeVar

from pydantic import Field
from torch import Tensor, nn

from recforge.config_base import Strict
from recforge.objectives.outputs import BatchOutputs, TermContext


class TermParams(Strict):
    """Settings every term has: its weight in the total (finite, >= 0)."""

    weight: Annotated[float, Field(ge=0, allow_inf_nan=False, description="w_k in Σ_k w_k·term_k")]


class TemperatureParams(TermParams):
    temperature: Annotated[float, Field(gt=0, allow_inf_nan=False, description="softmax temperature τ")] = 0.2


class AlignmentParams(TermParams):
    alpha: Annotated[float, Field(gt=0, allow_inf_nan=False, description="distance exponent α")] = 2.0


class UniformityParams(TermParams):
    t: Annotated[float, Field(gt=0, allow_inf_nan=False, description="Gaussian potential scale t")] = 2.0


P = TypeVar("P", bound=TermParams)


class Term(nn.Module, Generic[P]):
    """Base of every term: stores its settings; subclasses set ``needs`` and ``Params`` and
    implement ``forward``. Most terms own no tensors; those that do register them as usual."""

    needs: ClassVar[frozenset[str]]
    Params: ClassVar[type[TermParams]] = TermParams
    summary: ClassVar[str]
    """One line for the term table of ``recforge terms`` and the README."""
    teacher_needs: ClassVar[frozenset[str]] = frozenset()
    """TeacherSignal fields the term reads (``top_items``, ``item_embeddings``, ...); any makes
    ``objective.teacher`` required."""

    def __init__(self, params: P, context: TermContext) -> None:
        super().__init__()
        self.params = params

    @classmethod
    def teacher_k(cls, params: TermParams) -> int:
        """The longest teacher list the term reads with these settings (0: none)."""
        return 0

    def on_epoch(self, epoch: int) -> None:
        """Called before each training pass (per-epoch draws); most terms need nothing."""
        return None

    def forward(self, outputs: BatchOutputs) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.params.model_dump().items())
