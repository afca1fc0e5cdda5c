"""Reopen a finished run directory: its config, data, split and best weights, checked to agree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from recforge.config import ExperimentConfig, load_config
from recforge.errors import CheckpointError
from recforge.evaluation.evaluator import EvaluationResult, Evaluator
from recforge.train.checkpoint import WEIGHTS_FILE, CheckpointInfo, load_weights, read_checkpoint_info
from recforge.train.experiment import PreparedData, build_encoder, prepare_data, resolve_device
from recforge.train.task_base import Task
from recforge.train.tasks import make_task


@dataclass
class LoadedRun:
    config: ExperimentConfig
    data: PreparedData
    model: nn.Module
    task: Task
    info: CheckpointInfo

    def embeddings(self, fold: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(queries, items) embeddings of the best checkpoint for scoring ``fold``."""
        return self.task.embeddings(fold)


def load_run(run_dir: str | Path, *, overrides: tuple[str, ...] = (), device: str = "auto") -> LoadedRun:
    """Rebuild the model of ``run_dir`` on its own saved split and load its best weights.

    The saved split's hash must match the checkpoint's, so weights are never evaluated on folds
    they were not trained for.
    """
    run_dir = Path(run_dir)
    config_path, weights_path, split_path = (
        run_dir / "config.yaml",
        run_dir / WEIGHTS_FILE,
        run_dir / "split.npz",
    )
    for required in (config_path, weights_path, split_path):
        if not required.is_file():
            raise CheckpointError(f"{run_dir}: not a finished run directory ({required.name} is missing)")
    config = load_config(config_path, (*overrides, f"output_dir={run_dir}"))
    info = read_checkpoint_info(weights_path)
    data = prepare_data(config, split_path)
    if data.split.content_hash != info.split_hash:
        raise CheckpointError(
            f"{split_path}: split hash {data.split.content_hash} differs from "
            f"the checkpoint's {info.split_hash}"
        )
    torch_device = resolve_device(device)
    model = build_encoder(config, data.split.num_users, data.split.num_items).to(torch_device)
    expected = CheckpointInfo(
        model=config.model.name,
        num_users=data.split.num_users,
        num_items=data.split.num_items,
        split_hash=data.split.content_hash,
        dataset=data.dataset.name,
        epoch=info.epoch,
    )
    load_weights(model, weights_path, expected)
    task = make_task(model, data.split, config, torch_device)
    return LoadedRun(config=config, data=data, model=model, task=task, info=info)


def evaluate_run(run: LoadedRun, folds: tuple[str, ...] = ("valid", "test")) -> dict[str, EvaluationResult]:
    """Score the run's best weights on the named folds with the run's own evaluation settings."""
    evaluation = run.config.evaluation
    evaluator = Evaluator(
        run.data.split,
        ks=tuple(evaluation.ks),
        metrics=tuple(evaluation.metrics),
        batch_size=evaluation.batch_size,
        activity_slices=tuple(evaluation.activity_slices),
    )
    return {fold: evaluator.evaluate(*run.embeddings(fold), fold) for fold in folds}
