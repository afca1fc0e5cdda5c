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

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.nn import GATConv

from recforge.config_base import ModelSettings


class FeatureGATConfig(ModelSettings):
    """The encoder's sizes, and how the training task samples and augments its subgraphs."""

    name: Literal["feature_gat"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    dropout: Annotated[float, Field(ge=0, lt=1, description="dropout on the input projection")] = 0.1
    fanouts: Annotated[
        tuple[int, ...], Field(min_length=1, description="neighbours sampled per node at each hop")
    ] = (10, 5)
    edge_drop: Annotated[float, Field(ge=0, lt=1, description="CCA-SSG views: share of edges dropped")] = 0.2
    feature_drop: Annotated[
        float, Field(ge=0, lt=1, description="CCA-SSG views: share of feature columns zeroed")
    ] = 0.2
    mask_rate: Annotated[
        float, Field(gt=0, lt=1, description="GraphMAE: share of query nodes whose features are masked")
    ] = 0.3

    def encoder_arguments(self) -> dict[str, object]:
        return self.model_dump(include={"dim", "num_layers", "num_heads", "dropout"})


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


class FriendGAT(nn.Module):
    """The recipe's model: :class:`FeatureGAT` plus the node features it reads, kept as buffers
    (CSR: ``feature_indptr``, ``feature_indices``, ``feature_values``), so a run directory scores
    without the dataset. ``forward(edge_index)`` encodes the whole graph and returns the table twice
    (users and items are the same people); the training task encodes sampled subgraphs through
    :meth:`encode`.

    Args:
        num_users, num_items: the nodes (equal: a friend graph).
        features: (N, F) scipy CSR node features.
        dim ... dropout: :class:`FeatureGAT`'s.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        features: sp.csr_matrix,
        dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_users != num_items or features.shape[0] != num_users:
            raise ValueError(
                f"FriendGAT: a friend graph has as many users as items and one feature row each; got "
                f"{num_users} users, {num_items} items, {features.shape[0]} feature rows"
            )
        self.num_users, self.num_items = num_users, num_items
        csr = sp.csr_matrix(features, dtype=np.float32)
        self.feature_indptr: Tensor
        self.feature_indices: Tensor
        self.feature_values: Tensor
        self.register_buffer("feature_indptr", torch.from_numpy(csr.indptr.astype(np.int64)))
        self.register_buffer("feature_indices", torch.from_numpy(csr.indices.astype(np.int64)))
        self.register_buffer("feature_values", torch.from_numpy(csr.data.astype(np.float32)))
        self.encoder = FeatureGAT(csr.shape[1], dim, num_layers, num_heads, dropout)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()

    @property
    def num_features(self) -> int:
        return self.encoder.num_features

    def feature_rows(self, nodes: Tensor) -> Tensor:
        """(len(nodes), F) sparse COO rows of the given node ids."""
        starts, stops = self.feature_indptr[nodes], self.feature_indptr[nodes + 1]
        counts = stops - starts
        rows = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), counts)
        offsets = torch.arange(int(counts.sum()), device=nodes.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        flat = torch.repeat_interleave(starts, counts) + offsets
        indices = torch.stack([rows, self.feature_indices[flat]])
        # CSR rows in order, columns sorted within a row: already coalesced, nothing to check
        return torch.sparse_coo_tensor(
            indices,
            self.feature_values[flat],
            (len(nodes), self.num_features),
            is_coalesced=True,
            check_invariants=False,
        )

    def encode(
        self,
        nodes: Tensor,
        edge_index: Tensor,
        masked: Tensor | None = None,
        feature_keep: Tensor | None = None,
    ) -> Tensor:
        """Embeddings of ``nodes`` (global ids) over ``edge_index`` (local ids); ``masked`` nodes get
        the mask token, ``feature_keep`` (F,) bool zeroes the other feature columns."""
        features = self.feature_rows(nodes)
        if feature_keep is not None:
            keep = feature_keep[features.indices()[1]]
            features = torch.sparse_coo_tensor(
                features.indices()[:, keep],
                features.values()[keep],
                features.shape,
                is_coalesced=True,
                check_invariants=False,
            )
        return self.encoder(features, edge_index, masked)

    def forward(self, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        nodes = torch.arange(self.num_users, device=edge_index.device)
        table = self.encode(nodes, edge_index)
        return table, table

    def extra_repr(self) -> str:
        return f"users={self.num_users}, items={self.num_items}, features={self.num_features}"


__all__ = ["FeatureGAT", "FeatureGATConfig", "FriendGAT"]
