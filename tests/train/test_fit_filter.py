"""Training-free filters as recipes: `recforge train` fits them once and writes a run directory
that evaluation, inference and teacher export read like any other run's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from recforge.checkpoint import WEIGHTS_FILE, read_checkpoint_info
from recforge.config import config_from_dict
from recforge.distill.teacher import export_teacher
from recforge.errors import CheckpointError, ConfigError
from recforge.evaluation.evaluator import Evaluator
from recforge.models.filters import BSPM, EASE, GFCF
from recforge.retrieval.recommender import evaluate_run, load_recommender
from recforge.train.trainer import train

NUM_USERS, NUM_ITEMS, PER_USER = 30, 25, 9
SETTINGS = {
    "gfcf": {"alpha": 0.3, "num_factors": 5},
    "bspm": {"num_factors": 5, "ideal_weight": 0.2, "sharpening_time": 1.5},
    "ease": {"regularization": 3.0},
}


@pytest.fixture(scope="module")
def interactions_file(write_events) -> Path:
    return write_events(NUM_USERS, NUM_ITEMS, PER_USER, seed=4)


def filter_config(name: str, data: Path, run_dir: Path, **extra: object):
    raw: dict[str, object] = {
        "name": f"tiny-{name}",
        "seed": 5,
        "output_dir": str(run_dir),
        "data": {
            "name": str(data),
            "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
            "split": {"protocol": "random", "ratios": [0.6, 0.2, 0.2]},
        },
        "model": {"name": name, **SETTINGS[name]},
        "evaluation": {"ks": [5], "metrics": ["recall", "ndcg"]},
        **extra,
    }
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def runs(interactions_file, tmp_path_factory):
    root = tmp_path_factory.mktemp("filters")
    return {
        name: train(filter_config(name, interactions_file, root / name), show_progress=False)
        for name in SETTINGS
    }


def direct_filter(name: str, train_matrix: sp.csr_matrix):
    """The same filter built by hand from the library class, not through the recipe."""
    if name == "gfcf":
        return GFCF(train_matrix, alpha=0.3, num_factors=5, seed=5).fit()
    if name == "bspm":
        return BSPM(train_matrix, num_factors=5, ideal_weight=0.2, sharpening_time=1.5, seed=5).fit()
    return EASE(train_matrix, regularization=3.0).fit()


@pytest.mark.parametrize("name", SETTINGS)
def test_a_filter_run_is_a_complete_run_directory_without_epochs(name, runs):
    result = runs[name]
    for file in ("config.yaml", WEIGHTS_FILE, "split.npz", "id_maps.json", "metrics.json"):
        assert (result.run_dir / file).is_file(), file
    assert not (result.run_dir / "resume").exists()
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 0
    assert metrics["parameters"] == 0
    assert metrics["fitted_values"] == sum(
        t.numel() for t in load_file(str(result.run_dir / WEIGHTS_FILE)).values()
    )
    assert read_checkpoint_info(result.run_dir / WEIGHTS_FILE).model == name


@pytest.mark.parametrize("name", SETTINGS)
def test_valid_is_scored_from_train_and_test_from_train_plus_valid(name, runs):
    result = runs[name]
    split = result.data.split
    fitted = direct_filter(name, split.csr("train"))
    evaluator = Evaluator(split, ks=(5,), metrics=("recall", "ndcg"))
    before_test = split.csr("train") + split.csr("valid")
    valid = evaluator.evaluate_scores(lambda users: fitted.scores(users), "valid")
    test = evaluator.evaluate_scores(lambda users: fitted.history_scores(before_test[users.numpy()]), "test")
    assert result.valid.metrics == pytest.approx(valid.metrics, abs=1e-7)
    assert result.test.metrics == pytest.approx(test.metrics, abs=1e-7)
    # scoring test from train alone gives other numbers: the history really changed
    train_only = evaluator.evaluate_scores(lambda users: fitted.scores(users), "test")
    assert train_only.metrics != pytest.approx(test.metrics, abs=1e-7)


@pytest.mark.parametrize("name", SETTINGS)
def test_inference_from_the_run_directory_ranks_by_the_filter(name, runs):
    result = runs[name]
    recommender = load_recommender(result.run_dir, device="cpu")
    assert evaluate_run(recommender, ("test",))["test"].metrics == result.test.metrics
    split = result.data.split
    fitted = direct_filter(name, split.csr("train"))
    known = (split.csr("train") + split.csr("valid") + split.csr("test")).tocsr()
    user = 7
    scores = fitted.history_scores(known[[user]])[0].numpy().astype(np.float64)
    scores[known[user].indices] = -np.inf
    expected = [recommender.item_ids[i] for i in np.argsort(-scores, kind="stable")[:4]]
    answer = recommender.recommend([recommender.user_ids[user]], k=4)[0]
    assert [entry.item for entry in answer] == expected
    assert [entry.score for entry in answer] == pytest.approx(np.sort(scores)[::-1][:4], abs=1e-6)


def test_teacher_export_of_a_filter_run_holds_its_own_top_lists(runs):
    result = runs["gfcf"]
    signal = export_teacher(result.run_dir, k=6, device="cpu")
    split = result.data.split
    fitted = direct_filter("gfcf", split.csr("train"))
    scores = fitted.scores(torch.arange(split.num_users)).numpy().astype(np.float64)
    train_rows = split.csr("train")
    scores[train_rows.nonzero()] = -np.inf
    assert torch.equal(signal.top_items, torch.as_tensor(np.argsort(-scores, axis=1, kind="stable")[:, :6]))
    users, items = fitted.low_rank_factors()
    assert signal.query_embeddings is not None
    assert torch.equal(signal.query_embeddings, users)
    assert signal.item_embeddings is not None
    assert torch.equal(signal.item_embeddings, items)


def test_an_ease_teacher_has_lists_but_no_embeddings(runs):
    signal = export_teacher(runs["ease"].run_dir, k=5, device="cpu")
    assert signal.k == 5
    assert signal.item_embeddings is None
    assert signal.query_embeddings is None
    with pytest.raises(Exception, match="EASE has no embeddings"):
        load_recommender(runs["ease"].run_dir, device="cpu").similar_items("i3")


def test_a_tampered_fitted_state_is_a_checkpoint_error(runs, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(runs["gfcf"].run_dir, copy)
    weights = copy / WEIGHTS_FILE
    metadata = {key: str(value) for key, value in read_checkpoint_info(weights).__dict__.items()}
    save_file({"model.right_singular_vectors": torch.zeros(NUM_ITEMS, 2)}, str(weights), metadata=metadata)
    with pytest.raises(CheckpointError, match="right_singular_vectors' must be float32"):
        load_recommender(copy, device="cpu")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"objective": {"terms": {"bpr": {"weight": 1.0}}}}, "training-free filter.*remove the objective"),
        ({"train": {"epochs": 3}}, "train.epochs: .*training-free filter.*reads only train.num_threads"),
        ({"model": {"name": "gfcf", "dim": 8}}, "model.dim"),
        ({"model": {"name": "ease", "regularization": -1.0}}, "model.regularization"),
    ],
)
def test_filter_configs_refuse_settings_that_would_do_nothing(interactions_file, tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        filter_config("gfcf", interactions_file, tmp_path, **extra)


def test_a_filter_run_cannot_be_resumed(interactions_file, runs):
    with pytest.raises(ConfigError, match="no training to resume"):
        train(
            filter_config("gfcf", interactions_file, runs["gfcf"].run_dir), resume=True, show_progress=False
        )
