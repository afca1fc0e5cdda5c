"""GSAU through the one trainer: it learns a sequential pattern, every scoring mode works, joint
batches visit every window and every training pair once, and odd data (items seen only in test)
trains without NaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recforge.config import config_from_dict
from recforge.data.dataset import Interactions
from recforge.data.sequences import SequenceBatches, sequence_examples
from recforge.errors import ConfigError
from recforge.train.run_dir import evaluate_run, load_run
from recforge.train.tasks import JointBatches
from recforge.train.trainer import train

from .test_sequence_training import SMALL_SASREC, cyclic_sequences_csv

SMALL_GSAU = {**SMALL_SASREC, "name": "gsau", "graph_layers": 2}
GSAU_WEIGHTS = {
    "graph_alignment": 1.0,
    "sequence_ce": 1.0,
    "graph_uniformity": 0.1,
    "sequence_uniformity": 0.1,
}


def gsau_config(tmp_path, data_path, model=None, weights=None, base=SMALL_GSAU, **train_options):
    return config_from_dict(
        {
            "name": "gsau",
            "seed": 5,
            "output_dir": str(tmp_path / "run"),
            "data": {
                "name": str(data_path),
                "options": {"timestamp": "ts", "user": "user", "item": "item"},
                "split": {"protocol": "leave_one_out"},
            },
            "model": base | (model or {}),
            "objective": {"weights": weights or GSAU_WEIGHTS},
            "train": {
                "epochs": 30,
                "batch_size": 32,
                "learning_rate": 1e-2,
                "patience": 30,
                "early_stopping_metric": "recall@1",
                **train_options,
            },
            "evaluation": {"ks": [1, 10], "metrics": ["recall", "ndcg"]},
        }
    )


def test_gsau_learns_the_next_item_and_reloads(tmp_path):
    result = train(gsau_config(tmp_path, cyclic_sequences_csv(tmp_path)), show_progress=False)
    assert result.test.metrics["recall@1"] > 0.8  # chance is 1/30
    assert set(result.history[0]) >= set(GSAU_WEIGHTS)  # each term is logged
    run = load_run(tmp_path / "run", device="cpu")
    assert evaluate_run(run, ("test",))["test"].metrics == pytest.approx(result.test.metrics)


@pytest.mark.parametrize("score_with", ["graph", "both"])
def test_graph_and_joint_scoring(tmp_path, score_with):
    config = gsau_config(tmp_path, cyclic_sequences_csv(tmp_path), {"score_with": score_with}, epochs=3)
    result = train(config, show_progress=False)
    users, items = result.task.embeddings("test")
    width = 2 * SMALL_GSAU["dim"] if score_with == "both" else SMALL_GSAU["dim"]
    assert users.shape == (200, width)
    assert items.shape == (30, width)
    assert torch.isfinite(users).all()
    assert torch.isfinite(items).all()
    # graph rows are unit vectors, so every score is a cosine (two of them summed for "both")
    assert items.norm(dim=1).max() <= (2**0.5 if score_with == "both" else 1.0) + 1e-5
    assert 0.0 <= result.test.metrics["recall@10"] <= 1.0


def test_joint_batches_visit_every_window_and_pair_once_per_epoch():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(12), 7)
    train_pairs = Interactions(
        users=users, items=rng.integers(0, 20, len(users)), timestamps=np.tile(np.arange(7), 12)
    )
    windows = SequenceBatches(sequence_examples(train_pairs, 12, 4), 20, batch_size=5, seed=1)
    batches = JointBatches(windows, train_pairs, seed=1)
    first = list(batches)
    assert len(first) == len(windows) == len(batches)
    seen = sorted(
        zip(
            torch.cat([p.users for _, p in first]).tolist(),
            torch.cat([p.items for _, p in first]).tolist(),
            strict=True,
        )
    )
    assert seen == sorted(zip(users.tolist(), train_pairs.items.tolist(), strict=True))
    sizes = [len(p.users) for _, p in first]
    assert max(sizes) - min(sizes) <= 1  # near-equal cuts, none empty
    batches.set_epoch(0)
    again = list(batches)
    assert all(torch.equal(a.users, b.users) for (_, a), (_, b) in zip(first, again, strict=True))
    second = list(batches)  # epoch 1: another order
    assert not all(torch.equal(a.users, b.users) for (_, a), (_, b) in zip(first, second, strict=True))


def test_terms_of_other_models_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"model 'gsau' trains with the terms"):
        gsau_config(tmp_path, cyclic_sequences_csv(tmp_path), weights={"ce": 1.0})
    with pytest.raises(ConfigError, match=r"model 'lightgcn' trains with the terms"):
        config_from_dict(
            {
                "name": "x",
                "data": {"name": "ml-100k"},
                "model": {"name": "lightgcn"},
                "objective": {"weights": {"graph_alignment": 1.0}},
            }
        )


@pytest.mark.parametrize("model", ["sasrec", "gsau"])
def test_items_seen_only_in_test_are_ranked_not_dropped(tmp_path, model):
    """An item whose only interaction is a user's last one is unseen in training: it stays in the
    catalogue (it can be recommended and counted as a hit), its graph node has no edges, and
    nothing becomes NaN."""
    path = cyclic_sequences_csv(tmp_path)
    path.write_text(path.read_text() + "u0,brand-new,99\n")
    base = SMALL_GSAU if model == "gsau" else SMALL_SASREC
    config = gsau_config(
        tmp_path, path, weights=GSAU_WEIGHTS if model == "gsau" else {"ce": 1.0}, base=base, epochs=2
    )
    result = train(config, show_progress=False)
    split = result.data.split
    assert split.num_items == 31
    new_item = int(np.flatnonzero(result.data.dataset.item_ids == "brand-new")[0])
    assert new_item in split.test.items.tolist()
    assert new_item not in split.train.items.tolist()
    assert result.test.num_users == 200
    users, items = result.task.embeddings("test")
    assert torch.isfinite(users).all()
    assert torch.isfinite(items).all()
