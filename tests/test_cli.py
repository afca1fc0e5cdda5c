import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recforge.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "evaluate", "data", "quickstart"):
        assert command in result.output


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
    assert "bad.yaml:3: model.dimm: unknown key" in result.output.replace("\n", "")


def test_evaluate_of_a_missing_run_is_an_error(tmp_path):
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "not a finished run directory" in result.output


@pytest.mark.integration
def test_train_then_evaluate(shared_data, tmp_path):
    config = tmp_path / "lastfm.yaml"
    config.write_text(
        f"name: cli\noutput_dir: {tmp_path / 'run'}\n"
        f"data: {{name: gformer-lastfm, root: {shared_data}, split: {{protocol: given}}}}\n"
        "model: {name: mf, dim: 8}\ntrain: {epochs: 1, batch_size: 8192}\n"
    )
    result = runner.invoke(app, ["train", str(config), "--no-progress", "-o", "train.learning_rate=0.01"])
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
