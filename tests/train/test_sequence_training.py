"""Sequential encoders through the one trainer, on generated sequences with a learnable pattern."""

import numpy as np
import pytest

from recforge.config import config_from_dict
from recforge.errors import ConfigError
from recforge.train.run_dir import evaluate_run, load_run
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


def sequence_config(tmp_path, model, weights, **train):
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
            "objective": {"weights": weights},
            "train": {"epochs": 40, "batch_size": 32, "learning_rate": 1e-2, "patience": 40, **train},
            "evaluation": {"ks": [1, 10], "metrics": ["recall", "ndcg"]},
        }
    )


@pytest.mark.parametrize(
    ("model", "weights"),
    [
        (SMALL_SASREC, {"ce": 1.0}),
        (SMALL_GRU4REC, {"ce": 1.0}),
        (SMALL_GRU4REC, {"bce": 1.0}),
        (SMALL_SASREC, {"dros": 1.0, "ce": 1.0}),
    ],
    ids=["sasrec-ce", "gru4rec-ce", "gru4rec-bce", "sasrec-ce+dros"],
)
def test_sequential_model_learns_the_next_item(tmp_path, model, weights):
    config = sequence_config(tmp_path, model, weights, early_stopping_metric="recall@1")
    result = train(config, show_progress=False)
    # the pattern is deterministic: the held-out next item is (last item + 1); chance is 1/30
    assert result.test.metrics["recall@1"] > 0.8
    assert result.valid.metrics["recall@1"] > 0.8
    assert result.test.num_users == 200


def test_test_queries_include_the_valid_item(tmp_path):
    config = sequence_config(
        tmp_path,
        SMALL_GRU4REC,
        {"ce": 1.0},
        early_stopping_metric="recall@1",
    )
    result = train(config, show_progress=False)
    run = load_run(tmp_path / "run", device="cpu")
    valid_queries, _ = run.embeddings("valid")
    test_queries, _ = run.embeddings("test")
    assert not np.allclose(valid_queries.numpy(), test_queries.numpy())
    again = evaluate_run(run, ("test",))["test"]
    assert again.metrics == pytest.approx(result.test.metrics)


def test_graph_terms_are_refused_for_a_sequential_model(tmp_path):
    with pytest.raises(ConfigError, match=r"model 'sasrec' trains with the terms \['bce', 'ce', 'dros'\]"):
        sequence_config(tmp_path, {"name": "sasrec"}, {"bpr": 1.0})
