r"""GAT (Veličković et al., "Graph Attention Networks", ICLR 2018, https://arxiv.org/abs/1710.10903)
as a collaborative-filtering encoder: free layer-0 embeddings refined by attention over the user-item graph.

Each layer is PyG's :class:`~torch_geometric.nn.conv.GATConv` with ``H`` heads of size ``d / H``,
concatenated back to ``d``. For node ``i`` with neighbours :math:`N(i)` plus a self loop, head ``k``
computes

.. math::

    \alpha^k_{ij} = \operatorname{softmax}_{j \in N(i) \cup \{i\}}
        \operatorname{LeakyReLU}_{0.2}\!\left(a_{\mathrm{dst}}^{k\top} W^k h_i
        + a_{\mathrm{src}}^{k\top} W^k h_j\right), \qquad
    \tilde h_i = \big\Vert_{k=1}^{H} \sum_{j \in N(i) \cup \{i\}} \alpha^k_{ij} W^k h_j + b,

and the layers are chained with an ELU between them (none after the last):

.. math::

    E^{(l+1)} = \mathrm{ELU}\big(\mathrm{GAT}_l(E^{(l)})\big) \ (l < L - 1), \qquad
    E^{(L)} = \mathrm{GAT}_{L-1}(E^{(L-1)}), \qquad
    E = \frac{1}{L+1} \sum_{l=0}^{L} E^{(l)},

the same layer mean as LightGCN. The graph is :func:`recforge.data.graph.bipartite_edge_index`,
built once per split; the self loops (which keep a node with no interaction defined: it attends
to itself only) are added by each layer.
"""

from __future__ import annotations

from typing import Annotated, Literal, cast

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.nn import GATConv

from recforge.config_base import ModelSettings


class GATConfig(ModelSettings):
    name: Literal["gat"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2


class GAT(nn.Module):
    r"""GAT encoder: layer mean of multi-head graph-attention layers over one embedding table.

    Args:
        num_users: users, nodes ``0..num_users-1`` of the graph.
        num_items: items, nodes ``num_users..num_users+num_items-1``.
        dim: embedding size ``d``; every layer maps ``d`` to ``d``.
        num_layers: attention layers ``L``.
        num_heads: heads ``H`` per layer, each of size ``d / H`` (concatenated); must divide ``dim``.

    Shapes:
        ``forward(edge_index)``: (2, E) int64, both directions of every user-item edge
        (:func:`~recforge.data.graph.bipartite_edge_index`) -> users (U, dim), items (I, dim).

    Initialisation: embeddings :math:`\mathcal N(0, 0.1^2)` as LightGCN's; attention layers PyG's
    own (Glorot weights and attention vectors, zero bias). All drawn from torch's global RNG, so
    ``torch.manual_seed`` makes it reproducible, and seeding before the constructor or before
    :meth:`reset_parameters` gives the same parameters.

    Raises:
        ValueError: ``num_heads < 1`` or ``dim`` not divisible by ``num_heads``.
    """

    def __init__(
        self, num_users: int, num_items: int, dim: int = 64, num_layers: int = 2, num_heads: int = 2
    ) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads != 0:
            raise ValueError(f"GAT: dim={dim} must be a multiple of num_heads={num_heads} (>= 1)")
        self.num_users, self.num_items = num_users, num_items
        self.dim, self.num_layers, self.num_heads = dim, num_layers, num_heads
        # one (U+I, d) table, user rows first: attention acts on all nodes at once, no concat
        self.embedding = nn.Parameter(torch.empty(num_users + num_items, dim))
        # GATConv initialises itself on construction, drawing its linear weight twice (once in
        # PyG's Linear, again in GATConv.reset_parameters); those draws happen on a forked RNG so
        # that the constructor's draws are exactly reset_parameters()'s
        with torch.random.fork_rng(devices=[]):
            self.convs = nn.ModuleList(
                GATConv(dim, dim // num_heads, heads=num_heads, concat=True, add_self_loops=True)
                for _ in range(num_layers)
            )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for conv in self.convs:
            cast(GATConv, conv).reset_parameters()
        nn.init.normal_(self.embedding, std=0.1)

    def forward(self, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        self._check_edge_index(edge_index)
        layer: Tensor = self.embedding
        layer_sum = layer
        for index, conv in enumerate(self.convs):
            layer = conv(layer, edge_index)
            if index < self.num_layers - 1:
                layer = F.elu(layer)
            layer_sum = layer_sum + layer
        nodes = layer_sum / (self.num_layers + 1)
        users, items = nodes.split([self.num_users, self.num_items])
        return users, items

    def initial_embeddings(self) -> tuple[Tensor, Tensor]:
        """The layer-0 user and item tables (views): what the L2 term on ego embeddings penalises."""
        users, items = self.embedding.split([self.num_users, self.num_items])
        return users, items

    def extra_repr(self) -> str:
        return (
            f"users={self.num_users}, items={self.num_items}, dim={self.dim}, "
            f"layers={self.num_layers}, heads={self.num_heads}"
        )

    def _check_edge_index(self, edge_index: Tensor) -> None:
        num_nodes = self.num_users + self.num_items
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"GAT: edge_index has shape {tuple(edge_index.shape)}, expected (2, E)")
        if edge_index.dtype != torch.int64:
            raise ValueError(f"GAT: edge_index has dtype {edge_index.dtype}, expected torch.int64")
        if edge_index.numel() == 0:
            return
        # one device sync per forward: cheap next to the attention layers, and an id out of range
        # would otherwise index out of bounds inside PyG's scatter (a crash, or garbage on GPU)
        low, high = edge_index.min().item(), edge_index.max().item()
        if low < 0 or high >= num_nodes:
            raise ValueError(
                f"GAT: edge_index holds node ids in [{low}, {high}], expected ids in [0, {num_nodes - 1}] "
                f"for {self.num_users} users + {self.num_items} items"
            )
