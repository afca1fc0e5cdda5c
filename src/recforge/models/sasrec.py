r"""SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018,
https://arxiv.org/abs/1808.09781).

Item plus positional embeddings, then causal self-attention blocks; the state at position t
scores the next item by a dot product with the (shared) item table:

.. math::

    H^{(0)} = \mathrm{Dropout}(\mathrm{LN}(E_{s_t} + P_t)), \qquad
    H^{(l+1)} = \mathrm{Block}(H^{(l)}), \qquad
    \mathrm{score}(t, i) = H^{(L)}_t \cdot E_i .

Hyperparameter defaults and block layout follow RecBole's SASRec (hidden 64, inner 256, GELU,
post-layer-norm blocks with eps 1e-12, dropout 0.5 on hidden states and on attention weights,
weights :math:`\mathcal N(0, 0.02^2)`).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils import skip_init

from recforge.models.item_tables import OffsetStudentSettings

LAYER_NORM_EPS = 1e-12  # RecBole's SASRec value



class SASRecConfig(OffsetStudentSettings):
    name: Literal["sasrec"]
    dim: Annotated[int, Field(gt=0)] = 64
    max_length: Annotated[int, Field(gt=0)] = 50
    num_layers: Annotated[int, Field(gt=0)] = 2
    num_heads: Annotated[int, Field(gt=0)] = 2
    inner_dim: Annotated[int, Field(gt=0)] = 256
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    attention_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5


class SASRec(nn.Module):
    r"""SASRec encoder: a left-padded item sequence -> one state per position.

    Args:
        num_items: items, ids ``1..num_items`` in the input (0 is padding); row ``i`` of
            :meth:`item_embeddings` is input id ``i + 1``.
        dim: embedding and hidden size ``d``.
        max_length: the longest sequence accepted (rows of the positional table).
        num_layers: self-attention blocks.
        num_heads: attention heads (``dim`` must be divisible by it).
        inner_dim: width of the position-wise feed-forward layer.
        dropout: dropout on the embeddings and on each block's sub-layer outputs.
        attention_dropout: dropout on the attention weights.

    Shapes:
        ``forward(sequences)``: (B, L) int64, L <= max_length, left-padded with 0 -> (B, L, d),
        zero at padded positions. ``query_embeddings(sequences)`` -> (B, d) (the last position).
        ``item_embeddings()`` -> (num_items, d).

    Positions are counted back from the most recent item (the last column gets positional row
    ``max_length - 1``), as in the original SASRec, which left-pads every sequence to
    ``max_length``: extra left padding therefore never changes an item's position.

    Masking: position t attends to real items at positions <= t. A padded position attends only
    to itself, so no softmax row is empty (no NaN for an all-padding row) and real positions
    never see padding. The block is written here rather than taken from
    ``nn.TransformerEncoderLayer``, because that layer has one dropout rate for attention weights
    and hidden states and an extra dropout inside the feed-forward, where SASRec/RecBole have two
    rates and none there.
    """

    def __init__(
        self,
        num_items: int,
        dim: int = 64,
        max_length: int = 50,
        num_layers: int = 2,
        num_heads: int = 2,
        inner_dim: int = 256,
        dropout: float = 0.5,
        attention_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"SASRec: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_items, self.dim, self.max_length = num_items, dim, max_length
        self.num_layers, self.num_heads, self.inner_dim = num_layers, num_heads, inner_dim
        self.dropout, self.attention_dropout = dropout, attention_dropout
        # skip_init: reset_parameters alone draws from the RNG, so a seeded constructor and a
        # seeded reset_parameters() give the same weights.
        # Row 0 is padding: kept at zero and without gradient by padding_idx.
        self.item_embedding = skip_init(nn.Embedding, num_items + 1, dim, padding_idx=0)
        self.position_embedding = skip_init(nn.Embedding, max_length, dim)
        self.embedding_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.blocks = nn.ModuleList(
            _SelfAttentionBlock(dim, num_heads, inner_dim, dropout, attention_dropout)
            for _ in range(num_layers)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():  # RecBole's _init_weights
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.item_embedding.weight[0].zero_()

    def forward(self, sequences: Tensor) -> Tensor:
        length = sequences.shape[1]
        if length > self.max_length:
            raise ValueError(
                f"SASRec: sequences have length {length}, longer than max_length={self.max_length}"
            )
        is_item = sequences != 0  # (B, L)
        positions = torch.arange(self.max_length - length, self.max_length, device=sequences.device)
        hidden = self.item_embedding(sequences) + self.position_embedding(positions)
        hidden = F.dropout(self.embedding_norm(hidden), self.dropout, self.training)
        causal = torch.ones(length, length, dtype=torch.bool, device=sequences.device).tril()
        diagonal = torch.eye(length, dtype=torch.bool, device=sequences.device)
        allowed = causal & (is_item.unsqueeze(1) | diagonal)  # (B, L query, L key)
        allowed = allowed.unsqueeze(1)  # broadcast over heads
        for block in self.blocks:
            hidden = block(hidden, allowed)
        return hidden * is_item.unsqueeze(-1)

    def query_embeddings(self, sequences: Tensor) -> Tensor:
        """The state after the most recent item (the last column of a left-padded batch)."""
        return self.forward(sequences)[:, -1]

    def item_embeddings(self) -> Tensor:
        """The item table without the padding row, shared by the input and the output layer."""
        return self.item_embedding.weight[1:]

    def extra_repr(self) -> str:
        return (
            f"items={self.num_items}, dim={self.dim}, max_length={self.max_length}, "
            f"layers={self.num_layers}, heads={self.num_heads}"
        )


class _SelfAttentionBlock(nn.Module):
    r"""Post-norm block: :math:`H' = \mathrm{LN}(H + \mathrm{Drop}(\mathrm{MHA}(H)))`,
    :math:`\mathrm{LN}(H' + \mathrm{Drop}(W_2\,\mathrm{gelu}(W_1 H')))`."""

    def __init__(
        self, dim: int, num_heads: int, inner_dim: int, dropout: float, attention_dropout: float
    ) -> None:
        super().__init__()
        self.num_heads, self.dropout, self.attention_dropout = num_heads, dropout, attention_dropout
        self.query_key_value = skip_init(nn.Linear, dim, 3 * dim)  # SASRec.reset_parameters fills these
        self.attention_output = skip_init(nn.Linear, dim, dim)
        self.attention_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.feed_forward_in = skip_init(nn.Linear, dim, inner_dim)
        self.feed_forward_out = skip_init(nn.Linear, inner_dim, dim)
        self.feed_forward_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def forward(self, hidden: Tensor, allowed: Tensor) -> Tensor:
        batch, length, dim = hidden.shape
        heads = self.query_key_value(hidden).view(batch, length, 3, self.num_heads, dim // self.num_heads)
        query, key, value = heads.permute(2, 0, 3, 1, 4)  # each (B, heads, L, d / heads)
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=allowed, dropout_p=self.attention_dropout if self.training else 0.0
        )
        attended = self.attention_output(attended.transpose(1, 2).reshape(batch, length, dim))
        hidden = self.attention_norm(hidden + F.dropout(attended, self.dropout, self.training))
        inner = self.feed_forward_out(F.gelu(self.feed_forward_in(hidden)))
        return self.feed_forward_norm(hidden + F.dropout(inner, self.dropout, self.training))
