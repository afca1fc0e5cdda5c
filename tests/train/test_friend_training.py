"""SSMTL's feature GAT on a tiny friend graph: each task switch trains, training is seeded and
resumes bit-identically, the run directory alone reloads the same scorer (the node features ride
with the weights), and nobody is recommended to themself."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from recforge.checkpoint import RESUME_DIR, RESUME_FILE
from recforge.config import config_from_dict
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

NODES = 24
TERMS = {
    "retrieval": {"in_batch_softmax": {"weight": 1.0, "temperature": 0.2}},
    "all": {
        "in_batch_softmax": {"weight": 1.0, "temperature": 0.2},
        "cca_ssg": {"weight": 0.1},
        "masked_features": {"weight": 0.1},
    },
}


@pytest.fixture(scope="module")
def friends_root(tmp_path_factory) -> Path:
    """A data root holding a 24-user Twitch-format graph (edges CSV + games JSON)."""
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("friends")
    twitch = root / "musae-twitch"
    twitch.mkdir()
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, NODES, (90, 2)) if a != b}
    (twitch / "DE_edges.csv").write_text("from,to\n" + "".join(f"{a},{b}\n" for a, b in sorted(pairs)))
    games = {str(n): sorted({int(g) for g in rng.integers(0, 40, 5)}) for n in range(NODES)}
    (twitch / "DE_features.json").write_text(json.dumps(games))
    return root


def config(root: Path, run_dir: Path, terms: str, epochs: int = 3):
    return config_from_dict(
        {
            "name": "friends",
            "seed": 4,
            "output_dir": str(run_dir),
            "data": {
                "name": "twitch-de",
                "root": str(root),
                "split": {"protocol": "links", "ratios": [0.6, 0.2, 0.2]},
            },
            "model": {"name": "feature_gat", "dim": 8, "num_heads": 2, "fanouts": [4, 3]},
            "objective": {"terms": TERMS[terms]},
            "train": {
                "epochs": epochs,
                "batch_size": 16,
                "num_threads": 1,
                "patience": 100,
                "early_stopping_metric": "recall@5",
            },
            "evaluation": {"ks": [5], "metrics": ["recall", "ndcg"]},
        }
    )


def resume_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / RESUME_DIR / RESUME_FILE))


@pytest.mark.parametrize("terms", sorted(TERMS))
def test_training_is_finite_seeded_and_resumes_bit_identically(friends_root, tmp_path, terms):
    full = train(config(friends_root, tmp_path / "full", terms), show_progress=False)
    again = train(config(friends_root, tmp_path / "again", terms), show_progress=False)
    assert all(math.isfinite(entry["loss"]) for entry in full.history)
    first, second = resume_tensors(full.run_dir), resume_tensors(again.run_dir)
    assert all(torch.equal(first[key], second[key]) for key in first)
    train(config(friends_root, tmp_path / "cut", terms, epochs=2), show_progress=False)
    resumed = train(config(friends_root, tmp_path / "cut", terms), resume=True, show_progress=False)
    assert [e["loss"] for e in resumed.history] == [e["loss"] for e in full.history]
    if terms == "all":
        logged = full.history[-1]
        assert {"in_batch_softmax", "cca_ssg", "masked_features"} <= set(logged)


def test_the_run_directory_alone_scores_and_never_recommends_a_user_to_themself(friends_root, tmp_path):
    result = train(config(friends_root, tmp_path / "run", "all"), show_progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)
    recommender = load_recommender(copy, device="cpu")
    queries, items = recommender.embeddings("test")
    want_queries, want_items = result.scorer.embeddings(result.data.split, "test")
    assert torch.allclose(queries, want_queries)
    assert torch.allclose(items, want_items)
    users = recommender.user_ids
    for user, top in zip(users, recommender.recommend(users, k=5), strict=True):
        assert user not in {entry.item for entry in top}
