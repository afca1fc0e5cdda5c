"""GSAU through the one trainer: it learns a sequential pattern, every scoring mode works, joint
batches visit every window and every training pair once, and odd data (items seen only in test)
trains without NaN. The three ranking policies (score_with) are views of one trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recforge.config import config_from_dict
from recforge.data.dataset import Interactions
from recforge.data.sequences import SequenceBatches, sequence_examples
from recforge.errors import ConfigError, RecforgeError
from recforge.evaluation.evaluator import Evaluator
from recforge.recipes import RECIPES, graph_inputs
from recforge.retrieval.recommender import evaluate_run, load_recommender
from recforge.tasks.graph_sequence import JointBatches
from recforge.train.trainer import train

from .test_sequence_training import SMALL_SASREC, cyclic_sequences_csv

SMALL_GSAU = {**SMALL_SASREC, "name": "gsau", "graph_layers": 2}
GSAU_TERMS = {
    "graph_alignment": {"weight": 1.0},
    "ce": {"weight": 1.0},
    "graph_uniformity": {"weight": 0.1},
    "sequence_uniformity": {"weight": 0.1},
}


def gsau_config(tmp_path, data_path, model=None, terms=None, base=SMALL_GSAU, **train_options):
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
            "objective": {"terms": terms or GSAU_TERMS},
            "train": {
                "epochs": 10,
                "batch_size": 32,
                "learning_rate": 1e-2,
                "patience": 30,
                "early_stopping_metric": "recall@1",
                "num_threads": 1,
                **train_options,
            },
            "evaluation": {"ks": [1, 10], "metrics": ["recall", "ndcg"]},
        }
    )


def test_gsau_learns_the_next_item_and_reloads(tmp_path):
    result = train(gsau_config(tmp_path, cyclic_sequences_csv(tmp_path)), show_progress=False)
    assert result.test.metrics["recall@1"] > 0.8  # chance is 1/30
    assert set(result.history[0]) >= set(GSAU_TERMS)  # each term is logged
    recommender = load_recommender(tmp_path / "run", device="cpu")
    assert evaluate_run(recommender, ("test",))["test"].metrics == pytest.approx(result.test.metrics)
    # ranked by sequence (the default), an item history alone can be answered
    assert recommender.recommend_for_history(["i3", "i4", "i5", "i6"], k=1)[0].item == "i7"


def untrained_metrics(config, split, score_with):
    """The same recipe at its initial weights (the trainer's seed), scored with ``score_with``."""
    recipe = RECIPES["gsau"]
    torch.manual_seed(config.seed)
    model = recipe.build(config.model, split.num_users, split.num_items)
    settings = config.model.model_copy(update={"score_with": score_with})
    scorer = recipe.scorer(
        model, settings, graph_inputs(recipe, model, split.csr("train"), torch.device("cpu"))
    )
    evaluator = Evaluator(split, ks=(1, 10), metrics=("recall", "ndcg"))
    return evaluator.evaluate(*scorer.embeddings(split, "test"), "test").metrics


def test_the_three_scoring_policies_of_one_trained_model(tmp_path):
    """score_with changes how the trained encoder ranks, not what it is: one run, reloaded with
    each policy. 'both' is the concatenation of the unit-normalised sequence parts and the graph
    parts (so its dot product is the sum of the two cosines), and every policy ranks far better
    than the same model untrained."""
    config = gsau_config(tmp_path, cyclic_sequences_csv(tmp_path), {"score_with": "both"}, epochs=3)
    result = train(config, show_progress=False)
    policies = {
        name: load_recommender(tmp_path / "run", device="cpu", overrides=(f"model.score_with={name}",))
        for name in ("sequence", "graph", "both")
    }
    tables = {name: recommender.embeddings("test") for name, recommender in policies.items()}
    (sequence_users, sequence_items), (graph_users, graph_items) = tables["sequence"], tables["graph"]
    both_users, both_items = tables["both"]
    dim = SMALL_GSAU["dim"]
    assert both_users.shape == (200, 2 * dim)
    assert both_items.shape == (30, 2 * dim)
    assert graph_users.shape == (200, dim)
    assert torch.allclose(both_users, torch.cat([F.normalize(sequence_users, dim=-1), graph_users], dim=1))
    assert torch.allclose(both_items, torch.cat([F.normalize(sequence_items, dim=-1), graph_items], dim=1))
    # graph rows are unit vectors: the graph policy scores cosines
    assert torch.allclose(graph_items.norm(dim=1), torch.ones(30), atol=1e-5)
    assert torch.allclose(graph_users.norm(dim=1), torch.ones(200), atol=1e-5)
    # the trained run was scored with 'both'
    assert evaluate_run(policies["both"], ("test",))["test"].metrics == pytest.approx(result.test.metrics)
    split = result.data.split
    for name, recommender in policies.items():
        trained = evaluate_run(recommender, ("test",))["test"].metrics
        untrained = untrained_metrics(config, split, name)
        # cyclic walks: the held-out item neighbours the user's items, which a graph learns too
        assert trained["recall@10"] > untrained["recall@10"] + 0.3, name
        assert trained["ndcg@10"] > untrained["ndcg@10"] + 0.3, name
    # a history alone has no graph user: only the sequence policy answers it
    assert policies["sequence"].recommend_for_history(["i1", "i2"], k=2)
    for name in ("graph", "both"):
        with pytest.raises(RecforgeError, match=f"score_with: {name}"):
            policies[name].recommend_for_history(["i1", "i2"], k=2)


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
    data_path = cyclic_sequences_csv(tmp_path)
    with pytest.raises(
        ConfigError, match=r"objective.terms.bpr: term 'bpr' needs \['negatives'\], which model 'gsau'"
    ):
        gsau_config(tmp_path, data_path, terms={"bpr": {"weight": 1.0}})
    with pytest.raises(ConfigError, match=r"objective.terms.sequence_ce: unknown loss term"):  # now 'ce'
        gsau_config(tmp_path, data_path, terms={"sequence_ce": {"weight": 1.0}})
    with pytest.raises(
        ConfigError, match=r"term 'graph_alignment' needs \['graph_pairs'\], which model 'lightgcn'"
    ):
        config_from_dict(
            {
                "name": "x",
                "data": {"name": "ml-100k"},
                "model": {"name": "lightgcn"},
                "objective": {"terms": {"graph_alignment": {"weight": 1.0}}},
            }
        )
    # GSAU's sequence half alone is a valid objective
    assert list(gsau_config(tmp_path, data_path, terms={"ce": {"weight": 1.0}}).objective.terms) == ["ce"]


@pytest.mark.parametrize("model", ["sasrec", "gsau"])
def test_items_seen_only_in_test_are_ranked_not_dropped(tmp_path, model):
    """An item whose only interaction is a user's last one is unseen in training: it stays in the
    catalogue (it can be recommended and counted as a hit), its graph node has no edges, and
    nothing becomes NaN."""
    path = cyclic_sequences_csv(tmp_path)
    path.write_text(path.read_text() + "u0,brand-new,99\n")
    base = SMALL_GSAU if model == "gsau" else SMALL_SASREC
    config = gsau_config(
        tmp_path, path, terms=GSAU_TERMS if model == "gsau" else {"ce": {"weight": 1.0}}, base=base, epochs=2
    )
    result = train(config, show_progress=False)
    split = result.data.split
    assert split.num_items == 31
    new_item = int(np.flatnonzero(result.data.dataset.item_ids == "brand-new")[0])
    assert new_item in split.test.items.tolist()
    assert new_item not in split.train.items.tolist()
    assert result.test.num_users == 200
    users, items = result.scorer.embeddings(split, "test")
    assert items.shape[0] == 31
    assert torch.isfinite(users).all()
    assert torch.isfinite(items).all()
