r"""The link-prediction baselines a user tries first on a friend graph: popularity, common
neighbours and Adamic–Adar, as training-free filters over the training adjacency A (N × N,
symmetric, binary; the "items" are users too).

.. math::  \mathrm{pop}(u, v) = \deg(v), \qquad
           \mathrm{CN}(u, v) = \lvert N(u) \cap N(v) \rvert = (A A)_{uv}, \qquad
           \mathrm{AA}(u, v) = \sum_{w \in N(u) \cap N(v)} \frac{1}{\log \deg w} = (A\, D_{AA}\, A)_{uv}

with :math:`D_{AA} = \mathrm{diag}(1 / \log \deg w)` over nodes of degree >= 2 (a node of degree 1
is a neighbour of one node only, so it is never common to two). Friends-of-friends heuristics are
strong for friend recommendation (Liben-Nowell & Kleinberg, 2007), which is why a learned model must
be compared with them. Scores are computed for a block of query users at once as a sparse product
(rows of A) × (D A), densified per block: nothing N × N is ever formed.
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from recforge.config_base import FilterSettings
from recforge.errors import ConfigError
from recforge.models.filters import GraphFilter


def _square(owner: str, interactions: sp.csr_matrix) -> None:
    if interactions.shape[0] != interactions.shape[1]:
        raise ConfigError(
            f"{owner}: needs a user-user graph (a square training matrix), got {interactions.shape}; "
            "these baselines are for friend recommendation"
        )


class Popularity(GraphFilter):
    """Every user gets the items (users) with the most training interactions (friends)."""

    _owner = "Popularity"

    def __init__(self, interactions: sp.spmatrix | sp.sparray, *, block_size: int = 1024,
                 num_threads: int | None = None) -> None:
        super().__init__(interactions, block_size)

    def fit(self) -> Self:
        self.popularity_ = torch.from_numpy(np.asarray(self.interactions.sum(0)).ravel().astype(np.float32))
        self._fitted = True
        return self

    def fitted_tensors(self) -> dict[str, Tensor]:
        self._check_fitted()
        return {"popularity": self.popularity_}

    def restore(self, tensors: dict[str, Tensor]) -> Self:
        self.popularity_ = self._fitted_tensor(tensors, "popularity", (self.num_items,))
        self._fitted = True
        return self

    def _score_block(self, rows: sp.csr_matrix, out: Tensor) -> None:
        out.copy_(self.popularity_.expand(rows.shape[0], -1))


class CommonNeighbours(GraphFilter):
    """:math:`\\mathrm{CN}(u, v) = (A A)_{uv}` (module docstring); ``adamic_adar`` weighs each
    common neighbour w by :math:`1 / \\log \\deg w`."""

    _owner = "CommonNeighbours"

    def __init__(
        self,
        interactions: sp.spmatrix | sp.sparray,
        *,
        adamic_adar: bool = False,
        block_size: int = 1024,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(interactions, block_size)
        _square(self._owner, self.interactions)
        self.adamic_adar = adamic_adar

    def __repr__(self) -> str:
        kind = "AdamicAdar" if self.adamic_adar else "CommonNeighbours"
        return f"{kind}(nodes={self.num_users})"

    def fit(self) -> Self:
        degrees = np.asarray(self.interactions.sum(1)).ravel()
        if self.adamic_adar:
            weights = np.zeros_like(degrees, dtype=np.float64)
            shared = degrees >= 2
            weights[shared] = 1.0 / np.log(degrees[shared])
        else:
            weights = np.ones_like(degrees, dtype=np.float64)
        self.neighbour_weights_ = torch.from_numpy(weights.astype(np.float32))
        self._weighted = (sp.diags(weights.astype(np.float32)) @ self.interactions).tocsr()
        self._fitted = True
        return self

    def fitted_tensors(self) -> dict[str, Tensor]:
        """``{"neighbour_weights": (N,)}``: with the training matrix, all the scores need."""
        self._check_fitted()
        return {"neighbour_weights": self.neighbour_weights_}

    def restore(self, tensors: dict[str, Tensor]) -> Self:
        self.neighbour_weights_ = self._fitted_tensor(tensors, "neighbour_weights", (self.num_users,))
        weights = self.neighbour_weights_.numpy()
        self._weighted = (sp.diags(weights) @ self.interactions).tocsr()
        self._fitted = True
        return self

    def _score_block(self, rows: sp.csr_matrix, out: Tensor) -> None:
        product = (rows.astype(np.float32) @ self._weighted).toarray()
        out.copy_(torch.from_numpy(product))


class PopularityConfig(FilterSettings):
    name: Literal["popularity"]


class CommonNeighboursConfig(FilterSettings):
    name: Literal["common_neighbours"]
    adamic_adar: bool = False


__all__ = ["CommonNeighbours", "CommonNeighboursConfig", "Popularity", "PopularityConfig"]
