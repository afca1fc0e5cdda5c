"""The contract every recipe keeps, checked for all seven models (as scikit-learn checks every
estimator): a short training run is finite and seeded-deterministic, resuming after an
interruption is bit-identical to not stopping, the run directory alone reloads the same scorer
(safetensors round trip), and the tables have the embedding contract's shapes."""

from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from recforge.checkpoint import RESUME_DIR, RESUME_FILE, WEIGHTS_FILE
from recforge.config import config_from_dict, load_config
from recforge.config_base import ModelSettings
from recforge.recipes import FILTERS, RECIPES, recipe_of
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

REPO = Path(__file__).resolve().parents[1]
NUM_USERS, NUM_ITEMS, PER_USER, DIM = 12, 20, 8, 8

MODEL_SETTINGS: dict[str, dict[str, object]] = {
    "mf": {},
    "lightgcn": {"num_layers": 2},
    "gat": {"num_layers": 1, "num_heads": 2},
    # anchors resampled every 2 epochs and the rationale every 3 steps: a resume point (an epoch
    # boundary, 5 steps an epoch) falls inside both periods, so their saved state is exercised
    "rgt": {"anchors": 4, "anchor_cutoff": 3, "anchor_resample_every": 2, "rationale_every": 3},
    "sasrec": {"max_length": 5, "num_layers": 1, "num_heads": 2, "inner_dim": 16},
    "gru4rec": {"max_length": 5, "hidden_dim": 8},
    "text_sasrec": {"max_length": 5, "num_layers": 1, "num_heads": 2, "inner_dim": 16},
    "gsau": {"max_length": 5, "num_layers": 1, "num_heads": 2, "inner_dim": 16, "graph_layers": 1},
}
TERMS: dict[str, dict[str, dict[str, float]]] = {
    "mf": {"bpr": {"weight": 1.0}, "l2": {"weight": 1e-4}},
    "lightgcn": {"bpr": {"weight": 1.0}, "l2": {"weight": 1e-4}},
    "gat": {"softmax": {"weight": 1.0}, "uniformity": {"weight": 0.5}},
    "rgt": {
        "bpr": {"weight": 1.0},
        "reconstruction": {"weight": 0.1},
        "contrast": {"weight": 0.1},
        "cir": {"weight": 0.1},
        "distill": {"weight": 0.1},
        "l2": {"weight": 1e-4},
    },
    "sasrec": {"ce": {"weight": 1.0}, "bce": {"weight": 0.5}},
    "gru4rec": {"ce": {"weight": 1.0}, "dros": {"weight": 0.1}},
    "text_sasrec": {"ce": {"weight": 1.0}},
    "gsau": {
        "graph_alignment": {"weight": 1.0},
        "ce": {"weight": 1.0},
        "graph_uniformity": {"weight": 0.1},
        "sequence_uniformity": {"weight": 0.1},
    },
}
# the friend-graph GAT reads node features of a user-user graph: its contract (seeded, resumable,
# reloadable from its run directory) is checked on a friend graph in tests/train/test_friend_training.py
FRIEND_GRAPH_RECIPES = {"feature_gat"}
NAMES = sorted(set(RECIPES) - FRIEND_GRAPH_RECIPES)


def test_every_model_has_a_recipe_and_its_test_settings():
    assert set(RECIPES) == {
        "mf",
        "lightgcn",
        "gat",
        "rgt",
        "sasrec",
        "gru4rec",
        "gsau",
        "text_sasrec",
        "feature_gat",
    }
    assert set(MODEL_SETTINGS) == set(TERMS) == set(NAMES)
    assert {name for name, recipe in RECIPES.items() if recipe.reads_node_features} == FRIEND_GRAPH_RECIPES


@pytest.mark.parametrize("name", NAMES)
def test_recipe_config_is_named_by_its_key_and_builds_its_encoder(name):
    recipe = recipe_of(name)
    settings = recipe.config.model_validate({"name": name, "dim": DIM, **MODEL_SETTINGS[name]})
    assert isinstance(settings, ModelSettings)
    model = recipe.build(settings, NUM_USERS, NUM_ITEMS)
    assert isinstance(model, recipe.encoder)
    # every encoder argument the config passes is a constructor parameter
    parameters = inspect.signature(recipe.encoder).parameters
    assert set(settings.encoder_arguments()) <= set(parameters)


def build(name: str) -> torch.nn.Module:
    recipe = recipe_of(name)
    settings = recipe.config.model_validate({"name": name, "dim": DIM, **MODEL_SETTINGS[name]})
    return recipe.build(settings, NUM_USERS, NUM_ITEMS)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_construction_equals_seeded_reset_parameters(name):
    torch.manual_seed(123)
    model = build(name)
    first = {key: value.clone() for key, value in model.state_dict().items()}
    model.reset_parameters()  # unseeded: the next draw differs
    assert any(not torch.equal(first[key], value) for key, value in model.state_dict().items())
    torch.manual_seed(123)
    model.reset_parameters()
    for key, value in model.state_dict().items():
        assert torch.equal(first[key], value), key


@pytest.mark.parametrize("name", NAMES)
def test_repr_shows_the_sizes(name):
    text = repr(build(name))
    assert f"items={NUM_ITEMS}" in text
    assert f"dim={DIM}" in text
    if recipe_of(name).takes_users:
        assert f"users={NUM_USERS}" in text


def test_unknown_model_lists_the_recipes():
    with pytest.raises(Exception, match="unknown model 'ngcf'; choose one of: feature_gat, gat, gru4rec"):
        recipe_of("ngcf")


@pytest.mark.parametrize(
    "path", sorted([*REPO.glob("configs/*/*.yaml"), *REPO.glob("benchmarks/configs/*.yaml")]), ids=str
)
def test_every_shipped_config_validates(path):
    config = load_config(path)
    assert config.model.name in RECIPES or config.model.name in FILTERS


# -- tiny end-to-end runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def interactions_file(write_events) -> Path:
    """12 users × 8 time-stamped interactions over 20 items: every protocol and model can run."""
    return write_events(NUM_USERS, NUM_ITEMS, PER_USER, seed=0)


@pytest.fixture(scope="module")
def titled_file(write_titled_events) -> Path:
    """The same events with item titles (RecBole atomic files), for the recipes that read text."""
    return write_titled_events(NUM_USERS, NUM_ITEMS, PER_USER, seed=0)


def tiny_config(name: str, data: Path, run_dir: Path, epochs: int):
    reads_titles = recipe_of(name).reads_titles
    options = {} if reads_titles else {"user": "user", "item": "item", "timestamp": "timestamp"}
    return config_from_dict(
        {
            "name": f"tiny-{name}",
            "seed": 11,
            "output_dir": str(run_dir),
            "data": {
                "name": str(data),
                "options": options,
                "split": {"protocol": "leave_one_out"},
            },
            "model": {"name": name, "dim": DIM, **MODEL_SETTINGS[name]},
            "objective": {"terms": TERMS[name]},
            "train": {
                "epochs": epochs,
                "batch_size": 16,
                "learning_rate": 1e-2,
                "num_negatives": 2,
                "patience": 100,
                "num_threads": 1,
                "device": "cpu",
                "early_stopping_metric": "recall@5",
            },
            "evaluation": {"ks": [5], "metrics": ["recall", "ndcg"]},
        }
    )


@pytest.fixture(scope="module")
def runs(interactions_file, titled_file, tmp_path_factory):
    """Per model: a 3-epoch run, the same run again, and a run cut after 2 epochs then resumed."""
    made = {}
    for name in NAMES:
        data = titled_file if recipe_of(name).reads_titles else interactions_file
        root = tmp_path_factory.mktemp(name)
        full = train(tiny_config(name, data, root / "full", 3), show_progress=False)
        again = train(tiny_config(name, data, root / "again", 3), show_progress=False)
        train(tiny_config(name, data, root / "cut", 2), show_progress=False)
        resumed = train(tiny_config(name, data, root / "cut", 3), resume=True, show_progress=False)
        made[name] = {"full": full, "again": again, "resumed": resumed}
    return made


def resume_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / RESUME_DIR / RESUME_FILE))


@pytest.mark.parametrize("name", NAMES)
def test_short_training_stays_finite(name, runs):
    result = runs[name]["full"]
    for parameter in [*result.model.parameters(), *result.objective.parameters()]:
        assert torch.isfinite(parameter).all()
    assert all(np.isfinite(value) for value in result.test.metrics.values())
    assert all(np.isfinite(entry["loss"]) for entry in result.history)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_training_is_deterministic(name, runs):
    first, second = resume_tensors(runs[name]["full"].run_dir), resume_tensors(runs[name]["again"].run_dir)
    assert first.keys() == second.keys()
    for key, tensor in first.items():
        assert torch.equal(tensor, second[key]), key
    assert runs[name]["full"].test.metrics == runs[name]["again"].test.metrics


@pytest.mark.parametrize("name", NAMES)
def test_resume_is_bit_identical_to_an_uninterrupted_run(name, runs):
    full, resumed = runs[name]["full"], runs[name]["resumed"]
    assert resumed.epochs_run == 3
    expected, got = resume_tensors(full.run_dir), resume_tensors(resumed.run_dir)
    assert expected.keys() == got.keys()
    for key, tensor in expected.items():
        assert torch.equal(tensor, got[key]), key  # weights, Adam moments, task state, RNG
    assert resumed.test.metrics == full.test.metrics
    assert [entry["loss"] for entry in resumed.history] == [entry["loss"] for entry in full.history]


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_holds_model_and_objective_tensors(name, runs):
    result = runs[name]["full"]
    tensors = load_file(str(result.run_dir / WEIGHTS_FILE))
    expected = {f"model.{key}" for key in result.model.state_dict()}
    expected |= {f"objective.{key}" for key in result.objective.state_dict()}
    assert set(tensors) == expected
    if name == "rgt":  # the distillation heads are the term's, not the encoder's
        assert any(key.startswith("objective.terms.distill.students.") for key in tensors)
        assert not any("student" in key for key in result.model.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_run_directory_alone_reloads_the_same_scorer(name, runs, tmp_path):
    result = runs[name]["full"]
    copy = tmp_path / "copy"
    shutil.copytree(result.run_dir, copy)  # no dataset beside it: the copy must stand alone
    recommender = load_recommender(copy, device="cpu")
    split = result.data.split
    for fold in ("valid", "test"):
        want_queries, want_items = result.scorer.embeddings(split, fold)
        queries, items = recommender.embeddings(fold)
        assert torch.equal(queries, want_queries)
        assert torch.equal(items, want_items)
    queries, items = recommender.user_embeddings(), recommender.item_embeddings()
    assert queries.shape[0] == split.num_users
    assert items.shape[0] == split.num_items
    assert queries.shape[1] == items.shape[1]
    assert not queries.requires_grad
    assert not items.requires_grad
    items.numpy()  # a plain table, usable outside torch


@pytest.mark.parametrize("name", NAMES)
def test_recommendations_are_raw_ids_and_unseen(name, runs):
    result = runs[name]["full"]
    recommender = load_recommender(result.run_dir, device="cpu")
    (top,) = recommender.recommend(["u3"], k=5)
    assert len(top) == 5
    seen = {recommender.item_ids[i] for i in recommender.seen[recommender.user_index("u3")].indices}
    assert len(seen) == PER_USER
    assert not {entry.item for entry in top} & seen
    assert all(entry.item.startswith("i") for entry in top)
    scores = [entry.score for entry in top]
    assert scores == sorted(scores, reverse=True)
    if recommender.reads_histories:
        history = recommender.recommend_for_history(["i1", "i2", "i3"], k=4)
        assert len(history) == 4
        assert not {"i1", "i2", "i3"} & {entry.item for entry in history}
