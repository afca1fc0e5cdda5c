"""Matrix factorisation: one free embedding per user and per item, scored by dot product.

The simplest encoder of the embedding contract, and LightGCN with zero layers. Trained with any
loss term in :mod:`recforge.objectives` (BPR-MF, Rendle et al., UAI 2009, when the term is ``bpr``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from recforge.config_base import ModelSettings


class MFConfig(ModelSettings):
    name: Literal["mf"]
    dim: Annotated[int, Field(gt=0)] = 64


class MF(nn.Module):
    r"""Matrix factorisation: :math:`\mathrm{score}(u, i) = e_u \cdot e_i`.

    Args:
        num_users: rows of the user table.
        num_items: rows of the item table.
        dim: embedding size ``d``.

    Shapes:
        ``forward()`` (no inputs) -> users (num_users, dim), items (num_items, dim).

    Initialisation: :math:`\mathcal N(0, 0.1^2)`, as the LightGCN authors' PyTorch code
    (LightGCN-PyTorch) initialises both MF and LightGCN, so the two start alike; drawn from torch's
    global RNG, so ``torch.manual_seed`` makes it reproducible.
    """

    def __init__(self, num_users: int, num_items: int, dim: int = 64) -> None:
        super().__init__()
        self.num_users, self.num_items, self.dim = num_users, num_items, dim
        self.user_embedding = nn.Parameter(torch.empty(num_users, dim))
        self.item_embedding = nn.Parameter(torch.empty(num_items, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_embedding, std=0.1)
        nn.init.normal_(self.item_embedding, std=0.1)

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.user_embedding, self.item_embedding

    def initial_embeddings(self) -> tuple[Tensor, Tensor]:
        """The free tables (the same as the output): what an L2 term on ego embeddings penalises."""
        return self.user_embedding, self.item_embedding

    def extra_repr(self) -> str:
        return f"users={self.num_users}, items={self.num_items}, dim={self.dim}"
