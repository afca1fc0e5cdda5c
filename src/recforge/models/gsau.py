r"""GSAU (Cao et al., "Graph-Sequential Alignment and Uniformity: Toward Enhanced Recommendation
Systems", WWW 2025 Companion, https://arxiv.org/abs/2412.04276).

Two unchanged encoders over one embedding space: a LightGCN over the user-item training graph and a
SASRec over each user's item sequence. The item table is the same tensor for both (SASRec's input
and output table is the graph's item-node table), and the users have a table of their own that only
the graph reads. The losses that tie the two together live in
:mod:`recforge.objectives.graph_sequence_terms`; this module only encodes.

``shared_embeddings=False`` gives the graph its own item table: the ablation that asks whether the
shared space, rather than joint training, is what helps.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from recforge.config_base import ModelSettings
from recforge.models.lightgcn import layer_mean_propagation
from recforge.models.sasrec import SASRec


class GSAUConfig(ModelSettings):
    """A LightGCN and a SASRec sharing one item table (see :class:`GSAU`)."""

    name: Literal["gsau"]
    dim: Annotated[int, Field(gt=0)] = 64
    graph_layers: Annotated[int, Field(ge=0)] = 2
    max_length: Annotated[int, Field(gt=0)] = 50
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    inner_dim: Annotated[int, Field(gt=0)] = 256
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    attention_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    shared_embeddings: bool = True
    score_with: Literal["sequence", "graph", "both"] = Field(
        "sequence",
        description="which encoder ranks items: the sequence state against the item table (the "
        "paper's choice), the LightGCN user against LightGCN items, or both (sum of cosines)",
    )

    def encoder_arguments(self) -> dict[str, object]:
        return self.model_dump(exclude={"name", "score_with"})  # how it ranks, not what it is


class GSAU(nn.Module):
    r"""A LightGCN graph encoder and a SASRec sequence encoder sharing their item embeddings.

    Args:
        num_users: users, graph nodes ``0..num_users-1``.
        num_items: items, graph nodes ``num_users..num_users+num_items-1`` and sequence ids
            ``1..num_items`` (0 is padding).
        dim: the shared embedding size ``d``.
        graph_layers: LightGCN propagation steps (the authors' runs use 2).
        max_length, num_layers, num_heads, inner_dim, dropout, attention_dropout: SASRec's
            hyperparameters (see :class:`~recforge.models.sasrec.SASRec`).
        shared_embeddings: one item table for both encoders (GSAU) or one each (ablation).

    Shapes:
        ``graph_embeddings(normalized_adjacency)``: (U+I, U+I) sparse -> users (U, d), items (I, d).
        ``forward(sequences)``: (B, L) left-padded ids -> (B, L, d), as SASRec.
        ``query_embeddings(sequences)`` -> (B, d); ``item_embeddings()`` -> (I, d), the table the
        sequence states are scored against.

    The user table is drawn from :math:`\mathcal N(0, 0.02^2)` like SASRec's tables, so both halves
    of the graph start on the same scale.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        graph_layers: int = 2,
        max_length: int = 50,
        num_layers: int = 2,
        num_heads: int = 2,
        inner_dim: int = 256,
        dropout: float = 0.5,
        attention_dropout: float = 0.5,
        shared_embeddings: bool = True,
    ) -> None:
        super().__init__()
        if graph_layers < 0:
            raise ValueError(f"GSAU: graph_layers must be >= 0, got {graph_layers}")
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.graph_layers, self.shared_embeddings = graph_layers, shared_embeddings
        self.sequence_encoder = SASRec(
            num_items,
            dim=dim,
            max_length=max_length,
            num_layers=num_layers,
            num_heads=num_heads,
            inner_dim=inner_dim,
            dropout=dropout,
            attention_dropout=attention_dropout,
        )
        self.user_embedding = nn.Parameter(torch.empty(num_users, dim))
        self.graph_item_embedding = None if shared_embeddings else nn.Parameter(torch.empty(num_items, dim))
        self._reset_graph_tables()  # SASRec drew its own weights first, as reset_parameters does

    @property
    def max_length(self) -> int:
        return self.sequence_encoder.max_length

    @property
    def item_embedding(self) -> nn.Embedding:
        """The shared item table, row 0 padding (the sequential encoders' contract)."""
        return self.sequence_encoder.item_embedding

    def reset_parameters(self) -> None:
        self.sequence_encoder.reset_parameters()
        self._reset_graph_tables()

    def _reset_graph_tables(self) -> None:
        nn.init.normal_(self.user_embedding, std=0.02)
        if self.graph_item_embedding is not None:
            nn.init.normal_(self.graph_item_embedding, std=0.02)

    def graph_embeddings(self, normalized_adjacency: Tensor) -> tuple[Tensor, Tensor]:
        """LightGCN's layer mean over [users; items], items being the shared table (or the
        graph's own one when the tables are separate)."""
        num_nodes = self.num_users + self.num_items
        if normalized_adjacency.shape != (num_nodes, num_nodes):
            raise ValueError(
                f"GSAU: normalized_adjacency has shape {tuple(normalized_adjacency.shape)}, "
                f"expected ({num_nodes}, {num_nodes}) for {self.num_users} users + {self.num_items} items"
            )
        items = self.graph_item_embedding if self.graph_item_embedding is not None else self.item_embeddings()
        nodes = layer_mean_propagation(
            normalized_adjacency, torch.cat([self.user_embedding, items]), self.graph_layers
        )
        users, items = nodes.split([self.num_users, self.num_items])
        return users, items

    def forward(self, sequences: Tensor) -> Tensor:
        return self.sequence_encoder(sequences)

    def query_embeddings(self, sequences: Tensor) -> Tensor:
        return self.sequence_encoder.query_embeddings(sequences)

    def item_embeddings(self) -> Tensor:
        return self.sequence_encoder.item_embeddings()

    def extra_repr(self) -> str:
        return (
            f"users={self.num_users}, items={self.num_items}, dim={self.dim}, "
            f"graph_layers={self.graph_layers}, shared_embeddings={self.shared_embeddings}"
        )
