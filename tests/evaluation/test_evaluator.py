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
    assert set(as_json) == {"fold", "protocol", "num_users", "seconds", "metrics", "slices"}
    assert as_json["protocol"] == "full ranking"


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


# --- sampled candidates ---------------------------------------------------------------------------


def overlapping_split(num_users: int = 70, num_items: int = 150, seed: int = 0) -> Split:
    """0..40 training, 0..3 valid and 0..5 test items per user, folds overlapping at random."""
    rng = np.random.default_rng(seed)
    folds: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for user in range(num_users):
        for fold, most in (("train", 40), ("valid", 3), ("test", 5)):
            chosen = rng.choice(num_items, rng.integers(0, most + 1), replace=False)
            folds[fold] += [(user, int(item)) for item in chosen]
    return Split(num_users, num_items, protocol="random, for tests",
                 **{f: interactions(p) for f, p in folds.items()})


def leave_one_out_split(num_users: int = 60, num_items: int = 120, seed: int = 0) -> Split:
    """3..30 training items, then one valid and one test item per user, all of a user's items distinct."""
    rng = np.random.default_rng(seed)
    folds: dict[str, list[tuple[int, int]]] = {"train": [], "valid": [], "test": []}
    for user in range(num_users):
        items = rng.choice(num_items, rng.integers(3, 31) + 2, replace=False).tolist()
        folds["train"] += [(user, item) for item in items[:-2]]
        folds["valid"].append((user, items[-2]))
        folds["test"].append((user, items[-1]))
    return Split(num_users, num_items, protocol="leave one out, for tests",
                 **{f: interactions(p) for f, p in folds.items()})


def item_sets(pairs: Interactions, num_users: int) -> list[set[int]]:
    sets: list[set[int]] = [set() for _ in range(num_users)]
    for user, item in zip(pairs.users.tolist(), pairs.items.tolist(), strict=True):
        sets[user].add(item)
    return sets


def reference_sampled_hits(
    split: Split, scores: torch.Tensor, fold: str, candidates: list[list[int]], num_negatives: int, depth: int
) -> tuple[list[int], list[list[bool]], list[int]]:
    """Evaluated users, hit lists and relevant counts of the sampled protocol, one user at a time.

    Each user's negatives are the evaluator's (a seeded draw cannot be redone another way; the
    draw itself is checked by the exclusion and uniformity tests); the rest is rebuilt from the sets.
    """
    seen = item_sets(split.train, split.num_users)
    if fold == "test":
        seen = [a | b for a, b in zip(seen, item_sets(split.valid, split.num_users), strict=True)]
    relevant = item_sets(split.fold(fold), split.num_users)
    users = [user for user in range(split.num_users) if relevant[user]]
    hits, counts = [], []
    for row, user in zip(candidates, users, strict=True):
        held_out = sorted(relevant[user])
        assert row[num_negatives:] == held_out + [-1] * (len(row) - num_negatives - len(held_out))
        score = scores[user].tolist()
        listed = [(score[item], False) for item in row[:num_negatives]]
        listed += [(score[item], True) for item in held_out if item not in seen[user]]  # seen: never a hit
        ranked = sorted(listed, key=lambda entry: (-entry[0], entry[1]))[:depth]  # ties: negatives first
        hits.append([is_held_out for _, is_held_out in ranked] + [False] * (depth - len(ranked)))
        counts.append(len(held_out))
    return users, hits, counts


def test_sampled_metrics_by_hand() -> None:
    # user 0: train 0, 1; valid 2; test 3. user 1: train 4; valid 5; test 6. Four negatives each.
    split = Split(2, 12, train=interactions([(0, 0), (0, 1), (1, 4)]), valid=interactions([(0, 2), (1, 5)]),
                  test=interactions([(0, 3), (1, 6)]), protocol="toy")
    evaluator = Evaluator(split, ks=(1, 3, 5), metrics=("hit", "ndcg", "mrr", "recall"), activity_slices=(),
                          sampled_negatives=4)
    candidates = evaluator.candidates("test").tolist()
    assert [row[4:] for row in candidates] == [[3], [6]]
    negatives = candidates[0][:4]
    scores = torch.arange(12, dtype=torch.float).repeat(2, 1)
    scores[0, 3] = negatives[1] + 0.5  # above negatives[0] and [1], below [2] and [3]: rank 3 of 5
    scores[1, 6] = 100.0  # user 1's test item beats all four: rank 1

    result = evaluator.evaluate_scores(lambda users: scores[users].clone(), "test")

    per_user = {key: values.tolist() for key, values in result.per_user.items()}
    assert per_user["hit@1"] == [0.0, 1.0]
    assert per_user["hit@3"] == [1.0, 1.0]
    assert per_user["recall@3"] == [1.0, 1.0]  # one held-out item: recall is the hit rate
    assert per_user["ndcg@3"] == pytest.approx([1 / math.log2(4), 1.0])
    assert per_user["ndcg@1"] == [0.0, 1.0]
    assert per_user["mrr@5"] == pytest.approx([1 / 3, 1.0])
    assert result.metrics["ndcg@5"] == pytest.approx((0.5 + 1.0) / 2)
    # full ranking of the same scores: user 0's item 3 is below every unseen item > negatives[1]
    full_rank = 1 + sum(1 for item in range(4, 12) if item > negatives[1] + 0.5)
    assert per_user["full/mrr@5"] == pytest.approx([1 / full_rank if full_rank <= 5 else 0.0, 1.0])
    assert result.protocol == ("sampled: held-out items + 4 negatives never interacted with (seed 0); "
                               "full ranking under 'full/'")


@pytest.mark.parametrize("fold", ["valid", "test"])
def test_sampled_candidates_exclude_every_interacted_item(fold: str) -> None:
    split = overlapping_split()
    evaluator = Evaluator(split, sampled_negatives=60)
    interacted = [a | b | c for a, b, c in zip(*(item_sets(split.fold(f), split.num_users)
                                                 for f in ("train", "valid", "test")), strict=True)]
    relevant = item_sets(split.fold(fold), split.num_users)
    users = [user for user in range(split.num_users) if relevant[user]]
    candidates = evaluator.candidates(fold)
    assert candidates.shape == (len(users), 60 + max(len(relevant[user]) for user in users))
    for user, row in zip(users, candidates.tolist(), strict=True):
        negatives = row[:60]
        assert len(set(negatives)) == 60  # without replacement
        assert not set(negatives) & interacted[user]  # train, valid and test, whatever the fold
        assert all(0 <= item < split.num_items for item in negatives)


def test_sampled_candidates_are_seeded_and_shared_by_every_model() -> None:
    split = overlapping_split(seed=2)
    first = Evaluator(split, sampled_negatives=30)
    second = Evaluator(split, sampled_negatives=30, batch_size=7)
    np.random.seed(5)  # noqa: NPY002 - neither global generator plays a part
    torch.manual_seed(5)
    for fold in ("valid", "test"):
        assert torch.equal(first.candidates(fold), second.candidates(fold))
    other_seed = Evaluator(split, sampled_negatives=30, sampled_seed=1)
    assert not torch.equal(first.candidates("test"), other_seed.candidates("test"))
    model_a, model_b = (
        (torch.randn(70, DIM, generator=generator), torch.randn(150, DIM, generator=generator))
        for generator in (torch.Generator().manual_seed(0), torch.Generator().manual_seed(1))
    )
    before = first.candidates("test").clone()
    a_first, b_result = first.evaluate(*model_a, "test"), first.evaluate(*model_b, "test")
    assert torch.equal(first.candidates("test"), before)  # the models did not change the candidates
    assert a_first.metrics != b_result.metrics
    assert second.evaluate(*model_a, "test").metrics == a_first.metrics  # another evaluator, batch size
    assert first.evaluate(*model_a, "test").metrics == a_first.metrics  # again


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fold", ["valid", "test"])
def test_sampled_matches_the_per_user_reference(fold: str, device: str) -> None:
    split = overlapping_split(seed=3)  # several held-out items per user, some of them already seen
    generator = torch.Generator().manual_seed(3)
    user_embeddings = torch.randn(split.num_users, DIM, generator=generator)
    item_embeddings = torch.randn(split.num_items, DIM, generator=generator)
    evaluator = Evaluator(split, ks=(1, 5, 20, 80), batch_size=16, sampled_negatives=50)

    result = evaluator.evaluate(user_embeddings.to(device), item_embeddings.to(device), fold)

    users, hits, counts = reference_sampled_hits(split, user_embeddings @ item_embeddings.T, fold,
                                                 evaluator.candidates(fold).tolist(), 50, depth=80)
    expected = ranking_metrics(torch.tensor(hits), torch.tensor(counts), ks=(1, 5, 20, 80))
    assert result.users.tolist() == users
    for key, values in expected.items():
        torch.testing.assert_close(result.per_user[key], values, msg=lambda m, key=key: f"{key}: {m}")
        assert result.metrics[key] == pytest.approx(values.double().mean().item())
    full = Evaluator(split, ks=(1, 5, 20, 80)).evaluate(user_embeddings, item_embeddings, fold)
    for key, value in full.metrics.items():  # the same scores ranked in full, beside the sampled keys
        assert result.metrics[f"full/{key}"] == pytest.approx(value)
    assert list(result.metrics)[: len(full.metrics)] == list(full.metrics)  # plain keys first


def test_sampled_ties_count_against_the_held_out_item() -> None:
    split = leave_one_out_split()
    evaluator = Evaluator(split, ks=(1, 10), metrics=("hit", "ndcg"), sampled_negatives=20)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 3, (split.num_users, split.num_items), generator=generator)  # many ties
    result = evaluator.evaluate_scores(lambda users: scores[users].float(), "test")
    for row, user in enumerate(result.users.tolist()):
        *negatives, held_out = evaluator.candidates("test")[row].tolist()
        rank = 1 + sum(1 for item in negatives if scores[user, item] >= scores[user, held_out])
        assert result.per_user["hit@10"][row] == float(rank <= 10)
        ndcg = 1 / math.log2(rank + 1) if rank <= 10 else 0.0
        assert result.per_user["ndcg@10"][row] == pytest.approx(ndcg)
    constant = evaluator.evaluate_scores(lambda users: torch.zeros(len(users), split.num_items), "test")
    assert constant.metrics["hit@10"] == 0.0  # all alike: the held-out item ranks last, below 20 negatives


def test_sampled_slices_coverage_and_json() -> None:
    split = overlapping_split(seed=4)
    generator = torch.Generator().manual_seed(4)
    user_embeddings = torch.randn(split.num_users, DIM, generator=generator)
    item_embeddings = torch.randn(split.num_items, DIM, generator=generator)
    evaluator = Evaluator(split, ks=(5,), metrics=("recall", "coverage"), sampled_negatives=40)
    result = evaluator.evaluate(user_embeddings, item_embeddings, "test")
    assert list(result.metrics) == ["recall@5", "coverage@5", "full/recall@5", "full/coverage@5"]
    for values in result.slices.values():
        assert set(values) == {*result.metrics, "num_users"}
    for key, overall in result.metrics.items():
        if "coverage" not in key:  # coverage of a union is not a weighted mean
            weighted = sum(v[key] * v["num_users"] for v in result.slices.values()) / result.num_users
            assert weighted == pytest.approx(overall)
    # coverage of the sampled lists: items in some user's top 5 of their own candidates
    candidates = evaluator.candidates("test").tolist()
    scores = (user_embeddings @ item_embeddings.T).tolist()
    seen = [a | b for a, b in zip(item_sets(split.train, split.num_users),
                                  item_sets(split.valid, split.num_users), strict=True)]
    shown: set[int] = set()
    for row, user in zip(candidates, result.users.tolist(), strict=True):
        listed = [item for item in row if item >= 0 and item not in seen[user]]  # seen held-out: -inf
        shown.update(sorted(listed, key=lambda item, user=user: -scores[user][item])[:5])
    assert result.metrics["coverage@5"] == pytest.approx(len(shown) / split.num_items)
    as_json = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert as_json["protocol"].startswith("sampled: held-out items + 40 negatives")
    assert as_json["metrics"]["full/recall@5"] == pytest.approx(result.metrics["full/recall@5"])


def test_sampled_mode_refuses_users_without_enough_negatives() -> None:
    split = Split(2, 6, train=interactions([(0, 0), (0, 1), (1, 0)]), valid=interactions([(0, 2)]),
                  test=interactions([(0, 3), (1, 1)]), protocol="toy")
    assert Evaluator(split, sampled_negatives=2).candidates("test").shape == (2, 3)
    with pytest.raises(ConfigError, match=r"sampled_negatives=3: user 0 interacted with all but 2 of the 6 "
                       r"items \(1 evaluated users have fewer than 3 items to sample from\); lower "
                       r"sampled_negatives"):
        Evaluator(split, sampled_negatives=3)


def test_sampled_arguments_repr_and_full_ranking_candidates() -> None:
    split = random_split()
    assert repr(Evaluator(split, ks=(10,), metrics=("hit",), sampled_negatives=2, sampled_seed=7)) == (
        "Evaluator(users=80, items=50, ks=[10], metrics=['hit'], batch_size=1024, activity_slices=[5, 20], "
        "sampled_negatives=2, sampled_seed=7)"
    )
    for wrong in (0, -1, True, 2.0):
        with pytest.raises(ConfigError, match=r"sampled_negatives must be None \(full ranking\) or a "
                           r"positive int"):
            Evaluator(split, sampled_negatives=wrong)  # type: ignore[arg-type]
    for wrong in (-1, False, 1.5):
        with pytest.raises(ConfigError, match=r"sampled_seed must be an int >= 0"):
            Evaluator(split, sampled_seed=wrong)  # type: ignore[arg-type]
    with pytest.raises(RecforgeError, match=r"this evaluator ranks in full; candidates exist only with "
                       r"sampled_negatives"):
        Evaluator(split).candidates("test")
    assert Evaluator(split).protocol == "full ranking"


def test_evaluation_config_selects_the_protocol() -> None:
    from pydantic import ValidationError

    from recforge.config import EvaluationConfig

    assert EvaluationConfig().sampled_negatives is None
    assert EvaluationConfig().sampled_seed == 0
    assert EvaluationConfig(sampled_negatives=499, sampled_seed=3).sampled_negatives == 499
    for wrong in ({"sampled_negatives": 0}, {"sampled_negatives": True}, {"sampled_negatives": "499"},
                  {"sampled_seed": -1}, {"sampled_seed": 1.0}):
        with pytest.raises(ValidationError):
            EvaluationConfig(**wrong)
