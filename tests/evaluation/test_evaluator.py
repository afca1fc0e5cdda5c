"""The full-ranking evaluator against a per-user reference, plus masking, slicing and batching."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from recforge.data.dataset import Interactions
from recforge.data.split import Split
from recforge.errors import ConfigError, RecforgeError, UnknownNameError
from recforge.evaluation import EvaluationResult, Evaluator, ranking_metrics

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]
NUM_USERS, NUM_ITEMS, DIM = 80, 50, 8


def interactions(pairs: list[tuple[int, int]]) -> Interactions:
    users, items = zip(*pairs, strict=True) if pairs else ((), ())
    return Interactions(users=np.array(users, dtype=np.int64), items=np.array(items, dtype=np.int64))


def random_split(seed: int = 0) -> Split:
    """Users with 0..40 training items (so every default slice is populated), a few valid/test items.

    Folds overlap at random (an item can be in train and test), which is exactly what masking must handle.
    """
    rng = np.random.default_rng(seed)
    folds: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for user in range(NUM_USERS):
        for fold, count in (
            ("train", rng.integers(0, 41)),
            ("valid", rng.integers(0, 4)),
            ("test", rng.integers(0, 6)),
        ):
            folds[fold] += [(user, int(item)) for item in rng.choice(NUM_ITEMS, count, replace=False)]
    return Split(
        NUM_USERS, NUM_ITEMS, protocol="random, for tests", **{f: interactions(p) for f, p in folds.items()}
    )


def embeddings(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)  # continuous scores: no ties between items
    return torch.randn(NUM_USERS, DIM, generator=generator), torch.randn(NUM_ITEMS, DIM, generator=generator)


def items_by_user(pairs: Interactions) -> list[set[int]]:
    sets: list[set[int]] = [set() for _ in range(NUM_USERS)]
    for user, item in zip(pairs.users.tolist(), pairs.items.tolist(), strict=True):
        sets[user].add(item)
    return sets


def reference_hits(split: Split, scores: torch.Tensor, fold: str, depth: int) -> tuple[list[int], list, list]:
    """Evaluated users, hit lists and relevant counts, one user at a time in plain Python."""
    seen = items_by_user(split.train)
    if fold == "test":
        seen = [a | b for a, b in zip(seen, items_by_user(split.valid), strict=True)]
    relevant = items_by_user(split.fold(fold))
    users, hits, counts = [], [], []
    for user, row in enumerate(scores.tolist()):
        if not relevant[user]:
            continue
        unseen = [item for item in range(NUM_ITEMS) if item not in seen[user]]
        ranked = sorted(unseen, key=lambda item, row=row: -row[item])[:depth]
        users.append(user)
        hits.append([item in relevant[user] for item in ranked] + [False] * (depth - len(ranked)))
        counts.append(len(relevant[user]))
    return users, hits, counts


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fold", ["valid", "test"])
def test_matches_the_per_user_reference(fold: str, device: str) -> None:
    split = random_split()
    user_embeddings, item_embeddings = embeddings()
    evaluator = Evaluator(split, ks=(1, 5, 20), batch_size=16)

    result = evaluator.evaluate(user_embeddings.to(device), item_embeddings.to(device), fold)

    users, hits, counts = reference_hits(split, user_embeddings @ item_embeddings.T, fold, depth=20)
    expected = ranking_metrics(torch.tensor(hits), torch.tensor(counts), ks=(1, 5, 20))
    assert result.users.tolist() == users
    assert result.num_users == len(users)
    for key, values in expected.items():
        torch.testing.assert_close(result.per_user[key], values, msg=lambda m, key=key: f"{key}: {m}")
        assert result.metrics[key] == pytest.approx(values.double().mean().item())
    # recall once more, straight from the sets, without the hit matrix in between
    recall = [sum(row[:5]) / count for row, count in zip(hits, counts, strict=True)]
    assert result.metrics["recall@5"] == pytest.approx(sum(recall) / len(recall))


def test_coverage_counts_items_in_any_evaluated_top_list() -> None:
    split = random_split()
    user_embeddings, item_embeddings = embeddings()
    result = Evaluator(split, ks=(3,), metrics=("coverage",)).evaluate(
        user_embeddings, item_embeddings, "test"
    )
    users, _, _ = reference_hits(split, user_embeddings @ item_embeddings.T, "test", depth=NUM_ITEMS)
    seen = [a | b for a, b in zip(items_by_user(split.train), items_by_user(split.valid), strict=True)]
    scores = (user_embeddings @ item_embeddings.T).tolist()
    shown = set()
    for user in users:
        unseen = [item for item in range(NUM_ITEMS) if item not in seen[user]]
        shown.update(sorted(unseen, key=lambda item, row=scores[user]: -row[item])[:3])
    assert result.metrics == {"coverage@3": pytest.approx(len(shown) / NUM_ITEMS)}


@pytest.mark.parametrize("fold", ["valid", "test"])
def test_seen_items_are_never_ranked(fold: str) -> None:
    # every relevant item was seen before (train for valid, train + valid for test) and seen items
    # score highest: masking must leave no hit at all, even with k = the whole catalogue
    train = [(user, item) for user in range(NUM_USERS) for item in range(user % 7, NUM_ITEMS, 7)]
    valid = [(user, (user % 7) + 1) for user in range(NUM_USERS)]
    relevant = {"valid": interactions(train), "test": interactions(train + valid)}
    split = Split(
        NUM_USERS,
        NUM_ITEMS,
        interactions(train),
        valid=interactions(valid) if fold == "test" else relevant["valid"],
        test=relevant["test"],
        protocol="every relevant item already seen",
    )
    seen_first = torch.from_numpy(split.csr("train").toarray() + split.csr("valid").toarray()) * 100.0
    evaluator = Evaluator(split, ks=(NUM_ITEMS,), metrics=("hit",))

    result = evaluator.evaluate_scores(
        lambda users: seen_first[users] + torch.rand(len(users), NUM_ITEMS), fold
    )

    assert result.num_users == NUM_USERS
    assert result.metrics[f"hit@{NUM_ITEMS}"] == 0.0


def test_validation_items_are_masked_at_test_time_only() -> None:
    # user 0: item 1 is in valid and in test; the scores put it first
    split = Split(
        2,
        4,
        train=interactions([(0, 0), (1, 0)]),
        valid=interactions([(0, 1), (1, 2)]),
        test=interactions([(0, 1), (0, 3), (1, 3)]),
        protocol="toy",
    )
    scores = torch.tensor([[0.0, 9.0, 5.0, 1.0], [0.0, 5.0, 9.0, 1.0]])
    evaluator = Evaluator(split, ks=(1,), metrics=("hit",), activity_slices=())
    assert evaluator.evaluate_scores(lambda users: scores[users], "valid").per_user["hit@1"].tolist() == [
        1.0,
        1.0,
    ]
    # at test time item 1 (user 0) and item 2 (user 1) are masked: item 2 then 3 / item 1 then 3
    assert evaluator.evaluate_scores(lambda users: scores[users], "test").per_user["hit@1"].tolist() == [
        0.0,
        0.0,
    ]


def test_users_without_items_in_the_fold_are_excluded() -> None:
    split = Split(
        3,
        4,
        train=interactions([(0, 0), (1, 0), (2, 1)]),
        valid=interactions([(1, 2)]),
        test=interactions([(0, 3), (2, 3)]),
        protocol="toy",
    )
    evaluator = Evaluator(split, ks=(2,))
    user_embeddings, item_embeddings = torch.randn(3, 2), torch.randn(4, 2)
    assert evaluator.evaluate(user_embeddings, item_embeddings, "test").users.tolist() == [0, 2]
    valid = evaluator.evaluate(user_embeddings, item_embeddings, "valid")
    assert valid.users.tolist() == [1]
    assert valid.num_users == 1
    assert all(len(values) == 1 for values in valid.per_user.values())


def test_batch_size_does_not_change_the_result() -> None:
    split = random_split(seed=1)
    user_embeddings, item_embeddings = embeddings(seed=1)
    results = [
        Evaluator(split, ks=(5, 10), batch_size=size).evaluate(user_embeddings, item_embeddings, "test")
        for size in (1, 7, 10_000)
    ]
    for other in results[1:]:
        assert other.metrics == results[0].metrics
        assert other.slices == results[0].slices
        for key, values in results[0].per_user.items():
            assert torch.equal(other.per_user[key], values)


def test_scores_and_embeddings_give_the_same_result() -> None:
    split = random_split()
    user_embeddings, item_embeddings = embeddings()
    evaluator = Evaluator(split)
    from_embeddings = evaluator.evaluate(user_embeddings, item_embeddings, "valid")
    from_scores = evaluator.evaluate_scores(lambda users: user_embeddings[users] @ item_embeddings.T, "valid")
    assert from_scores.metrics == from_embeddings.metrics


def test_slices_partition_users_and_average_to_the_overall_mean() -> None:
    split = random_split()
    evaluator = Evaluator(split, ks=(5,), metrics=("recall", "ndcg", "mrr"))
    result = evaluator.evaluate(*embeddings(), "test")

    assert list(result.slices) == ["<=5", "6-20", ">20"]
    sizes = [values["num_users"] for values in result.slices.values()]
    assert all(size > 0 for size in sizes)
    assert sum(sizes) == result.num_users
    for key, overall in result.metrics.items():
        weighted = (
            sum(values[key] * values["num_users"] for values in result.slices.values()) / result.num_users
        )
        assert weighted == pytest.approx(overall)


def test_slice_edges_are_configurable() -> None:
    split = random_split()
    assert Evaluator(split, activity_slices=(2,)).slice_names == ("<=2", ">2")
    assert Evaluator(split, activity_slices=(3, 4, 10)).slice_names == ("<=3", "4", "5-10", ">10")
    result = Evaluator(split, activity_slices=()).evaluate(*embeddings(), "test")
    assert result.slices == {}


def test_an_empty_slice_reports_nan_and_to_dict_is_strict_json() -> None:
    split = random_split()
    result = Evaluator(split, ks=(5,), activity_slices=(1000,)).evaluate(*embeddings(), "test")
    assert result.slices[">1000"]["num_users"] == 0
    assert math.isnan(result.slices[">1000"]["recall@5"])
    as_json = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert as_json["slices"][">1000"]["recall@5"] is None
    assert as_json["metrics"]["ndcg@5"] == pytest.approx(result.metrics["ndcg@5"])
    assert set(as_json) == {"fold", "num_users", "seconds", "metrics", "slices"}


def test_cut_offs_beyond_the_catalogue_and_users_who_saw_everything() -> None:
    everything = [(0, item) for item in range(4)]
    split = Split(
        2,
        4,
        train=interactions([*everything, (1, 0)]),
        valid=interactions([]),
        test=interactions([(0, 1), (1, 1)]),
        protocol="toy",
    )
    result = Evaluator(split, ks=(10,), metrics=("recall", "precision", "coverage")).evaluate(
        torch.randn(2, 3), torch.randn(4, 3), "test"
    )
    assert result.per_user["recall@10"].tolist() == [0.0, 1.0]  # user 0 has nothing left to rank
    assert result.per_user["precision@10"].tolist() == pytest.approx([0.0, 0.1])
    assert result.metrics["coverage@10"] == pytest.approx(3 / 4)  # items 1-3 for user 1


def test_embeddings_that_track_gradients_are_accepted() -> None:
    split = random_split()
    user_embeddings, item_embeddings = (tensor.requires_grad_() for tensor in embeddings())
    result = Evaluator(split, ks=(5,)).evaluate(user_embeddings, item_embeddings, "valid")
    assert not result.per_user["recall@5"].requires_grad


def test_result_type_and_repr() -> None:
    split = random_split()
    evaluator = Evaluator(split, ks=(20, 10, 20), metrics=("recall", "ndcg"), batch_size=64)
    assert repr(evaluator) == (
        "Evaluator(users=80, items=50, ks=[10, 20], metrics=['recall', 'ndcg'], "
        "batch_size=64, activity_slices=[5, 20])"
    )
    result = evaluator.evaluate(*embeddings(), "valid")
    assert isinstance(result, EvaluationResult)
    assert list(result.metrics) == ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]
    assert result.seconds > 0


def test_invalid_arguments_name_the_fault() -> None:
    split = random_split()
    with pytest.raises(UnknownNameError, match="unknown metric 'recal'; choose one of: coverage, hit"):
        Evaluator(split, metrics=("recal",))
    with pytest.raises(ConfigError, match=r"ks must be a non-empty list of positive ints, got \[0\]"):
        Evaluator(split, ks=(0,))
    with pytest.raises(ConfigError, match="batch_size must be a positive int, got 0"):
        Evaluator(split, batch_size=0)
    with pytest.raises(
        ConfigError, match=r"activity_slices must be strictly increasing ints >= 0, got \[20, 5\]"
    ):
        Evaluator(split, activity_slices=(20, 5))
    evaluator = Evaluator(split)
    user_embeddings, item_embeddings = embeddings()
    with pytest.raises(UnknownNameError, match="unknown fold 'train'; choose one of: test, valid"):
        evaluator.evaluate(user_embeddings, item_embeddings, "train")
    with pytest.raises(
        RecforgeError, match=r"user_embeddings must have shape \(80, d\) for this split, got \(79, 8\)"
    ):
        evaluator.evaluate(user_embeddings[1:], item_embeddings, "test")
    with pytest.raises(RecforgeError, match=r"item_embeddings must have shape \(50, 8\)"):
        evaluator.evaluate(user_embeddings, item_embeddings[:, :4], "test")
    with pytest.raises(
        RecforgeError, match=r"score_batch returned shape \(3, 49\) for 3 users, expected \(3, 50\)"
    ):
        Evaluator(split, batch_size=3).evaluate_scores(
            lambda users: torch.zeros(len(users), NUM_ITEMS - 1), "test"
        )
