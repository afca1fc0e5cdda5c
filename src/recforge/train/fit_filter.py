"""``recforge train`` for a training-free filter (GF-CF, BSPM, EASE): fit once, score, write the run.

A filter has no epochs, so there is nothing to select on validation: the configured
hyperparameters are fitted on the training matrix once, the valid fold is scored (the number a
sweep over configs compares) and the test fold is scored once. The run directory has the same
files as a trained run's, so ``recforge evaluate``, ``recforge recommend``,
:func:`~recforge.retrieval.recommender.load_recommender` and ``recforge teacher export`` read it
the same way:

* ``model.safetensors``: the fitted state (:meth:`~recforge.models.filters.GraphFilter.fitted_tensors`:
  GF-CF's and BSPM's singular vectors, I × k; EASE's item-item weights, I × I) under ``model.``,
  with the split hash; loading recomputes the cheap rest from ``split.npz``'s training matrix;
* ``config.yaml``, ``split.npz``, ``id_maps.json``, ``metrics.json`` (``best_epoch`` 0, the fit's
  seconds as ``train_seconds``).

Each user is scored from their history before the fold (:func:`~recforge.models.scoring.known_before`):
valid from the training row, test from train + valid, a deployed answer from everything known.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from recforge.checkpoint import WEIGHTS_FILE, CheckpointInfo, save_tensors
from recforge.config import ExperimentConfig
from recforge.evaluation.evaluator import EvaluationResult
from recforge.models.filters import GraphFilter
from recforge.models.scoring import FilterScorer, evaluate_fold
from recforge.recipes import filter_recipe_of
from recforge.train.experiment import PreparedData, make_evaluator, prepare_data, require_folds
from recforge.train.run_directory import RunDirectory
from recforge.train.trainer import metrics_table


@dataclass
class FilterFitResult:
    """What a fitted filter run reports (also written to ``metrics.json``)."""

    run_dir: Path
    filter: GraphFilter
    scorer: FilterScorer
    data: PreparedData
    valid: EvaluationResult
    test: EvaluationResult
    timings: dict[str, float]
    fitted_values: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid.metrics,
            "test": self.test.metrics,
            "test_slices": self.test.to_dict()["slices"],
            "protocol": self.test.protocol,
            "best_epoch": 0,
            "epochs_run": 0,
            "timings": self.timings,
            "parameters": 0,
            "fitted_values": self.fitted_values,
            "split": self.data.split.summary(),
            "data_notes": self.data.notes,
        }

    def summary_table(self, ks: tuple[int, ...] = (10, 20)) -> Table:
        table = metrics_table(
            f"{self.run_dir.name}: {self.filter!r}, fitted once (no epochs)", self.valid, self.test, ks
        )
        table.add_section()
        table.add_row("fit time", f"{self.timings['fit_seconds']:.1f} s", "")
        table.add_row("evaluation time", f"{self.timings['eval_seconds']:.1f} s", "")
        table.add_row("fitted values", f"{self.fitted_values:,}", "")
        table.caption = f"split: {self.data.split.protocol}; evaluation: {self.test.protocol}"
        return table


def fit_filter(config: ExperimentConfig, run: RunDirectory, *, console: Console) -> FilterFitResult:
    """Fit the filter ``config.model`` names on the training fold, score valid and test, and write
    the run directory (under ``run``'s lock, held by the caller)."""
    started = time.perf_counter()
    threads = torch.get_num_threads()
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    try:
        data = prepare_data(config, run.path / "split.npz")
        for note in data.notes:
            console.print(f"data: {note}", highlight=False, soft_wrap=True)
        split = data.split
        require_folds(config, data)
        fitted = filter_recipe_of(config.model.name).build(
            config.filter_model, split.csr("train"), seed=config.seed, num_threads=config.train.num_threads
        )
        run.clear_results()
        run.write_text("config.yaml", config.to_yaml())
        run.write_json("id_maps.json", data.id_maps())
        with console.status(f"fitting {fitted!r}"):
            fit_started = time.perf_counter()
            fitted.fit()
            fit_seconds = time.perf_counter() - fit_started
        console.print(f"fitted {fitted!r} in {fit_seconds:.1f} s")
        tensors = fitted.fitted_tensors()
        info = CheckpointInfo(
            model=config.model.name,
            num_users=split.num_users,
            num_items=split.num_items,
            split_hash=split.content_hash,
            dataset=data.dataset.name,
            epoch=0,
        )
        save_tensors(
            {f"model.{name}": tensor for name, tensor in tensors.items()}, run.path / WEIGHTS_FILE, info
        )
        scorer = FilterScorer(fitted)
        evaluator = make_evaluator(config, split)
        with console.status("scoring valid and test"):
            valid = evaluate_fold(scorer, evaluator, "valid")
            test = evaluate_fold(scorer, evaluator, "test")
    finally:
        torch.set_num_threads(threads)
    result = FilterFitResult(
        run_dir=run.path,
        filter=fitted,
        scorer=scorer,
        data=data,
        valid=valid,
        test=test,
        timings={
            "fit_seconds": round(fit_seconds, 3),
            "train_seconds": round(fit_seconds, 3),
            "eval_seconds": round(valid.seconds + test.seconds, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
        },
        fitted_values=sum(tensor.numel() for tensor in tensors.values()),
    )
    run.write_json("metrics.json", result.to_dict())
    return result
