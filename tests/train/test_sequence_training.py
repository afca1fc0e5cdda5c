"""Sequential encoders through the one trainer, on generated sequences with a learnable pattern."""

import numpy as np
import pytest

from recforge.config import config_from_dict
from recforge.errors import ConfigError
from recforge.retrieval.recommender import evaluate_run, load_recommender
from recforge.train.trainer import train

SMALL_SASREC = {
    "name": "sasrec",
    "dim": 16,
    "max_length": 10,
    "num_layers": 1,
    "num_heads": 1,
    "inner_dim": 32,
    "dropout": 0.0,
    "attention_dropout": 0.0,
}
SMALL_GRU4REC = {"name": "gru4rec", "dim": 16, "hidden_dim": 32, "dropout": 0.0, "max_length": 10}


def cyclic_sequences_csv(tmp_path, num_users=200, num_items=30, length=12, seed=0):
    """Each user walks the item cycle 0 -> 1 -> ... from a random start: the next item is always
    the previous one plus one, which a sequential model learns and a popularity model cannot."""
    rng = np.random.default_rng(seed)
    rows = ["user,item,ts"]
    for user in range(num_users):
        start = rng.integers(num_items)
        for position in range(length):
            rows.append(f"u{user},i{(start + position) % num_items},{position}")
    path = tmp_path / "cycles.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def sequence_config(tmp_path, model, terms, **train):
    return config_from_dict(
        {
            "name": "seq",
            "seed": 3,
            "output_dir": str(tmp_path / "run"),
            "data": {
                "name": str(cyclic_sequences_csv(tmp_path)),
                "options": {"timestamp": "ts", "user": "user", "item": "item"},
                "split": {"protocol": "leave_one_out"},
            },
            "model": model,
            "objective": {"terms": terms},
            "train": {
                "epochs": 40,
                "batch_size": 32,
                "learning_rate": 1e-2,
                "patience": 40,
                "num_threads": 1,
                **train,
            },
            "evaluation": {"ks": [1, 10], "metrics": ["recall", "ndcg"]},
        }
    )


CE = {"ce": {"weight": 1.0}}


@pytest.mark.parametrize(
    ("model", "terms"),
    [
        (SMALL_SASREC, CE),
        (SMALL_GRU4REC, CE),
        (SMALL_GRU4REC, {"bce": {"weight": 1.0}}),
        (SMALL_SASREC, {"dros": {"weight": 1.0, "beta": 1.0, "exponent": 0.05}, **CE}),
    ],
    ids=["sasrec-ce", "gru4rec-ce", "gru4rec-bce", "sasrec-ce+dros"],
)
def test_sequential_model_learns_the_next_item(tmp_path, model, terms):
    config = sequence_config(tmp_path, model, terms, early_stopping_metric="recall@1")
    result = train(config, show_progress=False)
    # the pattern is deterministic: the held-out next item is (last item + 1); chance is 1/30
    assert result.test.metrics["recall@1"] > 0.8
    assert result.valid.metrics["recall@1"] > 0.8
    assert result.test.num_users == 200
    assert set(result.history[0]) >= set(terms)  # each term is logged


def test_test_queries_include_the_valid_item_and_histories_are_answered(tmp_path):
    config = sequence_config(tmp_path, SMALL_GRU4REC, CE, early_stopping_metric="recall@1")
    result = train(config, show_progress=False)
    recommender = load_recommender(tmp_path / "run", device="cpu")
    valid_queries, _ = recommender.embeddings("valid")
    test_queries, _ = recommender.embeddings("test")
    assert not np.allclose(valid_queries.numpy(), test_queries.numpy())
    again = evaluate_run(recommender, ("test",))["test"]
    assert again.metrics == pytest.approx(result.test.metrics)

    # inference in raw ids: after the walk i3 -> ... -> i8 the next item is i9
    assert recommender.reads_histories
    answer = recommender.recommend_for_history([f"i{item}" for item in range(3, 9)], k=3)
    assert answer[0].item == "i9"
    assert not {entry.item for entry in answer} & {f"i{item}" for item in range(3, 9)}  # history excluded
    # a user's query follows the whole known history (train, valid and test): u0 walked 12 items
    # from its start, so the next is start + 12; every item it has seen is left out
    rows = [line.split(",") for line in (tmp_path / "cycles.csv").read_text().splitlines()[1:]]
    walked = [int(item[1:]) for user, item, _ in rows if user == "u0"]
    top = recommender.recommend(["u0"], k=5)[0]
    assert top[0].item == f"i{(walked[-1] + 1) % 30}"
    assert not {entry.item for entry in top} & {f"i{item}" for item in walked}


def test_terms_a_sequential_model_cannot_feed_are_refused(tmp_path):
    # l2 penalises ego (layer-0) rows of users, uniformity reads user ids: a sequence model has neither
    with pytest.raises(
        ConfigError, match=r"objective.terms.l2: term 'l2' needs \['ego'\], which model 'sasrec'"
    ):
        sequence_config(tmp_path, {"name": "sasrec"}, {"ce": {"weight": 1.0}, "l2": {"weight": 1e-4}})
    with pytest.raises(
        ConfigError, match=r"term 'graph_alignment' needs \['graph_pairs'\], which model 'gru4rec'"
    ):
        sequence_config(tmp_path, {"name": "gru4rec"}, {"graph_alignment": {"weight": 1.0}})
