r"""Top-k ranking metrics as pure functions on tensors, one value per query.

Every per-query metric reads a *hit matrix*: ``hits (Q, K) bool``, where ``hits[q, r]`` says whether
the item at rank ``r + 1`` of query ``q``'s top list is relevant, and ``num_relevant (Q,)``, the size of
the query's relevant set. Ranking once to the largest cut-off and reading every metric at every
``k <= K`` off the same matrix is what lets the evaluator score several cut-offs in one pass.

Functions return a float tensor of shape ``(Q,)``; nothing is averaged, rounded or printed, so slices
and significance tests reuse the per-query values. A query with no relevant item has no meaningful
value (recall would be 0/0), so every per-query metric returns NaN for it and the caller decides
whether it counts; the evaluator never passes such queries in.

Definitions (binary relevance, ``rel_r = hits[:, r-1]``):

.. math::
    \mathrm{Recall@k} = \frac{\sum_{r \le k} rel_r}{|R|}, \quad
    \mathrm{Precision@k} = \frac{\sum_{r \le k} rel_r}{k}, \quad
    \mathrm{HR@k} = [\sum_{r \le k} rel_r > 0],

    \mathrm{NDCG@k} = \frac{\sum_{r \le k} rel_r / \log_2(r + 1)}
                           {\sum_{r \le \min(|R|, k)} 1 / \log_2(r + 1)},
    \quad
    \mathrm{MRR@k} = \frac{1}{\min\{r \le k : rel_r\}} \ (0 \text{ without a hit}),

    \mathrm{MAP@k} = \frac{\sum_{r \le k} \mathrm{P@r} \cdot rel_r}{\min(|R|, k)}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import Tensor

from recforge.errors import UnknownNameError

__all__ = [
    "PER_QUERY_METRICS",
    "hit_matrix",
    "hit_rate_at_k",
    "item_coverage",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]


def hit_matrix(top_items: Tensor, relevant: Tensor) -> Tensor:
    """Hits of ranked lists against a dense relevance matrix.

    Shapes: top_items (Q, K) item ids, relevant (Q, I) bool -> (Q, K) bool. Meant for small inputs
    (tests, examples); the evaluator looks relevance up in the fold's sparse rows instead of
    materialising ``(Q, I)``.
    """
    return relevant.gather(1, top_items)


def _hits_within(hits: Tensor, k: int) -> Tensor:
    """The first ``k`` columns as floats, after checking that ``k`` is a cut-off ``hits`` can answer."""
    if hits.dim() != 2:
        raise ValueError(f"hits must be a (queries, ranks) matrix, got shape {tuple(hits.shape)}")
    if not 1 <= k <= hits.shape[1]:
        raise ValueError(f"k must lie in [1, {hits.shape[1]}] for a hit matrix of {hits.shape[1]} ranks, "
                         f"got {k}")
    return hits[:, :k].float()


def _nan_where_nothing_relevant(values: Tensor, num_relevant: Tensor) -> Tensor:
    # 0 relevant items: recall is 0/0 and the other metrics would silently read as "a miss"
    return values.masked_fill(num_relevant.to(values.device) <= 0, float("nan"))


def _discounts(k: int, device: torch.device) -> Tensor:
    """1 / log2(r + 1) for ranks r = 1..k."""
    return 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float))


def recall_at_k(hits: Tensor, num_relevant: Tensor, k: int) -> Tensor:
    """Fraction of the relevant items found in the top ``k``. (Q, K) bool, (Q,) -> (Q,); NaN if |R| = 0."""
    found = _hits_within(hits, k).sum(1)
    return _nan_where_nothing_relevant(found / num_relevant.clamp(min=1).to(found), num_relevant)


def precision_at_k(hits: Tensor, num_relevant: Tensor, k: int) -> Tensor:
    """Fraction of the top ``k`` that is relevant (always divided by ``k``, as in most papers).

    (Q, K) bool, (Q,) -> (Q,); NaN if |R| = 0.
    """
    return _nan_where_nothing_relevant(_hits_within(hits, k).sum(1) / k, num_relevant)


def hit_rate_at_k(hits: Tensor, num_relevant: Tensor, k: int) -> Tensor:
    """1 if any relevant item is in the top ``k``, else 0. (Q, K) bool, (Q,) -> (Q,); NaN if |R| = 0."""
    return _nan_where_nothing_relevant(_hits_within(hits, k).amax(1), num_relevant)


def ndcg_at_k(hits: Tensor, num_relevant: Tensor, k: int) -> Tensor:
    """Binary NDCG@k: DCG of the top ``k`` over the DCG of ``min(|R|, k)`` hits on top.

    (Q, K) bool, (Q,) -> (Q,); NaN if |R| = 0. The ideal list is cut at ``k`` too, so a perfect top
    ``k`` scores 1 even when ``|R| > k``.
    """
    found = _hits_within(hits, k)
    discounts = _discounts(k, found.device)
    dcg = (found * discounts).sum(1)
    ideal_dcg = torch.cat([discounts.new_zeros(1), discounts.cumsum(0)])  # ideal_dcg[n]: n hits on top
    ideal = ideal_dcg[num_relevant.to(found.device).clamp(min=1, max=k)]
    return _nan_where_nothing_relevant(dcg / ideal, num_relevant)


def mrr_at_k(hits: Tensor, num_relevant: Tensor, k: int) -> Tensor:
    """Reciprocal rank of the first hit within ``k``, 0 without one.

    (Q, K) bool, (Q,) -> (Q,); NaN if |R| = 0.
    """
    found = _hits_within(hits, k)
    reciprocal_ranks = 1.0 / torch.arange(1, k + 1, device=found.device, dtype=torch.float)
    # 1/r falls with r, so the largest hit-weighted value is the first hit's
    return _nan_where_nothing_relevant((found * reciprocal_ranks).amax(1), num_relevant)


def map_at_k(hits: Tensor, num_relevant: Tensor, k: int) -> Tensor:
    """Average precision at ``k``: mean of P@r over the hit ranks r, normalised by ``min(|R|, k)``.

    (Q, K) bool, (Q,) -> (Q,); NaN if |R| = 0. Dividing by ``min(|R|, k)`` rather than ``|R|`` lets a
    perfect top ``k`` score 1 when there are more relevant items than slots.
    """
    found = _hits_within(hits, k)
    ranks = torch.arange(1, k + 1, device=found.device, dtype=torch.float)
    precision_at_rank = found.cumsum(1) / ranks
    best_possible = num_relevant.to(found.device).clamp(min=1, max=k).to(found)
    return _nan_where_nothing_relevant((precision_at_rank * found).sum(1) / best_possible, num_relevant)


def item_coverage(top_items: Tensor, num_items: int, k: int) -> Tensor:
    """Fraction of the catalogue that appears in at least one top-``k`` list (a scalar, not per query).

    Shapes: top_items (Q, >=k) item ids -> (). Negative ids mark empty slots (a query with fewer than
    ``k`` rankable items) and are ignored. Coverage of a union is not the mean of coverages, so the
    evaluator calls this once on all queries (or once per slice) rather than averaging.
    """
    if num_items <= 0:
        raise ValueError(f"num_items must be positive, got {num_items}")
    if not 1 <= k <= top_items.shape[1]:
        raise ValueError(f"k must lie in [1, {top_items.shape[1]}] for lists of {top_items.shape[1]} items, "
                         f"got {k}")
    listed = top_items[:, :k].reshape(-1)
    listed = listed[listed >= 0]
    shown = torch.zeros(num_items, dtype=torch.bool, device=top_items.device)
    shown[listed] = True
    return shown.sum().float() / num_items


PER_QUERY_METRICS: Mapping[str, Callable[[Tensor, Tensor, int], Tensor]] = {
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "hit": hit_rate_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "map": map_at_k,
}
"""Per-query metrics by the name used in configs and result keys (``"recall"`` -> ``"recall@20"``)."""


def ranking_metrics(
    hits: Tensor,
    num_relevant: Tensor,
    ks: Iterable[int],
    metrics: Iterable[str] = tuple(PER_QUERY_METRICS),
) -> dict[str, Tensor]:
    """Every named metric at every cut-off from one hit matrix ranked to ``max(ks)`` or further.

    Returns ``{"recall@20": (Q,) tensor, ...}``, in the order of ``metrics`` then ``ks``. Per-query
    values, NaN for queries without relevant items (see the module docstring).
    """
    ks = tuple(ks)
    names = tuple(metrics)
    unknown = [name for name in names if name not in PER_QUERY_METRICS]
    if unknown:
        raise UnknownNameError("metric", unknown[0], tuple(PER_QUERY_METRICS))
    return {f"{name}@{k}": PER_QUERY_METRICS[name](hits, num_relevant, k) for name in names for k in ks}
