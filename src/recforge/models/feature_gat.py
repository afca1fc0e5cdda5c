r"""A GAT over node features for user-user graphs (SSMTL's encoder; Snap's friend recommendation,
arXiv 2409.14682): a user is represented by what they do (sparse features: games played, artists
listened to), refined by attention over their friends, so a user with no friends yet still has an
embedding (the cold-start case an ID table cannot answer).

.. math::  h^{(0)}_i = W_{\mathrm{in}}^\top x_i + b, \qquad
           h^{(l+1)} = \mathrm{ELU}\big(\mathrm{GAT}_l(h^{(l)})\big) \ (l < L-1), \qquad
           z_i = W_{\mathrm{out}} h^{(L)}_i

Each GAT layer is PyG's :class:`~torch_geometric.nn.conv.GATConv` with H heads of size d / H
concatenated (self loops added, so an isolated node attends to itself). The encoder runs on a
sampled subgraph (:mod:`recforge.data.neighbor_sampling`) during training and on the whole training
graph for inference; both are ``forward(features, edge_index)`` over local node ids.

GraphMAE's mask token replaces a masked node's input *after* the input projection (a learned
d-vector): the projection is linear, so a token in the raw feature space could only reach vectors
:math:`W_{\mathrm{in}}^\top t`, a subset of what a free d-vector reaches, at F times the parameters.
The reconstruction head maps the encoder's output back to the F features.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.nn import GATConv

from recforge.config_base import ModelSettings


class FeatureGATConfig(ModelSettings):
    name: Literal["feature_gat"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    dropout: Annotated[float, Field(ge=0, lt=1, description="dropout on the input projection")] = 0.1


class FeatureGAT(nn.Module):
    """GAT over projected node features (module docstring).

    Args:
        num_features: F, the width of the (sparse) feature rows.
        dim: d, the embedding size; ``num_heads`` must divide it.
        num_layers: GAT layers L.
        num_heads: heads per layer.
        dropout: dropout on the projected inputs (training only).

    Shapes: ``forward(features (N, F) sparse or dense, edge_index (2, E) local ids, masked=None)``
    -> (N, d); ``reconstruct(z)`` -> (N, F).
    """

    def __init__(
        self, num_features: int, dim: int = 64, num_layers: int = 2, num_heads: int = 2, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads:
            raise ValueError(f"FeatureGAT: dim={dim} must be a multiple of num_heads={num_heads} (>= 1)")
        self.num_features, self.dim, self.num_layers = num_features, dim, num_layers
        self.num_heads, self.dropout = num_heads, dropout
        with torch.random.fork_rng(devices=[]):  # only reset_parameters draws (seeded = reset)
            self.input = nn.Linear(num_features, dim)
            self.convs = nn.ModuleList(
                GATConv(dim, dim // num_heads, heads=num_heads, concat=True, add_self_loops=True)
                for _ in range(num_layers)
            )
            self.output = nn.Linear(dim, dim)
            self.decoder = nn.Linear(dim, num_features)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in (self.input, self.output, self.decoder):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        for conv in self.convs:
            conv.reset_parameters()  # type: ignore[operator]
        nn.init.normal_(self.mask_token, std=0.02)

    def project(self, features: Tensor) -> Tensor:
        """(N, F) sparse or dense rows -> (N, d) inputs."""
        if features.is_sparse or features.layout == torch.sparse_csr:
            projected = torch.sparse.mm(features, self.input.weight.T) + self.input.bias
        else:
            projected = self.input(features)
        return F.dropout(projected, self.dropout, self.training)

    def forward(self, features: Tensor, edge_index: Tensor, masked: Tensor | None = None) -> Tensor:
        hidden = self.project(features)
        if masked is not None:  # GraphMAE: the masked nodes' inputs become the learned token
            hidden = torch.where(masked.unsqueeze(1), self.mask_token.expand_as(hidden), hidden)
        for index, conv in enumerate(self.convs):
            hidden = conv(hidden, edge_index)
            if index < self.num_layers - 1:
                hidden = F.elu(hidden)
        return self.output(hidden)

    def reconstruct(self, embeddings: Tensor) -> Tensor:
        """GraphMAE's decoder: embeddings back to feature space (scored by the scaled cosine error)."""
        return self.decoder(F.elu(embeddings))

    def extra_repr(self) -> str:
        return (
            f"features={self.num_features}, dim={self.dim}, layers={self.num_layers}, heads={self.num_heads}"
        )


__all__ = ["FeatureGAT", "FeatureGATConfig"]
