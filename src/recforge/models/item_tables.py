r"""Item tables built from frozen vectors: DLLM2Rec's collaborative embedding distillation, and the
text teacher's input layer.

A sequential encoder (SASRec, GRU4Rec) reads its items through ``item_embedding``, an
``nn.Embedding(num_items + 1, d, padding_idx=0)``: ``item_embedding(sequences)`` for the inputs and
``item_embedding.weight[1:]`` as the table the states are scored against. :class:`ProjectedItemTable`
stands in for it with the same two uses and rows

.. math::  e_i = b_i + w_e \, P(t_i)

where :math:`t_i` is a frozen vector of item i (a teacher's item embedding, a title's sentence
embedding), :math:`P` a learned projector (linear, or Linear-ReLU-Linear) into the encoder's
dimension and :math:`b_i` the encoder's own collaborative ID embedding (absent for a table made of
text alone). This is DLLM2Rec's offset form: the teacher's semantics arrive through :math:`P`, the
collaborative signal the teacher lacks through :math:`b`. Row 0 (padding) stays exactly zero.

The frozen vectors are a buffer saved with the weights, so a run directory scores without the
teacher's files; :meth:`ProjectedItemTable.fold` computes the table once and returns the plain
``nn.Embedding`` an encoder had, so a distilled student serves at the cost of the student alone.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from recforge.config_base import ModelSettings, Strict
from recforge.errors import ConfigError


class TeacherOffsetSettings(Strict):
    """``model.teacher_offset``: item rows = own ID embedding + weight · projector(teacher's item
    embedding), the teacher from ``objective.teacher`` (its ``item_embeddings``)."""

    weight: Annotated[float, Field(gt=0, allow_inf_nan=False, description="w_e of the projected part")] = 0.2
    projector: Annotated[Literal["linear", "mlp"], Field(description="P: linear or Linear-ReLU-Linear")] = (
        "linear"
    )
    hidden_dim: Annotated[int, Field(gt=0, description="the MLP projector's hidden width")] = 256


class OffsetStudentSettings(ModelSettings):
    """The ``model`` section of an encoder whose item table can take a teacher offset."""

    teacher_offset: TeacherOffsetSettings | None = None

    def encoder_arguments(self) -> dict[str, object]:
        return self.model_dump(exclude={"name", "teacher_offset"})


def make_projector(kind: str, in_dim: int, out_dim: int, hidden_dim: int) -> nn.Module:
    """``linear``: one ``nn.Linear``; ``mlp``: Linear -> ReLU -> Linear."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, out_dim))
    raise ConfigError(f"projector must be 'linear' or 'mlp', got {kind!r}")


class ProjectedItemTable(nn.Module):
    """An item table (``num_items + 1`` rows, row 0 padding) of ``base + scale * projector(frozen)``.

    Args:
        frozen: (num_items, d_t) vectors, one per item in the encoder's item order; not trained.
        dim: the encoder's embedding size d.
        base: the encoder's own ``nn.Embedding(num_items + 1, d, padding_idx=0)``, or None.
        scale: :math:`w_e`.
        projector: ``linear`` or ``mlp``; ``hidden_dim`` is the MLP's width.
    """

    def __init__(
        self,
        frozen: Tensor,
        dim: int,
        *,
        base: nn.Embedding | None = None,
        scale: float = 1.0,
        projector: str = "linear",
        hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        if frozen.dim() != 2:
            raise ConfigError(
                f"ProjectedItemTable: frozen vectors must be (items, d), got {tuple(frozen.shape)}"
            )
        if base is not None and base.weight.shape != (len(frozen) + 1, dim):
            raise ConfigError(
                f"ProjectedItemTable: the base table is {tuple(base.weight.shape)}, expected "
                f"({len(frozen) + 1}, {dim}) for {len(frozen)} items"
            )
        self.frozen: Tensor
        self.register_buffer("frozen", frozen.detach().float().clone())
        self.base = base
        self.scale = float(scale)
        self.projector = make_projector(projector, frozen.shape[1], dim, hidden_dim)
        self.projector.to(device=self.frozen.device)

    @property
    def weight(self) -> Tensor:
        """(num_items + 1, d): the table, padding row zero (what ``nn.Embedding.weight`` is)."""
        projected = F.pad(self.scale * self.projector(self.frozen), (0, 0, 1, 0))  # row 0 stays zero
        return projected if self.base is None else self.base.weight + projected

    def forward(self, ids: Tensor) -> Tensor:
        # padding_idx: no gradient reaches row 0 (of the base table either), as nn.Embedding's
        return F.embedding(ids, self.weight, padding_idx=0)

    @torch.no_grad()
    def fold(self) -> nn.Embedding:
        """The same table as a plain embedding: what the encoder would hold with no teacher."""
        table = self.weight.detach().clone()
        folded = nn.Embedding(table.shape[0], table.shape[1], padding_idx=0, device=table.device)
        folded.weight.copy_(table)
        return folded

    def extra_repr(self) -> str:
        own = "own ids + " if self.base is not None else ""
        return f"items={len(self.frozen)}, {own}{self.scale} x projected {self.frozen.shape[1]}-d vectors"


def attach_teacher_offset(model: nn.Module, teacher_items: Tensor, settings: TeacherOffsetSettings) -> None:
    """Replace ``model.item_embedding`` by own ids + ``settings.weight`` · P(teacher's item rows)."""
    base = getattr(model, "item_embedding", None)
    if not isinstance(base, nn.Embedding):
        raise ConfigError(
            f"model.teacher_offset: {type(model).__name__} has no item_embedding table to offset "
            "(it works with the sequential encoders sasrec and gru4rec)"
        )
    num_items = base.weight.shape[0] - 1
    if teacher_items.shape[0] != num_items:
        raise ConfigError(
            f"model.teacher_offset: the teacher has {teacher_items.shape[0]} item embeddings "
            f"for {num_items} items"
        )
    model.item_embedding = ProjectedItemTable(
        teacher_items.to(base.weight.device),
        base.weight.shape[1],
        base=base,
        scale=settings.weight,
        projector=settings.projector,
        hidden_dim=settings.hidden_dim,
    )


def fold_item_table(model: nn.Module) -> bool:
    """Fold ``model.item_embedding`` into a plain table if it is projected; whether it was."""
    table = getattr(model, "item_embedding", None)
    if not isinstance(table, ProjectedItemTable) or table.base is None:
        return False
    model.item_embedding = table.fold()
    return True


__all__ = [
    "OffsetStudentSettings",
    "ProjectedItemTable",
    "TeacherOffsetSettings",
    "attach_teacher_offset",
    "fold_item_table",
    "make_projector",
]
