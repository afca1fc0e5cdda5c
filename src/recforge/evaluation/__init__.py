"""Evaluation: per-query metrics, the evaluator (full ranking or sampled candidates), masked top-k."""

from recforge.evaluation.candidates import ranked_candidates, sample_unseen
from recforge.evaluation.evaluator import (
    EVALUATED_FOLDS,
    FULL_RANKING_PREFIX,
    METRIC_NAMES,
    EvaluationResult,
    Evaluator,
)
from recforge.evaluation.metrics import (
    PER_QUERY_METRICS,
    hit_matrix,
    hit_rate_at_k,
    item_coverage,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from recforge.evaluation.ranking import SparseRows, mask_seen_, ranked_items, top_k

__all__ = [
    "EVALUATED_FOLDS",
    "FULL_RANKING_PREFIX",
    "METRIC_NAMES",
    "PER_QUERY_METRICS",
    "EvaluationResult",
    "Evaluator",
    "SparseRows",
    "hit_matrix",
    "hit_rate_at_k",
    "item_coverage",
    "map_at_k",
    "mask_seen_",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranked_candidates",
    "ranked_items",
    "ranking_metrics",
    "recall_at_k",
    "sample_unseen",
    "top_k",
]
