"""Metrics by hand on toy lists, and against a slow one-query-at-a-time reference on random data."""

from __future__ import annotations

import math
import random

import pytest
import torch

from recforge.errors import UnknownNameError
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

# one query, 4 relevant items, ranked list with hits at ranks 1 and 3 (of 4)
HITS = torch.tensor([[True, False, True, False]])
NUM_RELEVANT = torch.tensor([4])


def test_recall_by_hand() -> None:
    assert recall_at_k(HITS, NUM_RELEVANT, k=1).item() == pytest.approx(1 / 4)
    assert recall_at_k(HITS, NUM_RELEVANT, k=3).item() == pytest.approx(2 / 4)


def test_precision_by_hand() -> None:
    assert precision_at_k(HITS, NUM_RELEVANT, k=2).item() == pytest.approx(1 / 2)
    assert precision_at_k(HITS, NUM_RELEVANT, k=4).item() == pytest.approx(2 / 4)


def test_hit_rate_by_hand() -> None:
    misses_first = torch.tensor([[False, False, True]])
    assert hit_rate_at_k(misses_first, torch.tensor([1]), k=2).item() == 0.0
    assert hit_rate_at_k(misses_first, torch.tensor([1]), k=3).item() == 1.0


def test_ndcg_by_hand() -> None:
    dcg = 1 / math.log2(2) + 1 / math.log2(4)  # hits at ranks 1 and 3
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # min(|R|=4, k=3) = 3 hits on top
    assert ndcg_at_k(HITS, NUM_RELEVANT, k=3).item() == pytest.approx(dcg / ideal)


def test_ndcg_ideal_is_cut_at_the_number_relevant() -> None:
    hits = torch.tensor([[False, True, False]])  # one relevant item, found at rank 2
    ideal = 1 / math.log2(2)  # min(|R|=1, k=3) = 1 hit on top
    assert ndcg_at_k(hits, torch.tensor([1]), k=3).item() == pytest.approx((1 / math.log2(3)) / ideal)


def test_mrr_by_hand() -> None:
    hits = torch.tensor([[False, False, True, True]])
    assert mrr_at_k(hits, torch.tensor([2]), k=2).item() == 0.0
    assert mrr_at_k(hits, torch.tensor([2]), k=4).item() == pytest.approx(1 / 3)


def test_map_by_hand() -> None:
    # precision at the hit ranks: P@1 = 1/1, P@3 = 2/3; normalised by min(|R|=4, k=4) = 4
    assert map_at_k(HITS, NUM_RELEVANT, k=4).item() == pytest.approx((1 / 1 + 2 / 3) / 4)
    # at k=2 only rank 1 counts, normalised by min(4, 2) = 2
    assert map_at_k(HITS, NUM_RELEVANT, k=2).item() == pytest.approx((1 / 1) / 2)


def test_perfect_list_scores_one_when_more_relevant_than_k() -> None:
    hits = torch.ones(1, 5, dtype=torch.bool)
    many = torch.tensor([50])
    for metric in (ndcg_at_k, hit_rate_at_k, precision_at_k, mrr_at_k, map_at_k):
        assert metric(hits, many, 5).item() == pytest.approx(1.0), metric.__name__
    assert recall_at_k(hits, many, 5).item() == pytest.approx(5 / 50)


@pytest.mark.parametrize("name", sorted(PER_QUERY_METRICS))
def test_query_without_relevant_items_is_nan(name: str) -> None:
    hits = torch.tensor([[False, False], [True, False]])
    values = PER_QUERY_METRICS[name](hits, torch.tensor([0, 1]), 2)
    assert math.isnan(values[0].item())
    assert math.isfinite(values[1].item())


@pytest.mark.parametrize("name", sorted(PER_QUERY_METRICS))
def test_no_queries_give_an_empty_result(name: str) -> None:
    values = PER_QUERY_METRICS[name](torch.zeros(0, 3, dtype=torch.bool), torch.zeros(0, dtype=torch.long), 3)
    assert values.shape == (0,)


def test_k_beyond_the_ranked_list_is_refused() -> None:
    with pytest.raises(ValueError, match=r"k must lie in \[1, 4\] for a hit matrix of 4 ranks, got 5"):
        recall_at_k(HITS, NUM_RELEVANT, k=5)
    with pytest.raises(ValueError, match=r"got 0"):
        ndcg_at_k(HITS, NUM_RELEVANT, k=0)


def test_hit_matrix_gathers_relevance_in_rank_order() -> None:
    relevant = torch.zeros(1, 5, dtype=torch.bool)
    relevant[0, [1, 3]] = True
    assert hit_matrix(torch.tensor([[3, 0, 1]]), relevant).tolist() == [[True, False, True]]


def test_item_coverage_by_hand() -> None:
    top_items = torch.tensor([[0, 1, 2], [1, 3, -1]])  # -1: an empty slot, not an item
    assert item_coverage(top_items, num_items=10, k=2).item() == pytest.approx(3 / 10)  # {0, 1, 3}
    assert item_coverage(top_items, num_items=10, k=3).item() == pytest.approx(4 / 10)  # {0, 1, 2, 3}
    with pytest.raises(ValueError, match="got 4"):
        item_coverage(top_items, num_items=10, k=4)


def test_ranking_metrics_keys_and_unknown_names() -> None:
    values = ranking_metrics(HITS, NUM_RELEVANT, ks=(1, 3), metrics=("recall", "mrr"))
    assert list(values) == ["recall@1", "recall@3", "mrr@1", "mrr@3"]
    with pytest.raises(UnknownNameError, match="unknown metric 'recal'; choose one of: hit, map, mrr"):
        ranking_metrics(HITS, NUM_RELEVANT, ks=(1,), metrics=("recal",))


def reference_metrics(ranked: list[int], relevant: set[int], k: int) -> dict[str, float]:
    """Every metric of one query, straight from the definitions: slow, plainly right."""
    is_hit = [item in relevant for item in ranked[:k]]
    found, best = sum(is_hit), min(len(relevant), k)
    hit_ranks = [rank for rank, hit in enumerate(is_hit, start=1) if hit]
    return {
        "recall": found / len(relevant),
        "precision": found / k,
        "hit": float(found > 0),
        "ndcg": sum(1 / math.log2(rank + 1) for rank in hit_ranks)
        / sum(1 / math.log2(rank + 1) for rank in range(1, best + 1)),
        "mrr": 1 / hit_ranks[0] if hit_ranks else 0.0,
        "map": sum(sum(is_hit[:rank]) / rank for rank in hit_ranks) / best,
    }


def test_every_metric_matches_the_reference_on_random_queries() -> None:
    generator = random.Random(7)
    num_items, depth, ks = 60, 30, (1, 5, 10, 30)
    ranked_lists, relevant_sets = [], []
    for _ in range(300):
        scores = [generator.random() for _ in range(num_items)]  # continuous: no ties
        ranked_lists.append(sorted(range(num_items), key=lambda item, s=scores: -s[item])[:depth])
        relevant_sets.append(set(generator.sample(range(num_items), generator.randint(1, 25))))
    hits = torch.tensor(
        [[item in rel for item in ranked] for ranked, rel in zip(ranked_lists, relevant_sets, strict=True)]
    )
    num_relevant = torch.tensor([len(rel) for rel in relevant_sets])

    values = ranking_metrics(hits, num_relevant, ks)

    for k in ks:
        expected = [
            reference_metrics(ranked, rel, k) for ranked, rel in zip(ranked_lists, relevant_sets, strict=True)
        ]
        for name in PER_QUERY_METRICS:
            torch.testing.assert_close(
                values[f"{name}@{k}"],
                torch.tensor([e[name] for e in expected]),
                msg=lambda message, key=f"{name}@{k}": f"{key}: {message}",
            )
