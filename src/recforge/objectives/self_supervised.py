r"""Self-supervised graph losses: CCA-SSG's canonical-correlation objective and GraphMAE's scaled
cosine error, as pure tensor functions (the SSMTL terms are built on them).

**CCA-SSG** (Zhang et al., "From Canonical Correlation Analysis to Self-supervised Graph Neural
Networks", NeurIPS 2021; reference ``hengruizhang98/CCA-SSG``). Two augmented views of the same N
nodes give embeddings :math:`H_1, H_2` (N, D); each column is standardised
(:math:`Z = (H - \bar H) / \sigma(H)`, σ the unbiased column standard deviation, as the reference's
``torch.std``), and

.. math::  \mathcal L = -\operatorname{tr}\!\big(Z_1^\top Z_2 / N\big)
           + \lambda \big( \lVert I - Z_1^\top Z_1 / N \rVert_F^2
           + \lVert I - Z_2^\top Z_2 / N \rVert_F^2 \big)

The first term makes the views agree dimension by dimension (invariance); the second decorrelates
the dimensions of each view (it keeps them from collapsing onto one direction). Reference λ ≈ 1e-3
(it scales with 1/D: the reference uses 1e-3 at D = 512).

**Scaled cosine error** (Hou et al., "GraphMAE: Self-Supervised Masked Graph Autoencoders",
KDD 2022; reference ``THUDM/GraphMAE``): for masked nodes' features :math:`x_i` and their
reconstructions :math:`\hat x_i`,

.. math::  \mathcal L = \frac{1}{|M|} \sum_{i \in M} \big(1 - \cos(x_i, \hat x_i)\big)^{\gamma}

with γ ≥ 1 (reference 2) shrinking the loss of the easy, already well-reconstructed nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.term import Term, TermParams


def standardise_columns(embeddings: Tensor, eps: float = 1e-12) -> Tensor:
    """Each column minus its mean, over its unbiased standard deviation (a constant column is 0)."""
    centred = embeddings - embeddings.mean(0, keepdim=True)
    return centred / embeddings.std(0, keepdim=True).clamp_min(eps)


def cca_ssg_loss(first: Tensor, second: Tensor, decorrelation: float = 1e-3) -> Tensor:
    """CCA-SSG's loss (module docstring) of two (N, D) views of the same nodes, N >= 2."""
    if first.shape != second.shape or first.dim() != 2:
        raise ValueError(
            f"cca_ssg_loss: views must share one (N, D) shape, got {first.shape}, {second.shape}"
        )
    if first.shape[0] < 2:
        raise ValueError("cca_ssg_loss: needs at least 2 nodes to standardise the columns")
    count = first.shape[0]
    z1, z2 = standardise_columns(first), standardise_columns(second)
    identity = torch.eye(first.shape[1], dtype=first.dtype, device=first.device)
    invariance = -torch.diagonal(z1.T @ z2 / count).sum()
    decorrelate = (identity - z1.T @ z1 / count).pow(2).sum() + (identity - z2.T @ z2 / count).pow(2).sum()
    return invariance + decorrelation * decorrelate


def scaled_cosine_error(features: Tensor, reconstructed: Tensor, gamma: float = 2.0) -> Tensor:
    """GraphMAE's mean (1 - cos)^γ over the rows (module docstring); a zero row counts as cos 0."""
    if features.shape != reconstructed.shape:
        raise ValueError(
            f"scaled_cosine_error: shapes differ, {tuple(features.shape)} vs {tuple(reconstructed.shape)}"
        )
    cosine = (F.normalize(features, dim=-1) * F.normalize(reconstructed, dim=-1)).sum(-1)
    return (1 - cosine).pow(gamma).mean()


CCA_VIEWS = "cca_views"
"""The view name of :class:`CCAViews`."""
MASKED_FEATURES = "masked_features"
"""The view name of :class:`MaskedFeatures`."""


@dataclass(frozen=True)
class CCAViews:
    """Two augmented encodings (N, D) of the batch's distinct seed nodes, row for row."""

    first: Tensor
    second: Tensor


@dataclass(frozen=True)
class MaskedFeatures:
    """The masked nodes' true feature rows (M, F) and their reconstructions (M, F)."""

    features: Tensor
    reconstructed: Tensor


class CCAParams(TermParams):
    decorrelation: Annotated[
        float, Field(ge=0, allow_inf_nan=False, description="λ of the decorrelation penalty")
    ] = 1e-3


class SCEParams(TermParams):
    gamma: Annotated[float, Field(ge=1, allow_inf_nan=False, description="γ of (1 - cos)^γ")] = 2.0


class CCASSG(Term[CCAParams]):
    """CCA-SSG on two augmented views of the batch's nodes (:func:`cca_ssg_loss`)."""

    needs = frozenset({CCA_VIEWS})
    Params = CCAParams
    summary = "CCA-SSG: agree across two augmented views, decorrelate each view's dimensions"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        views = outputs.view(CCA_VIEWS, CCAViews)
        if len(views.first) < 2:  # one node cannot be standardised: no signal, same graph
            return views.first.sum() * 0.0
        return cca_ssg_loss(views.first, views.second, self.params.decorrelation)


class MaskedFeatureReconstruction(Term[SCEParams]):
    """GraphMAE: reconstruct masked nodes' features, scored by :func:`scaled_cosine_error`."""

    needs = frozenset({MASKED_FEATURES})
    Params = SCEParams
    summary = "GraphMAE masked feature reconstruction, scaled cosine error (1 - cos)^γ"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        masked = outputs.view(MASKED_FEATURES, MaskedFeatures)
        return scaled_cosine_error(masked.features, masked.reconstructed, self.params.gamma)


__all__ = [
    "CCASSG",
    "CCA_VIEWS",
    "MASKED_FEATURES",
    "CCAViews",
    "MaskedFeatureReconstruction",
    "MaskedFeatures",
    "cca_ssg_loss",
    "scaled_cosine_error",
    "standardise_columns",
]
