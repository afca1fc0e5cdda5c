r"""GRU4Rec (Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks",
ICLR 2016, https://arxiv.org/abs/1511.06939), in RecBole's next-item form.

.. math::

    x_t = \mathrm{Dropout}(E_{s_t}), \qquad h_t = \mathrm{GRU}(x_t, h_{t-1}), \qquad
    q_t = W h_t + b, \qquad \mathrm{score}(t, i) = q_t \cdot E_i .

Defaults follow RecBole's GRU4Rec (embedding 64, hidden 128, one layer, dropout 0.3, GRU without
bias, Xavier initialisation).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils import skip_init

from recforge.models.item_tables import OffsetStudentSettings


class GRU4RecConfig(OffsetStudentSettings):
    """``max_length`` is the training window of the data path, not an encoder argument (a GRU
    reads sequences of any length)."""

    name: Literal["gru4rec"]
    dim: Annotated[int, Field(gt=0)] = 64
    hidden_dim: Annotated[int, Field(gt=0)] = 128
    num_layers: Annotated[int, Field(gt=0)] = 1
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.3
    max_length: Annotated[int, Field(gt=0)] = 50

    def encoder_arguments(self) -> dict[str, object]:
        return self.model_dump(exclude={"name", "max_length", "teacher_offset"})


class GRU4Rec(nn.Module):
    r"""GRU4Rec encoder: a left-padded item sequence -> one state per position.

    Args:
        num_items: items, ids ``1..num_items`` in the input (0 is padding); row ``i`` of
            :meth:`item_embeddings` is input id ``i + 1``.
        dim: embedding size ``d`` (of the items and of the output states).
        hidden_dim: GRU state size, projected back to ``dim``.
        num_layers: stacked GRU layers.
        dropout: dropout on the input embeddings.

    Shapes:
        ``forward(sequences)``: (B, L) int64, left-padded with 0 -> (B, L, d), zero at padded
        positions. ``query_embeddings(sequences)`` -> (B, d) (the last position).
        ``item_embeddings()`` -> (num_items, d).

    Padding: the padding row is zero and the GRU has no bias (as in RecBole), so over the leading
    padding the state stays exactly zero, its initial value: extra left padding changes nothing.
    """

    def __init__(
        self, num_items: int, dim: int = 64, hidden_dim: int = 128, num_layers: int = 1, dropout: float = 0.3
    ) -> None:
        super().__init__()
        self.num_items, self.dim, self.hidden_dim = num_items, dim, hidden_dim
        self.num_layers, self.dropout = num_layers, dropout
        # skip_init: reset_parameters alone draws from the RNG, so a seeded constructor and a
        # seeded reset_parameters() give the same weights
        self.item_embedding = skip_init(nn.Embedding, num_items + 1, dim, padding_idx=0)
        self.embedding_dropout = nn.Dropout(dropout)
        # bias=False keeps the state at zero over zero (padding) inputs
        # built on "meta" and then allocated, as skip_init does (which refuses nn.GRU's *args signature)
        self.gru = nn.GRU(
            dim, hidden_dim, num_layers=num_layers, bias=False, batch_first=True, device="meta"
        ).to_empty(device="cpu")
        self.projection = skip_init(nn.Linear, hidden_dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.item_embedding.weight)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()
        for weight in self.gru.parameters():
            nn.init.xavier_uniform_(weight)
        self.projection.reset_parameters()

    def forward(self, sequences: Tensor) -> Tensor:
        is_item = (sequences != 0).unsqueeze(-1)
        states, _ = self.gru(self.embedding_dropout(self.item_embedding(sequences)))
        return self.projection(states) * is_item

    def query_embeddings(self, sequences: Tensor) -> Tensor:
        """The state after the most recent item (the last column of a left-padded batch)."""
        return self.forward(sequences)[:, -1]

    def item_embeddings(self) -> Tensor:
        """The item table without the padding row, shared by the input and the output layer."""
        return self.item_embedding.weight[1:]

    def extra_repr(self) -> str:
        return (
            f"items={self.num_items}, dim={self.dim}, hidden_dim={self.hidden_dim}, layers={self.num_layers}"
        )
