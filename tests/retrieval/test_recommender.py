"""A Recommender answers from its run directory alone, in raw ids, and refuses what it cannot know."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recforge.config import config_from_dict
from recforge.errors import CheckpointError, RecforgeError, UnknownIdError
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

NUM_USERS, NUM_ITEMS, PER_USER = 10, 15, 6


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    rng = np.random.default_rng(3)
    rows = ["user,item,timestamp"]
    for user in range(NUM_USERS):
        for step, item in enumerate(rng.choice(NUM_ITEMS, size=PER_USER, replace=False)):
            rows.append(f"u{user},i{item},{100 * user + step}")
    root = tmp_path_factory.mktemp("recommender")
    data = root / "tiny.csv"
    data.write_text("\n".join(rows) + "\n")
    config = config_from_dict(
        {
            "name": "tiny",
            "output_dir": str(root / "run"),
            "data": {
                "name": str(data),
                "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
                "split": {"protocol": "leave_one_out"},
            },
            "model": {"name": "lightgcn", "dim": 8, "num_layers": 1},
            "train": {"epochs": 2, "batch_size": 16, "num_threads": 1, "early_stopping_metric": "recall@5"},
            "evaluation": {"ks": [5]},
        }
    )
    train(config, show_progress=False)
    data.unlink()  # what follows must not need the data
    return root / "run"


def test_inference_imports_no_training_code(run_dir):
    script = (
        "import sys\n"
        "from recforge.retrieval.recommender import load_recommender\n"
        f"load_recommender({str(run_dir)!r}, device='cpu').recommend(['u1'], k=3)\n"
        "print(sorted(name for name in sys.modules if name.startswith('recforge.train')))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_recommend_ranks_by_dot_product_and_skips_seen(run_dir):
    recommender = load_recommender(run_dir, device="cpu")
    user = recommender.user_index("u4")
    scores = recommender.user_embeddings()[user] @ recommender.item_embeddings().T
    seen = set(recommender.seen[user].indices.tolist())
    expected = [i for i in torch.argsort(scores, descending=True).tolist() if i not in seen][:4]
    (top,) = recommender.recommend(["u4"], k=4)
    assert [recommender.item_index(entry.item) for entry in top] == expected
    assert [entry.score for entry in top] == pytest.approx([scores[i].item() for i in expected])
    (with_seen,) = recommender.recommend(["u4"], k=NUM_ITEMS, exclude_seen=False)
    assert len(with_seen) == NUM_ITEMS  # nothing left out
    (everything,) = recommender.recommend(["u4"], k=NUM_ITEMS)
    assert len(everything) == NUM_ITEMS - PER_USER  # only what is new to the user


def test_similar_items_are_cosine_neighbours_without_the_item(run_dir):
    recommender = load_recommender(run_dir, device="cpu")
    similar = recommender.similar_items("i2", k=3)
    item = recommender.item_index("i2")
    table = torch.nn.functional.normalize(recommender.item_embeddings(), dim=-1)
    cosines = table @ table[item]
    cosines[item] = -2.0
    assert [recommender.item_index(entry.item) for entry in similar] == cosines.topk(3).indices.tolist()
    assert all(entry.item != "i2" for entry in similar)


def test_unknown_ids_and_bad_k_are_errors(run_dir):
    recommender = load_recommender(run_dir, device="cpu")
    with pytest.raises(UnknownIdError, match="unknown user id 'nobody'"):
        recommender.recommend(["u1", "nobody"])
    with pytest.raises(UnknownIdError, match="unknown item id 'i99'"):
        recommender.similar_items("i99")
    with pytest.raises(RecforgeError, match="k must be a positive integer, got 0"):
        recommender.recommend(["u1"], k=0)
    with pytest.raises(RecforgeError, match="no query for an item history"):
        recommender.recommend_for_history(["i1"])


def test_a_damaged_run_directory_is_a_clean_error(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    maps = json.loads((copy / "id_maps.json").read_text())
    (copy / "id_maps.json").write_text(json.dumps({**maps, "items": maps["items"][:-1]}))
    with pytest.raises(CheckpointError, match=r"maps 10 users and 14 items, the split has 10 and 15"):
        load_recommender(copy, device="cpu")
    (copy / "id_maps.json").unlink()
    with pytest.raises(CheckpointError, match=r"not a finished run directory \(id_maps.json is missing\)"):
        load_recommender(copy, device="cpu")
