"""Runs you can trust (issue 10): divergence is an error, a stale split or a changed resume config
is refused before anything is written, one writer per run directory, artefacts whole or absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from recforge.checkpoint import RESUME_DIR, RESUME_FILE
from recforge.config import config_from_dict
from recforge.errors import CheckpointError, ConfigError, RecforgeError, RunDirectoryError, TrainingDiverged
from recforge.train.trainer import train

NUM_USERS, NUM_ITEMS, PER_USER = 20, 30, 8


@pytest.fixture(scope="module")
def data_file(write_events) -> Path:
    return write_events(NUM_USERS, NUM_ITEMS, PER_USER, seed=5, gap=100)


def config(data_file: Path, run_dir: Path, *overrides: str, **train_options: object):
    return config_from_dict(
        {
            "name": "trust",
            "seed": 3,
            "output_dir": str(run_dir),
            "data": {
                "name": str(data_file),
                "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
                "split": {"protocol": "random", "ratios": [0.6, 0.2, 0.2]},
            },
            "model": {"name": "lightgcn", "dim": 8, "num_layers": 1},
            "train": {
                "epochs": 3,
                "batch_size": 16,
                "num_threads": 1,
                "early_stopping_metric": "recall@5",
                **train_options,
            },
            "evaluation": {"ks": [5], "metrics": ["recall", "ndcg"]},
        },
        overrides,
    )


# -- silent wrong results ---------------------------------------------------------------------------


def test_divergence_is_an_error_and_scores_nothing(data_file, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"diverged at epoch 0, step \d+ .*loss term 'bpr' = nan"):
        train(config(data_file, run_dir, learning_rate=1e30), show_progress=False)
    assert not (run_dir / "metrics.json").exists()
    assert not (run_dir / "model.safetensors").exists()


def test_divergence_exits_non_zero_from_the_command_line(data_file, tmp_path):
    from typer.testing import CliRunner

    from recforge.cli import app

    path = tmp_path / "config.yaml"
    path.write_text(config(data_file, tmp_path / "run", learning_rate=1e30).to_yaml())
    result = CliRunner().invoke(app, ["train", str(path), "--no-progress"])
    assert result.exit_code == 2
    assert "training diverged" in " ".join(result.output.split())


def test_infinite_settings_are_refused_up_front(data_file, tmp_path):
    with pytest.raises(ConfigError, match=r"train\.learning_rate: Input should be a finite number"):
        config(data_file, tmp_path, "train.learning_rate=.inf")


def test_a_stale_split_is_refused_with_what_differs(data_file, tmp_path):
    # regression: a split.npz was reused when only the counts matched, and config.yaml lied
    run_dir = tmp_path / "run"
    train(config(data_file, run_dir, epochs=1), show_progress=False)
    saved = (run_dir / "config.yaml").read_text()
    changed = config(data_file, run_dir, "data.split.ratios=[0.5, 0.1, 0.4]", "seed=99", epochs=1)
    with pytest.raises(
        RecforgeError, match=r"with ratios \[0.6, 0.2, 0.2\], not \[0.5, 0.1, 0.4\], with seed 3"
    ):
        train(changed, show_progress=False)
    assert (run_dir / "config.yaml").read_text() == saved  # nothing was written


def test_resume_state_is_one_file_whose_parts_agree(data_file, tmp_path):
    run_dir = tmp_path / "run"
    train(config(data_file, run_dir, epochs=2), show_progress=False)
    assert [path.name for path in (run_dir / RESUME_DIR).iterdir()] == [RESUME_FILE]
    state_file = run_dir / RESUME_DIR / RESUME_FILE
    state_file.write_bytes(state_file.read_bytes()[:-64])  # a torn write
    with pytest.raises(CheckpointError, match=r"state.safetensors: cannot read checkpoint"):
        train(config(data_file, run_dir, epochs=3), resume=True, show_progress=False)


def test_a_resume_with_another_config_is_refused_before_writing(data_file, tmp_path):
    run_dir = tmp_path / "run"
    train(config(data_file, run_dir, epochs=2), show_progress=False)
    saved = {name: (run_dir / name).read_bytes() for name in ("config.yaml", "log.jsonl")}
    with pytest.raises(ConfigError, match=r"model.dim: 8 -> 32; train.learning_rate: 0.001 -> 0.01"):
        train(
            config(data_file, run_dir, "model.dim=32", epochs=3, learning_rate=0.01),
            resume=True,
            show_progress=False,
        )
    assert {name: (run_dir / name).read_bytes() for name in saved} == saved
    resumed = train(config(data_file, run_dir, epochs=3, num_threads=2), resume=True, show_progress=False)
    assert resumed.epochs_run == 3  # epochs and threads may change


def test_a_new_run_clears_an_earlier_runs_results(data_file, tmp_path):
    run_dir = tmp_path / "run"
    train(config(data_file, run_dir, epochs=1), show_progress=False)
    (run_dir / "log.jsonl").write_text('{"epoch": 0, "from": "an old run"}\n')
    train(config(data_file, run_dir, epochs=1), show_progress=False)
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1
    assert "from" not in log[0]


# -- one writer -------------------------------------------------------------------------------------


HOLD_LOCK = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.seek(0); handle.truncate(); handle.write("pid 4242, since now"); handle.flush()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_writer_is_refused_and_a_dead_holder_leaves_no_lock(data_file, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=r"another recforge process is writing .*pid 4242"):
            train(config(data_file, run_dir, epochs=1), show_progress=False)
    finally:
        holder.kill()
        holder.wait()
    # the holder died without cleaning up: its lock file stays, its lock does not
    assert (run_dir / ".lock").exists()
    assert train(config(data_file, run_dir, epochs=1), show_progress=False).epochs_run == 1


# -- failures that used to break the directory ------------------------------------------------------


def test_an_output_dir_under_a_regular_file_is_a_clean_error(data_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(RunDirectoryError, match=r"file/run: cannot create the run directory"):
        train(config(data_file, blocker / "run", epochs=1), show_progress=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through read-only permissions")
def test_a_read_only_output_dir_is_a_clean_error(data_file, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RunDirectoryError, match="set output_dir"):
            train(config(data_file, locked / "run", epochs=1), show_progress=False)
    finally:
        locked.chmod(0o700)


def test_a_torn_last_log_line_is_dropped_on_resume(data_file, tmp_path):
    run_dir = tmp_path / "run"
    train(config(data_file, run_dir, epochs=2), show_progress=False)
    with (run_dir / "log.jsonl").open("a") as log:
        log.write('{"epoch": 2, "loss"')  # killed while writing
    resumed = train(config(data_file, run_dir, epochs=3), resume=True, show_progress=False)
    lines = (run_dir / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2]
    assert resumed.epochs_run == 3


def test_the_time_budget_is_checked_between_batches(data_file, tmp_path):
    result = train(
        config(data_file, tmp_path / "run", epochs=50, max_train_seconds=1e-9), show_progress=False
    )
    assert result.epochs_run == 1
    assert result.history[0]["steps"] == 1  # the epoch stopped after its first batch
    assert "valid" in result.history[0]  # and was still evaluated
    assert result.stopped_by == "time budget"  # said in metrics.json: the run may not have converged
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["stopped_by"] == "time budget"


def test_a_run_without_improvement_stops_on_patience_and_says_so(data_file, tmp_path):
    # a learning rate far below float32 resolution: no weight moves, every evaluation equals the first
    result = train(
        config(data_file, tmp_path / "run", epochs=10, patience=1, learning_rate=1e-30), show_progress=False
    )
    assert (result.epochs_run, result.best_epoch, result.stopped_by) == (2, 0, "patience")


def test_data_notes_reach_the_console(data_file, tmp_path):
    from io import StringIO

    from rich.console import Console

    buffer = StringIO()
    train(
        config(data_file, tmp_path / "run", epochs=1),
        console=Console(file=buffer, width=80),
        show_progress=False,
    )
    assert "data: deduplicate" in buffer.getvalue()


def test_resume_tensors_hold_the_last_epoch(data_file, tmp_path):
    run_dir = tmp_path / "run"
    train(config(data_file, run_dir, epochs=2), show_progress=False)
    tensors = load_file(str(run_dir / RESUME_DIR / RESUME_FILE))
    assert {"rng.torch", "model.embedding"} <= set(tensors)
    assert time.time() - (run_dir / RESUME_DIR / RESUME_FILE).stat().st_mtime < 600


def test_a_full_disk_is_a_clean_error_and_leaves_no_partial_file(data_file, tmp_path, monkeypatch):
    import errno

    import recforge.files

    def full_disk(source: object, target: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(recforge.files.os, "replace", full_disk)
    with pytest.raises(RunDirectoryError, match=r"split.npz: cannot write \(No space left on device\)"):
        train(config(data_file, tmp_path / "run", epochs=1), show_progress=False)
    assert not list((tmp_path / "run").glob("*.partial"))


def test_run_files_get_the_umask_mode_not_safetensors_0600(data_file, tmp_path):
    """safetensors creates 0600 files; a run directory served by another user must be readable."""
    from recforge.files import FILE_MODE

    run_dir = tmp_path / "run"
    train(config(data_file, run_dir, epochs=1), show_progress=False)
    weights = run_dir / "model.safetensors"
    assert weights.stat().st_mode & 0o777 == FILE_MODE
    assert 0o666 & ~_current_umask() == FILE_MODE


def _current_umask() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
