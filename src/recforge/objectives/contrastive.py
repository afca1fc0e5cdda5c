r"""DirectAU's alignment and uniformity (Wang et al., "Towards Representation Alignment and
Uniformity in Collaborative Filtering", KDD 2022; after Wang & Isola, ICML 2020).

Both act on L2-normalised rows: alignment pulls each interacting (user, item) pair together,
uniformity spreads a set of embeddings over the unit sphere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def alignment(x: Tensor, y: Tensor, *, alpha: float = 2.0) -> Tensor:
    r"""Mean distance between paired rows on the unit sphere.

    .. math::  \frac1B \sum_b \lVert \hat x_b - \hat y_b \rVert_2^{\alpha},
               \qquad \hat x = x / \lVert x \rVert_2

    Args:
        x, y: (B, d), row b of x paired with row b of y.
        alpha: exponent :math:`\alpha > 0`.

    Returns:
        Scalar in :math:`[0, 2^\alpha]`.
    """
    distance = torch.linalg.vector_norm(F.normalize(x, dim=-1) - F.normalize(y, dim=-1), dim=-1)
    return distance.pow(alpha).mean()


def uniformity(x: Tensor, *, t: float = 2.0) -> Tensor:
    r"""Log of the mean Gaussian potential over all pairs of distinct rows on the unit sphere.

    .. math::  \log \frac{2}{N(N-1)} \sum_{i<j} \exp(-t \lVert \hat x_i - \hat x_j \rVert_2^2)

    Computed as ``logsumexp - log(#pairs)``, finite even where every exp underflows (large t).
    Repeated rows add zero-distance pairs that no update can separate; callers that want each
    entity once pass unique rows.

    Args:
        x: (N, d), N >= 2.
        t: :math:`t > 0`.

    Returns:
        Scalar in :math:`[-4t, 0]`.
    """
    if len(x) < 2:
        raise ValueError(f"uniformity: needs at least 2 rows to form a pair, got {len(x)}")
    squared = torch.pdist(F.normalize(x, dim=-1), p=2).pow(2)  # (N(N-1)/2,), pairs i<j
    return torch.logsumexp(-t * squared, dim=0) - math.log(len(squared))


def paired_uniformity(x: Tensor, y: Tensor, *, t: float = 2.0) -> Tensor:
    r"""Log of the mean Gaussian potential between paired rows on the unit sphere: uniformity
    restricted to given (negative) pairs, as GSAU uses between sequence states and other items.

    .. math::  \log \frac1B \sum_b \exp(-t \lVert \hat x_b - \hat y_b \rVert_2^2)

    Args:
        x, y: (B, d), B >= 1, row b of x paired with row b of y.
        t: :math:`t > 0`.

    Returns:
        Scalar in :math:`[-4t, 0]`.
    """
    squared = (F.normalize(x, dim=-1) - F.normalize(y, dim=-1)).pow(2).sum(-1)
    return torch.logsumexp(-t * squared, dim=0) - math.log(len(squared))


def first_occurrences(ids: Tensor) -> Tensor:
    """Index of the first row of each distinct id (in sorted id order): the rows that count each
    entity once in a uniformity term, where a repeated row would add zero-distance pairs."""
    unique, inverse = torch.unique(ids, return_inverse=True)
    first = torch.full((len(unique),), len(ids), dtype=torch.long, device=ids.device)
    return first.scatter_reduce(0, inverse, torch.arange(len(ids), device=ids.device), reduce="amin")
