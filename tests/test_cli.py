import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from recforge.cli import app
from recforge.config import config_from_dict
from recforge.objectives.registry import TERMS
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

runner = CliRunner()
WIDE = {"COLUMNS": "400"}  # rich reads it when printing: no table or message is wrapped


def flat(text: str) -> str:
    """Output with every run of whitespace made one space: independent of line wrapping."""
    return " ".join(text.split())


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0
    for command in ("train", "evaluate", "recommend", "terms", "data", "quickstart"):
        assert command in result.output


def test_terms_lists_every_term_with_its_parameters():
    result = runner.invoke(app, ["terms"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 4}
    assert set(TERMS) <= set(rows)
    assert "t 2.0" in rows["uniformity"]
    assert "temperature 0.2" in rows["contrast"]
    assert "query_ids" in rows["uniformity"]


def test_data_info_on_a_named_dataset(shared_data):
    result = runner.invoke(app, ["data", "info", "gformer-lastfm", "--root", str(shared_data)])
    assert result.exit_code == 0, result.output
    assert "1889" in result.output
    assert "15376" in result.output


def test_bad_config_exits_with_a_named_error(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("name: x\ndata: {name: gowalla}\nmodel: {name: mf, dimm: 3}\n")
    result = runner.invoke(app, ["train", str(config)])
    assert result.exit_code == 2
    assert "bad.yaml:3:model.dimm:unknownkey" in "".join(result.output.split())  # however it wraps


def test_evaluate_of_a_missing_run_is_an_error(tmp_path):
    missing = tmp_path / "nothing"
    result = runner.invoke(app, ["evaluate", str(missing)])
    assert result.exit_code == 2
    assert "not a finished run directory (config.yaml is missing)" in flat(result.output)
    assert str(missing) in "".join(result.output.split())  # the path, however it is wrapped


@pytest.mark.integration
def test_train_then_evaluate(shared_data, tmp_path):
    config = tmp_path / "lastfm.yaml"
    config.write_text(
        f"name: cli\noutput_dir: {tmp_path / 'run'}\n"
        f"data: {{name: gformer-lastfm, root: {shared_data}, split: {{protocol: given}}}}\n"
        "model: {name: mf, dim: 8}\ntrain: {epochs: 1, batch_size: 8192}\n"
    )
    result = runner.invoke(
        app,
        [
            "train",
            str(config),
            "--no-progress",
            "-o",
            "train.learning_rate=0.01",
            "-o",
            "train.num_threads=1",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    result = runner.invoke(app, ["evaluate", str(tmp_path / "run"), "--json", "--fold", "test"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    assert scored["test"]["metrics"]["recall@20"] == pytest.approx(saved["test"]["recall@20"])
    assert Path(tmp_path / "run" / "config.yaml").read_text().count("learning_rate: 0.01") == 1


def test_evaluate_refuses_an_unknown_fold(tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path), "--fold", "train"])
    assert result.exit_code == 2
    assert "--fold: expected valid or test, got 'train'" in result.output


# -- recommend ------------------------------------------------------------------------------------


def interactions_csv(path: Path, num_users=40, num_items=20, per_user=8) -> dict[str, set[str]]:
    """Random (user, item) pairs; returns each user's items."""
    rng = np.random.default_rng(3)
    rows, seen = ["user,item"], {}
    for user in range(num_users):
        items = [f"m{item}" for item in rng.choice(num_items, size=per_user, replace=False)]
        seen[f"u{user}"] = set(items)
        rows += [f"u{user},{item}" for item in items]
    path.write_text("\n".join(rows) + "\n")
    return seen


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A two-epoch MF run on 40 users × 20 items: (run directory, each user's items)."""
    root = tmp_path_factory.mktemp("tiny")
    seen = interactions_csv(root / "pairs.csv")
    config = config_from_dict(
        {
            "name": "tiny",
            "output_dir": str(root / "run"),
            "data": {"name": str(root / "pairs.csv"), "options": {"user": "user", "item": "item"}},
            "model": {"name": "mf", "dim": 4},
            "train": {"epochs": 2, "batch_size": 64, "num_threads": 1, "early_stopping_metric": "recall@5"},
            "evaluation": {"ks": [5], "metrics": ["recall"]},
            "objective": {"terms": {"bpr": {"weight": 1.0}}},
        }
    )
    train(config, show_progress=False)
    return root / "run", seen


def test_recommend_prints_a_table_and_json_of_unseen_items(tiny_run):
    run_dir, seen = tiny_run
    result = runner.invoke(
        app, ["recommend", str(run_dir), "--user", "u1", "-k", "3", "--json", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert list(answer) == ["u1"]
    ranked = answer["u1"]
    assert [set(entry) for entry in ranked] == [{"item", "score", "title"}] * 3
    items = [entry["item"] for entry in ranked]
    scores = [entry["score"] for entry in ranked]
    assert not set(items) & seen["u1"]  # everything the run knows u1 interacted with is left out
    assert scores == sorted(scores, reverse=True)
    # the best unseen items by the model's own scores, as the Python API ranks them
    recommender = load_recommender(run_dir, device="cpu")
    user = recommender.user_index("u1")
    all_scores = recommender.user_embeddings()[user] @ recommender.item_embeddings().T
    unseen = [i for i, raw in enumerate(recommender.item_ids) if raw not in seen["u1"]]
    best = sorted(unseen, key=lambda i: -float(all_scores[i]))[:3]
    assert items == [recommender.item_ids[i] for i in best]
    assert scores == pytest.approx([float(all_scores[i]) for i in best], rel=1e-5)

    table = runner.invoke(
        app, ["recommend", str(run_dir), "--user", "u1", "-k", "3", "--device", "cpu"], env=WIDE
    )
    assert table.exit_code == 0, table.output
    text = flat(table.output)
    assert "user u1 — mf, top 3" in text
    for rank, (item, score) in enumerate(zip(items, scores, strict=True), start=1):
        assert f"│ {rank} │ {item} │" in text
        assert f"{score:.4f}" in text


def test_recommend_include_seen_ranks_every_item(tiny_run):
    run_dir, _ = tiny_run
    result = runner.invoke(
        app,
        [
            "recommend",
            str(run_dir),
            "-u",
            "u2",
            "-u",
            "u3",
            "-k",
            "20",
            "--include-seen",
            "--json",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert list(answer) == ["u2", "u3"]
    recommender = load_recommender(run_dir, device="cpu")
    for user, ranked in answer.items():
        assert len(ranked) == 20  # the whole catalogue, seen items included
        scores = recommender.user_embeddings()[recommender.user_index(user)] @ recommender.item_embeddings().T
        assert [entry["item"] for entry in ranked] == [
            recommender.item_ids[i] for i in torch.argsort(scores, descending=True, stable=True).tolist()
        ]


def test_recommend_similar_items(tiny_run):
    run_dir, _ = tiny_run
    result = runner.invoke(
        app, ["recommend", str(run_dir), "--similar", "m4", "-k", "4", "--json", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    ranked = json.loads(result.output)["similar to m4"]
    assert len(ranked) == 4
    assert "m4" not in [entry["item"] for entry in ranked]
    assert all(-1 - 1e-6 <= entry["score"] <= 1 + 1e-6 for entry in ranked)  # cosines


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--user", "nobody"], "unknown user id 'nobody': {run} has no user by that id"),
        (["--similar", "m999"], "unknown item id 'm999'"),
        (["--history", "m1"], "has no query for an item history"),
        (
            ["--user", "u1", "--similar", "m1"],
            "give exactly one of --user (repeatable), --history (repeatable) or --similar",
        ),
        ([], "give exactly one of"),
    ],
    ids=["unknown-user", "unknown-item", "history-of-mf", "two-questions", "no-question"],
)
def test_recommend_errors_exit_2_with_a_message(tiny_run, arguments, message):
    run_dir, _ = tiny_run
    result = runner.invoke(app, ["recommend", str(run_dir), *arguments, "--device", "cpu"], env=WIDE)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output
    assert message.format(run=run_dir) in flat(result.output)


def test_recommend_of_a_missing_run_is_an_error(tmp_path):
    result = runner.invoke(app, ["recommend", str(tmp_path / "nothing"), "--user", "u1"])
    assert result.exit_code == 2
    assert "not a finished run directory" in flat(result.output)


def test_reading_data_needs_neither_torch_nor_the_experiment_schema():
    # regression: `recforge data info` took 4 s instead of 1 s once the config imported the recipes
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import recforge.cli, recforge.data.registry, recforge.yaml_settings\n"
        "print(sorted(name for name in ('torch', 'recforge.config') if name in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
