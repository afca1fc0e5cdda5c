r"""Residual Graph Transformer with rationale-aware generative SSL (RGT; arXiv 2504.10500, after
GFormer: Li et al., "Graph Transformer for Recommendation", SIGIR 2023).

The encoder pieces live here; which graph each one sees during training (the rationale graph, its
complement, the masked edges) is decided by :class:`recforge.tasks.rationale.RationaleTask`,
and the loss terms are in :mod:`recforge.objectives.rationale_terms`.

* **Position encoding** (:class:`AnchorPositionEncoding`): every node aggregates messages from a
  set of A anchor nodes, weighted by :math:`w_{va} = 1/(d_{va}+1)` for hop distance
  :math:`d_{va} \le q`, else 0 (the weights come from :mod:`recforge.data.anchors`, an n×A array).
  GFormer's layer concatenates each anchor message with the node's own embedding, applies one
  linear map and averages over anchors; that mean is linear, so it is computed here as one n×A by
  A×d product instead of an n×A×d tensor:

  .. math::  p_v = W_a \Big(\frac1A \sum_a w_{va} e_a\Big) + W_s e_v + b .

* **Residual graph transformer layer** (:class:`EdgeAttention`): multi-head attention restricted to
  a given edge list (softmax over each node's neighbours) on layer-normalised inputs, added back as
  :math:`x + g \cdot \mathrm{attention}(\mathrm{LN}(x))`. The attention summed over heads is the
  per-edge importance that rationale discovery ranks.
* **Gates**: in the decoder, the position encoding and the transformer's message each enter
  through a learnable scalar gate that starts at 0 (as ReZero does for residual blocks), so a
  freshly initialised linear map cannot swamp LightGCN's small embeddings: the untrained decoder
  is the encoder, and training decides how much of each part to use.
* **RGT** ties them to a LightGCN encoder over one (U+I, d) table. (The student heads of
  auto-distillation are parameters of the ``distill`` term, not of the encoder.) The scored embeddings are the
  encoder's over the full graph; positions and the transformer act through rationale discovery
  and the masked autoencoder.

Nodes: users ``0..U-1``, item ``i`` is node ``U+i``.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch_geometric.utils import softmax as segment_softmax

from recforge.config_base import ModelSettings
from recforge.models.lightgcn import layer_mean_propagation

EDGE_SLICE = 32768
"""Edges whose attention logits are computed together (see :meth:`EdgeAttention.attention`)."""



class RGTConfig(ModelSettings):
    """Residual Graph Transformer (see :class:`RGT`); every part is a switch."""

    name: Literal["rgt"]
    dim: Annotated[int, Field(gt=0)] = 64
    num_layers: Annotated[int, Field(ge=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    anchors: Annotated[int, Field(ge=1, description="anchor-set size A")] = 32
    anchor_cutoff: Annotated[int, Field(ge=1, description="hop cut-off q of the anchor distances")] = 4
    anchor_resample_every: Annotated[
        int, Field(ge=0, description="epochs between anchor resamplings; 0 keeps the first set")
    ] = 10
    position_encoding: bool = True
    masked_autoencoding: bool = True
    rationale_ratio: Annotated[
        float, Field(gt=0, lt=1, description="ρ_R: share of edges kept as rationale")
    ] = 0.9
    rationale_every: Annotated[
        int, Field(ge=1, description="training steps between rationale resamplings")
    ] = 10
    extra_pair_ratio: Annotated[
        float, Field(ge=0, lt=1, description="sampled non-edges attended to, as a share of |E|")
    ] = 0.01
    gumbel_temperature: Annotated[float, Field(gt=0)] = 1.0

    def encoder_arguments(self) -> dict[str, object]:
        """The encoder's own arguments; the anchor schedule and the rationale split belong to the
        training task (:mod:`recforge.tasks.rationale`)."""
        return {
            "dim": self.dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "num_anchors": self.anchors,
            "position_encoding": self.position_encoding,
            "masked_autoencoding": self.masked_autoencoding,
        }


class AnchorPositionEncoding(nn.Module):
    """Position-aware node embeddings from anchor messages (see the module docstring)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.from_anchors = nn.Linear(dim, dim, bias=False)
        self.from_self = nn.Linear(dim, dim)

    def forward(self, nodes: Tensor, anchors: Tensor, anchor_weights: Tensor) -> Tensor:
        """``nodes`` (m, d) to encode, ``anchors`` (A, d) the anchors' embeddings, ``anchor_weights``
        (m, A) -> (m, d). Any subset of the graph's nodes can be encoded on its own: each row
        depends on its own weights only. A node with no anchor within the cut-off has zero
        weights: its encoding is its own term only."""
        messages = anchor_weights @ anchors / max(1, len(anchors))
        return self.from_anchors(messages) + self.from_self(nodes)


class EdgeAttention(nn.Module):
    r"""Multi-head attention over an edge list, on layer-normalised inputs (a pre-norm block).

    For an edge :math:`v \to u` (``rows`` = u receives, ``cols`` = v sends) and head h, with
    :math:`\tilde x = \mathrm{LN}(x)`: :math:`\alpha^h_{uv} = \mathrm{softmax}_{v \in N(u)}
    (q^h_u \cdot k^h_v / \sqrt{d/H})` and the message :math:`m_u = \Vert_h \sum_v \alpha^h_{uv} v^h_v`.
    The caller adds it to :math:`x` (the residual), so the block never rescales what it is added to.
    A node with no incoming edge gets no message (pass self-loops to give each node one).
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"EdgeAttention: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.query_key_value = nn.Linear(dim, 3 * dim, bias=False)

    def attention(self, nodes: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        """Per-edge attention (E, H): queries and keys only, so scoring every edge of a large graph
        gathers two (E, d) tables, not three."""
        dim = self.num_heads * self.head_dim
        query, key = F.linear(self.norm(nodes), self.query_key_value.weight[: 2 * dim]).chunk(2, dim=-1)
        return self._softmax(query, key, rows, cols, len(nodes))

    def forward(self, nodes: Tensor, rows: Tensor, cols: Tensor) -> tuple[Tensor, Tensor]:
        """-> (messages (n, d), attention (E, H))."""
        query, key, value = self.query_key_value(self.norm(nodes)).chunk(3, dim=-1)  # per node, then gathered
        weights = self._softmax(query, key, rows, cols, len(nodes))
        values = value.index_select(0, cols).view(-1, self.num_heads, self.head_dim)
        messages = torch.zeros_like(nodes).index_add_(0, rows, (weights.unsqueeze(-1) * values).flatten(1))
        return messages, weights

    def _softmax(self, query: Tensor, key: Tensor, rows: Tensor, cols: Tensor, num_nodes: int) -> Tensor:
        shape = (-1, self.num_heads, self.head_dim)
        # per-edge dot products in slices of edges: all of Yelp's edges at once would gather two
        # (E, d) tables of ~110 MB each; index_select, not [], is the fast row gather on CPU
        logits = []
        for part_rows, part_cols in zip(rows.split(EDGE_SLICE), cols.split(EDGE_SLICE), strict=True):
            queries = query.index_select(0, part_rows).view(shape)
            logits.append((queries * key.index_select(0, part_cols).view(shape)).sum(-1))
        return segment_softmax(torch.cat(logits) / math.sqrt(self.head_dim), rows, num_nodes=num_nodes)


class RGT(nn.Module):
    r"""LightGCN encoder + anchor position encoding + residual edge-attention decoder.

    Args:
        num_users, num_items: graph sizes.
        dim: embedding size ``d``.
        num_layers: LightGCN propagation steps of the encoder.
        num_heads: attention heads of the transformer layer.
        num_anchors: anchor-set size A (the position buffers are (n, A)).
        position_encoding: add anchor position encodings (ablation switch).
        masked_autoencoding: decode with the transformer layer (ablation switch); without it
            :meth:`decode` returns the encoder's output plus the gated position encoding, and the
            transformer, which then trains through no term, ranks edges with its initial weights.

    Shapes:
        ``forward(normalized_adjacency)``: the (n, n) normalised graph -> users (U, d), items (I, d),
        the encoder's output, which is what is scored. The position encoding and the transformer
        serve rationale discovery and the masked autoencoder (:meth:`decode`), not the scores: in
        the scored path each lowered LastFM validation Recall@40 (see ``benchmarks/RESULTS.md``).

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
        self.position_gate = nn.Parameter(torch.zeros(()))
        self.transformer_gate = nn.Parameter(torch.zeros(()))
        self.masked_autoencoding = masked_autoencoding
        self.register_buffer("anchor_ids", torch.zeros(num_anchors, dtype=torch.long))
        self.register_buffer("anchor_weights", torch.zeros(num_users + num_items, num_anchors))
        torch.set_rng_state(generator_state)
        self.reset_parameters()

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding, std=0.1)
        nn.init.zeros_(self.position_gate)
        nn.init.zeros_(self.transformer_gate)
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

    def positions(self, rows: Tensor | None = None) -> Tensor | None:
        """Position encodings (ungated) of the ego table's ``rows`` (all nodes when None), or None
        when switched off."""
        if self.position is None:
            return None
        anchors = self.embedding[self.anchor_ids]
        if rows is None:
            return self.position(self.embedding, anchors, self.anchor_weights)
        return self.position(self.embedding[rows], anchors, self.anchor_weights[rows])

    def topology_aware(self) -> Tensor:
        """The node inputs of rationale discovery: ego embeddings plus position encodings."""
        positions = self.positions()
        return self.embedding if positions is None else self.embedding + positions

    def encode(self, normalized_adjacency: Tensor) -> Tensor:
        """LightGCN layer mean of the ego table over ``normalized_adjacency`` -> (n, d)."""
        return layer_mean_propagation(normalized_adjacency, self.embedding, self.num_layers)

    def decode(self, encoded: Tensor, edge_index: Tensor, targets: Tensor) -> Tensor:
        """Final embeddings (T, d) of the nodes ``targets`` (T,; any order, repeats allowed): the
        encoder's output ``encoded`` (n, d), plus the gated position encoding, plus the gated
        transformer message along ``edge_index`` when masked autoencoding is on.

        Only the targets and the nodes sending to them are touched: a node's message depends on
        its incoming edges alone, so this equals decoding every node and taking the target rows,
        at the cost of the few hundred rows a batch reconstructs instead of the whole graph.
        """
        wanted, back = torch.unique(targets, return_inverse=True)
        if not self.masked_autoencoding:
            return self._decoder_inputs(encoded, wanted)[back]
        incoming = torch.isin(edge_index[0], wanted)
        rows, cols = edge_index[0, incoming], edge_index[1, incoming]
        involved = torch.unique(torch.cat([wanted, cols]))  # sorted: searchsorted maps to local ids
        inputs = self._decoder_inputs(encoded, involved)
        local = functools.partial(torch.searchsorted, involved)
        messages, _ = self.transformer(inputs, local(rows), local(cols))
        at = local(wanted)
        return (inputs[at] + self.transformer_gate * messages[at])[back]

    def _decoder_inputs(self, encoded: Tensor, rows: Tensor) -> Tensor:
        positions = self.positions(rows)
        return encoded[rows] if positions is None else encoded[rows] + self.position_gate * positions

    def edge_importance(self, edge_index: Tensor) -> Tensor:
        """Attention summed over heads for each edge of ``edge_index`` (E,), on the
        topology-aware ego embeddings: what rationale discovery ranks edges by."""
        return self.transformer.attention(self.topology_aware(), edge_index[0], edge_index[1]).sum(-1)

    def forward(self, normalized_adjacency: Tensor) -> tuple[Tensor, Tensor]:
        """The scored embeddings: the LightGCN encoder over ``normalized_adjacency``."""
        if normalized_adjacency.shape != (self.num_nodes, self.num_nodes):
            raise ValueError(
                f"RGT: normalized_adjacency has shape {tuple(normalized_adjacency.shape)}, expected "
                f"({self.num_nodes}, {self.num_nodes}) for {self.num_users} users + {self.num_items} items"
            )
        users, items = self.encode(normalized_adjacency).split([self.num_users, self.num_items])
        return users, items

    def extra_repr(self) -> str:
        return (
            f"users={self.num_users}, items={self.num_items}, dim={self.dim}, layers={self.num_layers}, "
            f"anchors={self.num_anchors}, position_encoding={self.position is not None}, "
            f"masked_autoencoding={self.masked_autoencoding}"
        )
