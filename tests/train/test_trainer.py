"""End-to-end training on the small real GFormer LastFM split (1,889 users × 15,376 items)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from recforge.checkpoint import RESUME_DIR, RESUME_FILE, WEIGHTS_FILE, read_checkpoint_info
from recforge.config import config_from_dict
from recforge.errors import CheckpointError, RecforgeError
from recforge.retrieval.recommender import evaluate_run, load_recommender
from recforge.train.trainer import train

pytestmark = pytest.mark.integration


def lastfm_config(shared_data: Path, run_dir: Path, **train_options):
    return config_from_dict(
        {
            "name": "lastfm-test",
            "seed": 7,
            "output_dir": str(run_dir),
            "data": {"name": "gformer-lastfm", "root": str(shared_data), "split": {"protocol": "given"}},
            "model": {"name": "lightgcn", "dim": 16, "num_layers": 2},
            "objective": {"terms": {"bpr": {"weight": 1.0}, "l2": {"weight": 1e-4}}},
            "train": {
                "epochs": 3,
                "batch_size": 4096,
                "learning_rate": 5e-3,
                "patience": 5,
                "num_threads": 1,
                **train_options,
            },
            "evaluation": {"ks": [10, 20], "batch_size": 512},
        }
    )


def test_train_writes_run_directory_and_learns(shared_data, tmp_path):
    result = train(lastfm_config(shared_data, tmp_path / "run"), show_progress=False)
    run_dir = tmp_path / "run"
    for name in ("config.yaml", "metrics.json", "log.jsonl", WEIGHTS_FILE, "split.npz", "id_maps.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["valid"]) >= {"recall@20", "ndcg@20", "hit@10", "mrr@20"}
    assert metrics["test"]["recall@20"] == pytest.approx(result.test.metrics["recall@20"])
    assert metrics["timings"]["train_seconds"] > 0
    assert metrics["stopped_by"] == result.stopped_by == "epochs"  # all 3 ran (patience 5)
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [0, 1, 2]
    assert log[-1]["bpr"] < log[0]["bpr"]  # BPR loss falls
    for entry in log:  # each term is logged unweighted; the loss is their weighted sum
        assert entry["loss"] == pytest.approx(entry["bpr"] + 1e-4 * entry["l2"], rel=1e-5)
    # far better than random ranking (random Recall@20 here is about 20 / 15,376)
    assert result.test.metrics["recall@20"] > 0.05
    assert read_checkpoint_info(run_dir / WEIGHTS_FILE).epoch == result.best_epoch
    # the best weights: the encoder's tensors under "model." (LightGCN's terms own none)
    with safe_open(str(run_dir / WEIGHTS_FILE), framework="pt") as handle:
        assert sorted(handle.keys()) == ["model.embedding"]
    # the resume state is one file, its progress in the metadata
    assert sorted(path.name for path in (run_dir / RESUME_DIR).iterdir()) == [RESUME_FILE]
    with safe_open(str(run_dir / RESUME_DIR / RESUME_FILE), framework="pt") as handle:
        progress = json.loads(handle.metadata()["progress"])
        names = handle.keys()
    assert "model.embedding" in names
    assert any(name.startswith("optimizer.") for name in names)
    assert progress["state"]["next_epoch"] == 3
    assert progress["state"]["best_epoch"] == result.best_epoch


def test_same_seed_same_result(shared_data, tmp_path):
    first = train(lastfm_config(shared_data, tmp_path / "a", epochs=2), show_progress=False)
    second = train(lastfm_config(shared_data, tmp_path / "b", epochs=2), show_progress=False)
    assert first.test.metrics == second.test.metrics
    assert [entry["loss"] for entry in first.history] == [entry["loss"] for entry in second.history]


def test_resume_continues_exactly(shared_data, tmp_path):
    full = train(lastfm_config(shared_data, tmp_path / "full", epochs=3), show_progress=False)
    # "crash" after two epochs, then resume to three
    train(lastfm_config(shared_data, tmp_path / "cut", epochs=2), show_progress=False)
    resumed = train(lastfm_config(shared_data, tmp_path / "cut", epochs=3), resume=True, show_progress=False)
    assert resumed.epochs_run == 3
    for name, value in full.test.metrics.items():
        assert resumed.test.metrics[name] == pytest.approx(value, abs=1e-6), name
    log = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [0, 1, 2]
    # the resumed epoch drew the same batches from the same state: the same losses
    assert log[2]["loss"] == pytest.approx(full.history[2]["loss"], rel=1e-6)


def test_resume_without_state_is_an_error(shared_data, tmp_path):
    with pytest.raises(CheckpointError, match="no resumable state"):
        train(lastfm_config(shared_data, tmp_path / "none"), resume=True, show_progress=False)


def test_evaluate_run_reproduces_metrics(shared_data, tmp_path):
    result = train(lastfm_config(shared_data, tmp_path / "run", epochs=2), show_progress=False)
    recommender = load_recommender(tmp_path / "run", device="cpu")
    assert recommender.info.epoch == result.best_epoch
    scores = evaluate_run(recommender, ("valid", "test"))
    assert scores["test"].metrics == pytest.approx(result.test.metrics)
    assert scores["valid"].metrics == pytest.approx(result.valid.metrics)
    # the run directory alone gives the tables the trainer scored with
    for fold in ("valid", "test"):
        for loaded, trained in zip(
            recommender.embeddings(fold), result.scorer.embeddings(result.data.split, fold), strict=True
        ):
            assert torch.allclose(loaded, trained)


def test_evaluate_run_needs_no_dataset_files(shared_data, tmp_path):
    """A run directory copied away from its data still loads and scores (inference reads config,
    weights, split and id maps only)."""
    import shutil

    data_copy = tmp_path / "data"
    shutil.copytree(shared_data / "gformer-lastfm", data_copy / "gformer-lastfm")
    (data_copy / "MANIFEST.tsv").write_text((shared_data / "MANIFEST.tsv").read_text())
    config = lastfm_config(shared_data, tmp_path / "run", epochs=1)
    config = config.model_copy(update={"data": config.data.model_copy(update={"root": data_copy})})
    result = train(config, show_progress=False)
    shutil.rmtree(data_copy)
    scores = evaluate_run(load_recommender(tmp_path / "run", device="cpu"), ("test",))
    assert scores["test"].metrics == pytest.approx(result.test.metrics)


def test_checkpoint_from_other_data_is_refused(shared_data, tmp_path):
    train(lastfm_config(shared_data, tmp_path / "run", epochs=1), show_progress=False)
    # swap in a split of another size: the checkpoint must refuse it
    other = tmp_path / "other"
    other.mkdir()
    for name in ("config.yaml", WEIGHTS_FILE, "id_maps.json"):
        (other / name).write_bytes((tmp_path / "run" / name).read_bytes())
    from recforge.data.dataset import Interactions
    from recforge.data.split import Split

    tiny = Interactions(users=torch.tensor([0, 1]).numpy(), items=torch.tensor([0, 1]).numpy())
    Split(2, 2, tiny, tiny, tiny, protocol="fake").save(other / "split.npz")
    with pytest.raises(CheckpointError, match=r"split\.npz: split hash \w+ differs from the checkpoint's"):
        load_recommender(other, device="cpu")
    (other / "split.npz").unlink()
    with pytest.raises(RecforgeError, match=r"not a finished run directory \(split.npz is missing\)"):
        load_recommender(other, device="cpu")


def test_weights_of_another_dataset_are_refused(shared_data, tmp_path):
    train(lastfm_config(shared_data, tmp_path / "run", epochs=1), show_progress=False)
    recommender = load_recommender(tmp_path / "run", device="cpu")
    from recforge.checkpoint import CheckpointInfo, load_weights

    wrong = CheckpointInfo(
        model="lightgcn", num_users=10, num_items=20, split_hash="0" * 16, dataset="other", epoch=0
    )
    with pytest.raises(CheckpointError, match=r"field 'num_users' is 1889 but the current data/model has 10"):
        load_weights({"model": recommender.model}, tmp_path / "run" / WEIGHTS_FILE, wrong)


def test_time_budget_stops_training(shared_data, tmp_path):
    result = train(
        lastfm_config(shared_data, tmp_path / "run", epochs=50, max_train_seconds=0.01), show_progress=False
    )
    assert result.epochs_run == 1


def test_weight_decay_shrinks_every_row_as_adam_does(shared_data, tmp_path):
    """train.weight_decay reaches Adam: the same seed and batches, with decay, give smaller tables."""
    norms = {}
    for decay in (0.0, 0.05):
        config = lastfm_config(shared_data, tmp_path / str(decay), epochs=1, weight_decay=decay)
        raw = config.model_dump(mode="json")
        result = train(config_from_dict({**raw, "model": {"name": "mf", "dim": 16}}), show_progress=False)
        users, items = result.model()
        norms[decay] = torch.cat([users, items]).detach().norm(dim=1)
    assert norms[0.05].sum() < 0.9 * norms[0.0].sum()
