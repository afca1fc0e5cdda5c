"""RGT through the one trainer: rationale splitting, anchors, ablation switches, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recforge.config import config_from_dict
from recforge.errors import ConfigError
from recforge.train.run_dir import evaluate_run, load_run
from recforge.train.trainer import train

FULL_WEIGHTS = {
    "bpr": 1.0,
    "reconstruction": 0.01,
    "contrast": 0.02,
    "cir": 0.01,
    "distill": 0.01,
    "l2": 1e-4,
}
SMALL_RGT = {
    "name": "rgt",
    "dim": 16,
    "num_layers": 2,
    "num_heads": 2,
    "anchors": 8,
    "anchor_cutoff": 3,
    "anchor_resample_every": 2,
    "rationale_ratio": 0.7,
    "rationale_every": 3,
    "extra_pair_ratio": 0.05,
}


def communities_csv(tmp_path, num_users=120, num_items=60, per_user=12, seed=0, islands=False):
    """Users of community c interact with items of community c (two communities): graph models must
    rank in-community items first. With ``islands`` the two halves share no edge at all (a
    disconnected graph, so most nodes are far from every anchor of the other half)."""
    rng = np.random.default_rng(seed)
    rows = ["user,item"]
    for user in range(num_users):
        community = user % 2
        pool = np.arange(num_items // 2) + community * (num_items // 2)
        if not islands and rng.random() < 0.1:
            pool = np.arange(num_items)
        for item in rng.choice(pool, size=per_user, replace=False):
            rows.append(f"u{user},i{item}")
    path = tmp_path / "communities.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def rgt_config(tmp_path, data_path, model=None, weights=None, **train_options):
    return config_from_dict(
        {
            "name": "rgt",
            "seed": 7,
            "output_dir": str(tmp_path / "run"),
            "data": {
                "name": str(data_path),
                "options": {"user": "user", "item": "item"},
                "split": {"protocol": "random", "ratios": [0.7, 0.1, 0.2]},
            },
            "model": SMALL_RGT | (model or {}),
            "objective": {"weights": FULL_WEIGHTS if weights is None else weights},
            "train": {
                "epochs": 15,
                "batch_size": 128,
                "learning_rate": 1e-2,
                "patience": 15,
                "early_stopping_metric": "recall@10",
                **train_options,
            },
            "evaluation": {"ks": [10], "metrics": ["recall", "ndcg"]},
        }
    )


def test_rgt_learns_communities_and_reloads(tmp_path):
    result = train(rgt_config(tmp_path, communities_csv(tmp_path)), show_progress=False)
    # a random ranking finds ~10 of the 57 unseen items: recall ≈ 0.18; communities make it easy
    assert result.test.metrics["recall@10"] > 0.35
    assert set(result.history[0]) >= set(FULL_WEIGHTS)
    assert result.task.anchor_seconds  # anchors were computed (and timed)
    run = load_run(tmp_path / "run", device="cpu")
    assert evaluate_run(run, ("test",))["test"].metrics == pytest.approx(result.test.metrics)


def test_rationale_split_is_a_partition_of_the_training_edges(tmp_path):
    result = train(rgt_config(tmp_path, communities_csv(tmp_path), epochs=1), show_progress=False)
    task = result.task
    task._update_rationale()
    num_edges = len(task.edge_users)
    masked = len(task.masked_users)
    assert masked == num_edges - round(0.7 * num_edges)
    rationale_nnz = task.rationale_adjacency.values().numel() // 2
    complement_nnz = task.complement_adjacency.values().numel() // 2
    assert rationale_nnz + complement_nnz == num_edges
    # the decoder attends along both directions of each masked edge, the extra pairs and self-loops
    num_nodes = task.num_users + task.num_items
    extra = int(0.05 * num_edges)
    assert task.decoder_edges.shape == (2, 2 * masked + 2 * extra + num_nodes)


def test_without_gumbel_noise_the_rationale_is_the_top_attention_edges(tmp_path):
    model = {"gumbel_temperature": 1e-9, "extra_pair_ratio": 0.0}
    task = train(rgt_config(tmp_path, communities_csv(tmp_path), model, epochs=1), show_progress=False).task
    task._update_rationale()
    num_edges = len(task.edge_users)
    with torch.no_grad():  # the attention the task ranked: graph edges both ways plus self-loops
        both_ways = task._both_directions(task.edge_users, task.edge_items)
        importance = task.model.edge_importance(task._with_self_loops(both_ways))
    per_edge = importance[:num_edges] + importance[num_edges : 2 * num_edges]
    kept = torch.ones(num_edges, dtype=torch.bool)
    kept[_masked_positions(task)] = False
    assert per_edge[kept].min() >= per_edge[~kept].max()


def _masked_positions(task) -> torch.Tensor:
    keys = task.edge_users * task.num_items + task.edge_items
    masked_keys = task.masked_users * task.num_items + task.masked_items
    return torch.isin(keys, masked_keys).nonzero().squeeze(1)


@pytest.mark.parametrize(
    ("model", "weights"),
    [
        ({"position_encoding": False}, FULL_WEIGHTS),
        ({"masked_autoencoding": False}, {k: v for k, v in FULL_WEIGHTS.items() if k != "reconstruction"}),
        ({}, {k: v for k, v in FULL_WEIGHTS.items() if k != "cir"}),
        ({}, {k: v for k, v in FULL_WEIGHTS.items() if k != "distill"}),
    ],
    ids=["no-position", "no-masking", "no-cir", "no-distill"],
)
def test_each_ablation_trains(tmp_path, model, weights):
    result = train(
        rgt_config(tmp_path, communities_csv(tmp_path), model, weights, epochs=2), show_progress=False
    )
    assert np.isfinite(result.history[-1]["loss"])
    assert set(weights) <= set(result.history[-1])


def test_a_disconnected_graph_trains_and_far_nodes_get_zero_weights(tmp_path):
    path = communities_csv(tmp_path, islands=True)
    config = rgt_config(
        tmp_path, path, {"anchors": 2, "anchor_cutoff": 1, "anchor_resample_every": 0}, epochs=3
    )
    result = train(config, show_progress=False)
    weights = result.model.anchor_weights
    assert (weights.sum(1) == 0).sum() > 0  # nodes beyond every anchor's reach: all-zero weights
    assert np.isfinite(result.history[-1]["loss"])
    users, items = result.task.embeddings("test")
    assert torch.isfinite(users).all()
    assert torch.isfinite(items).all()
    assert result.test.metrics["recall@10"] > 0.2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"rationale_ratio": 1.0}, "model.rationale_ratio"),
        ({"rationale_ratio": 0.0}, "model.rationale_ratio"),
        ({"anchor_cutoff": 0}, "model.anchor_cutoff"),
        ({"anchors": 0}, "model.anchors"),
    ],
)
def test_bad_settings_are_config_errors(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        rgt_config(tmp_path, communities_csv(tmp_path), override)


def test_reconstruction_without_masking_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"needs model\.masked_autoencoding"):
        rgt_config(tmp_path, communities_csv(tmp_path), {"masked_autoencoding": False})


def test_more_anchors_than_nodes_is_a_clear_error(tmp_path):
    config = rgt_config(tmp_path, communities_csv(tmp_path), {"anchors": 10_000})
    with pytest.raises(ConfigError, match="10000 anchors"):
        train(config, show_progress=False)
