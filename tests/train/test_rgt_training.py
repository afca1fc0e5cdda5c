"""RGT through the one trainer: rationale splitting, anchors, ablations, bad input.

The ablations are observed through what a run exposes: which terms the config accepts, what the log
records, which tensors the checkpoint holds, and (BPR alone) the very same run as LightGCN.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from recforge.checkpoint import RESUME_DIR, RESUME_FILE, WEIGHTS_FILE
from recforge.config import config_from_dict
from recforge.errors import ConfigError
from recforge.objectives.objective import needs_of
from recforge.recipes import RECIPES, graph_inputs
from recforge.retrieval.recommender import evaluate_run, load_recommender
from recforge.tasks.base import TaskSetup
from recforge.tasks.rationale import RationaleTask
from recforge.train.trainer import train

FULL_TERMS = {
    "bpr": {"weight": 1.0},
    "reconstruction": {"weight": 0.01},
    "contrast": {"weight": 0.02, "temperature": 0.2},
    "cir": {"weight": 0.01},
    "distill": {"weight": 0.01},
    "l2": {"weight": 1e-4},
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
TIMINGS = ("train_seconds", "eval_seconds")


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


def rgt_config(tmp_path, data_path, model=None, terms=None, overrides=(), base=SMALL_RGT, **train_options):
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
            "model": base | (model or {}),
            "objective": {"terms": FULL_TERMS if terms is None else terms},
            "train": {
                "epochs": 15,
                "batch_size": 128,
                "learning_rate": 1e-2,
                "patience": 15,
                "early_stopping_metric": "recall@10",
                "num_threads": 1,
                **train_options,
            },
            "evaluation": {"ks": [10], "metrics": ["recall", "ndcg"]},
        },
        overrides,
    )


def checkpoint_keys(run_dir) -> list[str]:
    with safe_open(str(run_dir / WEIGHTS_FILE), framework="pt") as handle:
        return sorted(handle.keys())


def weighted_sum_of_parts(entry, terms) -> float:
    return sum(settings["weight"] * entry[name] for name, settings in terms.items())


def test_rgt_learns_communities_and_reloads(tmp_path):
    result = train(rgt_config(tmp_path, communities_csv(tmp_path)), show_progress=False)
    # a random ranking finds ~10 of the 57 unseen items: recall ≈ 0.18; communities make it easy
    assert result.test.metrics["recall@10"] > 0.35
    assert set(result.history[0]) >= set(FULL_TERMS)
    assert result.task.anchor_seconds  # anchors were computed (and timed)
    recommender = load_recommender(tmp_path / "run", device="cpu")  # reads the encoder's tensors alone
    assert evaluate_run(recommender, ("test",))["test"].metrics == pytest.approx(result.test.metrics)


def test_rationale_split_is_a_partition_of_the_training_edges(tmp_path):
    result = train(rgt_config(tmp_path, communities_csv(tmp_path), epochs=1), show_progress=False)
    task = result.task
    rationale = task.state_dict()["rationale"]  # the split in force at the end of the epoch
    num_edges = len(task.edge_users)
    assert num_edges == len(result.data.split.train)
    assert rationale.shape == (num_edges,)
    assert int(rationale.sum()) == round(0.7 * num_edges)
    masked = len(task.masked_users)
    assert masked == num_edges - round(0.7 * num_edges)
    # G_R and G_C hold both directions of their edges, and together every training edge once
    rationale_graph = task.rationale_adjacency.to_dense() != 0
    complement_graph = task.complement_adjacency.to_dense() != 0
    full_graph = task.full_adjacency.to_dense() != 0
    assert int(rationale_graph.sum()) == 2 * (num_edges - masked)
    assert int(complement_graph.sum()) == 2 * masked
    assert not (rationale_graph & complement_graph).any()
    assert torch.equal(rationale_graph | complement_graph, full_graph)
    # the decoder attends along both directions of each masked edge, the extra pairs and self-loops
    num_nodes = task.num_users + task.num_items
    extra = int(0.05 * num_edges)
    assert task.decoder_edges.shape == (2, 2 * masked + 2 * extra + num_nodes)


def test_without_gumbel_noise_the_rationale_is_the_top_attention_edges(tmp_path):
    config = rgt_config(
        tmp_path, communities_csv(tmp_path), {"gumbel_temperature": 1e-9, "extra_pair_ratio": 0.0}, epochs=1
    )
    result = train(config, show_progress=False)
    # a fresh task over the trained model draws its first rationale at its first step
    model, split, device = result.model, result.data.split, torch.device("cpu")
    graph = graph_inputs(RECIPES["rgt"], model, split.csr("train"), device)
    task = RationaleTask(TaskSetup(model, split, config, device, needs_of(config.objective.terms), graph))
    task.on_epoch(0)
    task.outputs(next(iter(task.batches)))
    kept = task.state_dict()["rationale"]
    users, items = task.edge_users, task.edge_items + task.num_users
    nodes = torch.arange(task.num_users + task.num_items)
    attended = torch.stack([torch.cat([users, items, nodes]), torch.cat([items, users, nodes])])
    with torch.no_grad():  # the attention it ranks by: both directions of each edge, plus self-loops
        importance = model.edge_importance(attended)
    num_edges = len(users)
    per_edge = importance[:num_edges] + importance[num_edges : 2 * num_edges]
    assert per_edge.max() > per_edge.min()  # the attention is not flat, so the order is the test
    assert per_edge[kept].min() >= per_edge[~kept].max()


# -- ablations --------------------------------------------------------------------------------------


def test_without_masked_autoencoding_reconstruction_is_refused(tmp_path):
    data_path = communities_csv(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"objective.terms.reconstruction: term 'reconstruction' needs \['masked_edges'\], which model "
        r"'rgt' \(as configured\) does not provide",
    ):
        rgt_config(tmp_path, data_path, {"masked_autoencoding": False})
    # the same term is accepted with the autoencoder, and the ablation drops the term with it
    assert "reconstruction" in rgt_config(tmp_path, data_path).objective.terms
    config = rgt_config(
        tmp_path,
        data_path,
        {"masked_autoencoding": False},
        overrides=["objective.terms.reconstruction=null"],
        epochs=2,
    )
    result = train(config, show_progress=False)
    assert "reconstruction" not in result.history[-1]
    assert set(FULL_TERMS) - {"reconstruction"} <= set(result.history[-1])


def test_bpr_alone_reproduces_lightgcn_epoch_for_epoch(tmp_path):
    """RGT's extra parts act through the self-supervised terms only: with BPR + L2 it is LightGCN,
    the same log, metrics and embeddings for the same seed and settings (RESULTS.md relies on it)."""
    data_path = communities_csv(tmp_path)
    terms = {"bpr": {"weight": 1.0}, "l2": {"weight": 1e-4}}
    rgt = train(rgt_config(tmp_path / "rgt", data_path, terms=terms, epochs=4), show_progress=False)
    lightgcn_model = {"name": "lightgcn", "dim": SMALL_RGT["dim"], "num_layers": SMALL_RGT["num_layers"]}
    lightgcn = train(
        rgt_config(tmp_path / "lightgcn", data_path, terms=terms, base=lightgcn_model, epochs=4),
        show_progress=False,
    )

    def log(result):
        lines = (result.run_dir / "log.jsonl").read_text().splitlines()
        return [
            {key: value for key, value in json.loads(line).items() if key not in TIMINGS} for line in lines
        ]

    assert len(log(rgt)) == 4
    assert log(rgt) == log(lightgcn)
    assert rgt.valid.metrics == lightgcn.valid.metrics
    assert rgt.test.metrics == lightgcn.test.metrics
    assert rgt.best_epoch == lightgcn.best_epoch
    rgt_weights = load_file(str(rgt.run_dir / WEIGHTS_FILE))
    lightgcn_weights = load_file(str(lightgcn.run_dir / WEIGHTS_FILE))
    assert torch.equal(rgt_weights["model.embedding"], lightgcn_weights["model.embedding"])


def test_distill_heads_are_objective_parameters_trained_and_saved(tmp_path):
    result = train(rgt_config(tmp_path, communities_csv(tmp_path), epochs=2), show_progress=False)
    heads = {
        f"terms.distill.students.{view}.{kind}"
        for view in ("final", "rationale", "complement")
        for kind in ("weight", "bias")
    }
    assert {name for name, _ in result.objective.named_parameters()} == heads
    assert not any("student" in name for name in result.model.state_dict())  # not the encoder's
    keys = checkpoint_keys(result.run_dir)
    assert {key for key in keys if key.startswith("objective.")} == {f"objective.{name}" for name in heads}
    assert {key for key in keys if key.startswith("model.")} == {
        f"model.{name}" for name in result.model.state_dict()
    }
    saved = load_file(str(result.run_dir / WEIGHTS_FILE))
    for name, tensor in result.objective.state_dict().items():  # the best epoch's heads, reloaded
        assert torch.equal(saved[f"objective.{name}"], tensor), name
    # the one Adam steps the heads: the resume state holds moments for them after the encoder's
    resume = load_file(str(result.run_dir / RESUME_DIR / RESUME_FILE))
    first_head = len(list(result.model.parameters()))
    for index in range(first_head, first_head + len(heads)):
        assert resume[f"optimizer.{index}.exp_avg"].abs().sum() > 0, index
    for name, _ in result.objective.named_parameters():
        assert f"objective.{name}" in resume

    # without the term there are no heads anywhere, and the log has no distill part
    dropped = train(
        rgt_config(
            tmp_path / "no-distill",
            communities_csv(tmp_path),
            overrides=["objective.terms.distill=null"],
            epochs=2,
        ),
        show_progress=False,
    )
    assert list(dropped.objective.parameters()) == []
    assert not any(key.startswith("objective.") for key in checkpoint_keys(dropped.run_dir))
    assert "distill" not in dropped.history[-1]


@pytest.mark.parametrize(
    ("model", "dropped"),
    [({"position_encoding": False}, None), ({}, "cir"), ({}, "contrast"), ({}, "distill")],
    ids=["no-position", "no-cir", "no-contrast", "no-distill"],
)
def test_each_ablation_logs_exactly_its_terms(tmp_path, model, dropped):
    overrides = [f"objective.terms.{dropped}=null"] if dropped else []
    config = rgt_config(tmp_path, communities_csv(tmp_path), model, overrides=overrides, epochs=2)
    terms = {name: settings for name, settings in FULL_TERMS.items() if name != dropped}
    assert list(config.objective.terms) == list(terms)
    result = train(config, show_progress=False)
    for entry in result.history:
        parts = set(entry) - {"epoch", "lr", "loss", "valid", "best", *TIMINGS}
        assert parts == set(terms)
        assert entry["loss"] == pytest.approx(weighted_sum_of_parts(entry, terms), rel=1e-5)
    position_keys = [key for key in checkpoint_keys(result.run_dir) if key.startswith("model.position.")]
    if model.get("position_encoding") is False:
        assert position_keys == []
        assert result.task.anchor_seconds == []  # no anchors are drawn for a model without positions
        assert not result.model.anchor_weights.any()
    else:
        assert position_keys
        assert result.task.anchor_seconds


def test_a_disconnected_graph_trains_and_far_nodes_get_zero_weights(tmp_path):
    path = communities_csv(tmp_path, islands=True)
    config = rgt_config(
        tmp_path, path, {"anchors": 2, "anchor_cutoff": 1, "anchor_resample_every": 0}, epochs=3
    )
    result = train(config, show_progress=False)
    weights = result.model.anchor_weights
    assert (weights.sum(1) == 0).sum() > 0  # nodes beyond every anchor's reach: all-zero weights
    assert np.isfinite(result.history[-1]["loss"])
    users, items = result.scorer.embeddings(result.data.split, "test")
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


def test_more_anchors_than_nodes_is_a_clear_error(tmp_path):
    config = rgt_config(tmp_path, communities_csv(tmp_path), {"anchors": 10_000})
    with pytest.raises(ConfigError, match="10000 anchors"):
        train(config, show_progress=False)
