r"""Residual Graph Transformer with rationale-aware generative SSL (RGT; arXiv 2504.10500, after
GFormer: Li et al., "Graph Transformer for Recommendation", SIGIR 2023).

The encoder pieces live here; which graph each one sees during training (the rationale graph, its
complement, the masked edges) is decided by :class:`recforge.train.rationale_task.RationaleTask`,
and the loss terms are in :mod:`recforge.objectives.rationale_terms`.

* **Position encoding** (:class:`AnchorPositionEncoding`): every node aggregates messages from a
  set of A anchor nodes, weighted by :math:`w_{va} = 1/(d_{va}+1)` for hop distance
  :math:`d_{va} \le q`, else 0 (the weights come from :mod:`recforge.data.anchors`, an n×A array).
  GFormer's layer concatenates each anchor message with the node's own embedding, applies one
  linear map and averages over anchors; that mean is linear, so it is computed here as one n×A by
  A×d product instead of an n×A×d tensor:

  .. math::  p_v = W_a \Big(\frac1A \sum_a w_{va} e_a\Big) + W_s e_v + b .

* **Residual graph transformer layer** (:class:`EdgeAttention`): multi-head attention restricted to
  a given edge list (softmax over each node's neighbours), then
  :math:`\mathrm{LN}(x + \mathrm{attention}(x))`. The attention summed over heads is the per-edge
  importance that rationale discovery ranks.
* **RGT** ties them to a LightGCN encoder over one (U+I, d) table, plus the student heads of
  auto-distillation (one linear head per teacher view it mimics).

Nodes: users ``0..U-1``, item ``i`` is node ``U+i``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.utils import softmax as segment_softmax

from recforge.models.lightgcn import layer_mean_propagation

STUDENT_VIEWS = ("final", "rationale", "complement")


class AnchorPositionEncoding(nn.Module):
    """Position-aware node embeddings from anchor messages (see the module docstring)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.from_anchors = nn.Linear(dim, dim, bias=False)
        self.from_self = nn.Linear(dim, dim)

    def forward(self, nodes: Tensor, anchor_ids: Tensor, anchor_weights: Tensor) -> Tensor:
        """``nodes`` (n, d), ``anchor_ids`` (A,), ``anchor_weights`` (n, A) -> (n, d). A node with
        no anchor within the cut-off has zero weights: its encoding is its own term only."""
        messages = anchor_weights @ nodes[anchor_ids] / max(1, len(anchor_ids))
        return self.from_anchors(messages) + self.from_self(nodes)


class EdgeAttention(nn.Module):
    r"""Multi-head attention over an edge list, with a residual connection and layer norm.

    For an edge :math:`v \to u` (``rows`` = u receives, ``cols`` = v sends) and head h:
    :math:`\alpha^h_{uv} = \mathrm{softmax}_{v \in N(u)}(q^h_u \cdot k^h_v / \sqrt{d/H})`, and
    :math:`x'_u = \mathrm{LN}(x_u + \sum_v \alpha^h_{uv} v^h_v)` with heads concatenated.
    A node with no incoming edge gets no message (pass self-loops to give each node one).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"EdgeAttention: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.query_key_value = nn.Linear(dim, 3 * dim, bias=False)
        self.norm = nn.LayerNorm(dim)

    def attention(self, nodes: Tensor, rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
        """Per-edge attention (E, H) and per-edge values (E, H, d/H)."""
        query, key, value = self.query_key_value(nodes).chunk(3, dim=-1)  # per node, then gathered
        shape = (-1, self.num_heads, self.head_dim)
        logits = (query[rows].view(shape) * key[cols].view(shape)).sum(-1) / math.sqrt(self.head_dim)
        weights = segment_softmax(logits, rows, num_nodes=len(nodes))
        return weights, value[cols].view(shape)

    def forward(self, nodes: Tensor, rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
        """-> (LN(x + messages) (n, d), attention (E, H))."""
        weights, values = self.attention(nodes, rows, cols)
        messages = torch.zeros_like(nodes).index_add_(0, rows, (weights.unsqueeze(-1) * values).flatten(1))
        return self.norm(nodes + messages), weights


class RGT(nn.Module):
    r"""LightGCN encoder + anchor position encoding + residual edge-attention decoder.

    Args:
        num_users, num_items: graph sizes.
        dim: embedding size ``d``.
        num_layers: LightGCN propagation steps of the encoder.
        num_heads: attention heads of the transformer layer.
        num_anchors: anchor-set size A (the position buffers are (n, A)).
        position_encoding: add anchor position encodings (ablation switch).
        masked_autoencoding: decode with the transformer layer (ablation switch); without it the
            final embedding is the encoder's plus the position encoding.

    Shapes:
        ``forward(normalized_adjacency, edge_index)``: the (n, n) normalised graph the encoder
        propagates over and the (2, E) edges the decoder attends along -> users (U, d), items (I, d).

    The anchors are buffers (saved with the weights), set by :meth:`set_anchors`; until then every
    weight is 0 and the position encoding reduces to its self term.
    """

    anchor_ids: Tensor
    anchor_weights: Tensor

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        num_anchors: int = 32,
        position_encoding: bool = True,
        masked_autoencoding: bool = True,
    ) -> None:
        super().__init__()
        # submodules draw their own weights when built; rewinding the generator before the one
        # reset_parameters() makes a seeded constructor equal a seeded reset_parameters()
        generator_state = torch.get_rng_state()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.num_layers, self.num_anchors = num_layers, num_anchors
        self.embedding = nn.Parameter(torch.empty(num_users + num_items, dim))
        self.position = AnchorPositionEncoding(dim) if position_encoding else None
        self.transformer = EdgeAttention(dim, num_heads)
        self.masked_autoencoding = masked_autoencoding
        self.students = nn.ModuleDict({view: nn.Linear(dim, dim) for view in STUDENT_VIEWS})
        self.register_buffer("anchor_ids", torch.zeros(num_anchors, dtype=torch.long))
        self.register_buffer("anchor_weights", torch.zeros(num_users + num_items, num_anchors))
        torch.set_rng_state(generator_state)
        self.reset_parameters()

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding, std=0.1)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.LayerNorm):
                module.reset_parameters()

    def set_anchors(self, anchor_ids: np.ndarray | Tensor, anchor_weights: np.ndarray | Tensor) -> None:
        """Install a new anchor set and its (n, A) weights (from :mod:`recforge.data.anchors`)."""
        ids = torch.as_tensor(anchor_ids, dtype=torch.long, device=self.anchor_ids.device)
        weights = torch.as_tensor(
            anchor_weights, dtype=self.anchor_weights.dtype, device=self.anchor_weights.device
        )
        if ids.shape != self.anchor_ids.shape or weights.shape != self.anchor_weights.shape:
            raise ValueError(
                f"RGT.set_anchors: expected {self.num_anchors} anchors and weights of shape "
                f"{tuple(self.anchor_weights.shape)}, got {tuple(ids.shape)} and {tuple(weights.shape)}"
            )
        self.anchor_ids.copy_(ids)
        self.anchor_weights.copy_(weights)

    def initial_embeddings(self) -> tuple[Tensor, Tensor]:
        users, items = self.embedding.split([self.num_users, self.num_items])
        return users, items

    def positions(self) -> Tensor | None:
        """(n, d) position encodings of the ego table, or None when switched off."""
        if self.position is None:
            return None
        return self.position(self.embedding, self.anchor_ids, self.anchor_weights)

    def topology_aware(self) -> Tensor:
        """The node inputs of rationale discovery: ego embeddings plus position encodings."""
        positions = self.positions()
        return self.embedding if positions is None else self.embedding + positions

    def encode(self, normalized_adjacency: Tensor) -> Tensor:
        """LightGCN layer mean of the ego table over ``normalized_adjacency`` -> (n, d)."""
        return layer_mean_propagation(normalized_adjacency, self.embedding, self.num_layers)

    def decode(self, encoded: Tensor, edge_index: Tensor) -> Tensor:
        """The final node embeddings: encoder output plus positions, through the residual
        transformer layer along ``edge_index`` when masked autoencoding is on."""
        positions = self.positions()
        nodes = encoded if positions is None else encoded + positions
        if not self.masked_autoencoding:
            return nodes
        decoded, _ = self.transformer(nodes, edge_index[0], edge_index[1])
        return decoded

    def edge_importance(self, edge_index: Tensor) -> Tensor:
        """Attention summed over heads for each edge of ``edge_index`` (E,), on the
        topology-aware ego embeddings: what rationale discovery ranks edges by."""
        weights, _ = self.transformer.attention(self.topology_aware(), edge_index[0], edge_index[1])
        return weights.sum(-1)

    def student(self, view: str, nodes: Tensor) -> Tensor:
        """The auto-distillation student's guess of teacher ``view`` from ego rows ``nodes``."""
        return self.students[view](nodes)

    def forward(self, normalized_adjacency: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        if normalized_adjacency.shape != (self.num_nodes, self.num_nodes):
            raise ValueError(
                f"RGT: normalized_adjacency has shape {tuple(normalized_adjacency.shape)}, expected "
                f"({self.num_nodes}, {self.num_nodes}) for {self.num_users} users + {self.num_items} items"
            )
        final = self.decode(self.encode(normalized_adjacency), edge_index)
        users, items = final.split([self.num_users, self.num_items])
        return users, items

    def extra_repr(self) -> str:
        return (
            f"users={self.num_users}, items={self.num_items}, dim={self.dim}, layers={self.num_layers}, "
            f"anchors={self.num_anchors}, position_encoding={self.position is not None}, "
            f"masked_autoencoding={self.masked_autoencoding}"
        )
