r"""LightGCN (He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020, https://arxiv.org/abs/2002.02126).

Propagation without weights or non-linearities over the normalised user-item graph, then the
mean of every layer including the free layer-0 embeddings:

.. math::

    E^{(l+1)} = \hat A E^{(l)}, \qquad \hat A = D^{-1/2} A D^{-1/2}, \qquad
    E = \frac{1}{L+1} \sum_{l=0}^{L} E^{(l)}.

``\hat A`` comes from :func:`recforge.data.graph.normalized_adjacency`, built once per split.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from recforge.config_base import ModelSettings
from recforge.models.propagation import sparse_propagate


class LightGCNConfig(ModelSettings):
    name: Literal["lightgcn"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(ge=0)] = 3


class LightGCN(nn.Module):
    r"""LightGCN encoder: layer mean of parameter-free propagations of one embedding table.

    Args:
        num_users: users, nodes ``0..num_users-1`` of the graph.
        num_items: items, nodes ``num_users..num_users+num_items-1``.
        dim: embedding size ``d``.
        num_layers: propagation steps ``L``; with ``L = 0`` LightGCN is :class:`~recforge.models.mf.MF`.

    Shapes:
        ``forward(normalized_adjacency)``: (U+I, U+I) sparse, CSR for speed (COO works too)
        -> users (U, dim), items (I, dim).

    Initialisation: :math:`\mathcal N(0, 0.1^2)`, as in the authors' PyTorch code (LightGCN-PyTorch;
    their TensorFlow code used Xavier); drawn from torch's global RNG, so ``torch.manual_seed``
    makes it reproducible.
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64, num_layers: int = 3) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.dim, self.num_layers = dim, num_layers
        # one (U+I, d) table, user rows first: propagation acts on all nodes at once, no concat
        self.embedding = nn.Parameter(torch.empty(num_users + num_items, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding, std=0.1)

    def forward(self, normalized_adjacency: Tensor) -> tuple[Tensor, Tensor]:
        num_nodes = self.num_users + self.num_items
        if normalized_adjacency.shape != (num_nodes, num_nodes):
            raise ValueError(
                f"LightGCN: normalized_adjacency has shape {tuple(normalized_adjacency.shape)}, "
                f"expected ({num_nodes}, {num_nodes}) for {self.num_users} users + {self.num_items} items"
            )
        nodes = layer_mean_propagation(normalized_adjacency, self.embedding, self.num_layers)
        users, items = nodes.split([self.num_users, self.num_items])
        return users, items

    def initial_embeddings(self) -> tuple[Tensor, Tensor]:
        """The layer-0 user and item tables (views): what the L2 term on ego embeddings penalises."""
        users, items = self.embedding.split([self.num_users, self.num_items])
        return users, items

    def extra_repr(self) -> str:
        return f"users={self.num_users}, items={self.num_items}, dim={self.dim}, layers={self.num_layers}"


def layer_mean_propagation(normalized_adjacency: Tensor, nodes: Tensor, num_layers: int) -> Tensor:
    r"""LightGCN's propagation of a (U+I, d) node table: :math:`\frac{1}{L+1}\sum_{l=0}^{L}\hat A^l E`.

    Shared by :class:`LightGCN` and by GSAU's graph encoder, which propagates a table it assembles
    from the user table and the sequence encoder's item table."""
    layer_sum = layer = nodes
    for _ in range(num_layers):
        # \hat A is symmetric by construction, so it is its own transpose in the backward
        layer = sparse_propagate(normalized_adjacency, layer, adjacency_transpose=normalized_adjacency)
        layer_sum = layer_sum + layer
    return layer_sum / (num_layers + 1)
