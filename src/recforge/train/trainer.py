"""The training loop: Adam over named loss terms, validation-only early stopping, one final test.

Everything a run produces goes to its run directory: ``config.yaml``, ``split.npz``,
``id_maps.json``, ``log.jsonl`` (one line per epoch), ``model.safetensors`` (best on validation),
``resume/`` (last epoch, for ``--resume``) and ``metrics.json`` (best valid + the single test score).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from torch import nn

from recforge.allocator import steps_reuse_freed_memory
from recforge.checkpoint import (
    WEIGHTS_FILE,
    CheckpointInfo,
    TrainingState,
    load_resume_state,
    load_weights,
    save_resume_state,
    save_weights,
)
from recforge.config import ExperimentConfig
from recforge.device import resolve_device
from recforge.errors import CheckpointError, ConfigError, TrainingDiverged
from recforge.evaluation.evaluator import EvaluationResult
from recforge.models.scoring import Scorer, evaluate_fold
from recforge.objectives.objective import Objective
from recforge.tasks.base import Task
from recforge.train.experiment import (
    PreparedData,
    assemble,
    count_parameters,
    make_evaluator,
    prepare_data,
    require_folds,
)
from recforge.train.run_directory import RunDirectory

if TYPE_CHECKING:
    from recforge.train.fit_filter import FilterFitResult


@dataclass
class TrainResult:
    """What a finished run reports (also written to ``metrics.json``)."""

    run_dir: Path
    model: nn.Module
    objective: Objective
    task: Task
    scorer: Scorer
    data: PreparedData
    best_epoch: int
    epochs_run: int
    valid: EvaluationResult
    test: EvaluationResult
    timings: dict[str, float]
    num_parameters: int
    stopped_by: str = "epochs"
    """Why training ended: ``epochs`` (all configured), ``patience`` (early stopping) or ``time
    budget`` (``train.max_train_seconds``: the model may not have converged)."""
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid.metrics,
            "test": self.test.metrics,
            "test_slices": self.test.to_dict()["slices"],
            "protocol": self.test.protocol,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stopped_by": self.stopped_by,
            "timings": self.timings,
            "parameters": self.num_parameters,
            "split": self.data.split.summary(),
            "data_notes": self.data.notes,
        }

    def summary_table(self, ks: tuple[int, ...] = (10, 20)) -> Table:
        """Metrics as rows (fits a narrow terminal), valid and test as columns, timings below."""
        title = f"{self.run_dir.name}: best epoch {self.best_epoch} of {self.epochs_run} (selected on valid)"
        table = metrics_table(title, self.valid, self.test, ks)
        table.add_section()
        table.add_row("training time", f"{self.timings['train_seconds']:.1f} s", "")
        table.add_row("seconds / epoch", f"{self.timings['seconds_per_epoch']:.2f}", "")
        table.add_row("stopped by", self.stopped_by, "")
        table.add_row("evaluation time", f"{self.timings['eval_seconds']:.1f} s", "")
        table.add_row("parameters", f"{self.num_parameters:,}", "")
        table.caption = f"split: {self.data.split.protocol}; evaluation: {self.test.protocol}"
        return table


def metrics_table(title: str, valid: EvaluationResult, test: EvaluationResult, ks: tuple[int, ...]) -> Table:
    """Metrics as rows (fits a narrow terminal), valid and test as columns; callers add timings."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("valid", justify="right")
    table.add_column("test", justify="right")
    for name in (f"{m}@{k}" for m in ("recall", "ndcg", "hit", "mrr") for k in ks):
        if name in test.metrics:
            table.add_row(name, f"{valid.metrics[name]:.4f}", f"{test.metrics[name]:.4f}")
    return table


def seed_everything(seed: int) -> None:
    """One seed drives Python, numpy and torch (samplers derive theirs from it per epoch)."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - for third-party code on the legacy global RNG
    torch.manual_seed(seed)


def train(
    config: ExperimentConfig,
    *,
    resume: bool = False,
    console: Console | None = None,
    show_progress: bool = True,
) -> TrainResult | FilterFitResult:
    """Run the experiment ``config`` describes and return its results (a training-free filter's
    model is fitted once instead: :mod:`recforge.train.fit_filter`).

    With ``resume=True`` the run continues from ``RUN_DIR/resume`` (the last finished epoch), with
    the same batches and random state it would have had without the interruption; the config may
    differ from the saved one only in ``train.epochs``, ``train.max_train_seconds`` and
    ``train.num_threads``.

    Everything is checked before anything is written: the run directory's lock, the resume
    compatibility, the data and split, the model. A loss or parameter that turns NaN or infinite
    stops the run with :class:`~recforge.errors.TrainingDiverged`, and no metrics are written.
    """
    console = console or Console(stderr=True)
    if config.is_filter:
        from recforge.train.fit_filter import fit_filter

        if resume:
            raise ConfigError(f"model '{config.model.name}' is a training-free filter: there is no "
                              "training to resume; run recforge train without --resume")
        with RunDirectory(config.run_dir) as run_dir:
            return fit_filter(config, run_dir, console=console)
    # subnormal floats make x86 arithmetic 10-100x slower, and weight decay drives rarely-useful
    # weights and their Adam moments into that range: PHR's epochs went from 1.4 s to 11 s on
    # CiteULike as its zero-initialised FiLM layers decayed. Training flushes them to zero.
    torch.set_flush_denormal(True)
    try:
        with RunDirectory(config.run_dir) as run_dir:
            return _train_locked(config, run_dir, resume=resume, console=console, show_progress=show_progress)
    finally:
        torch.set_flush_denormal(False)  # torch's default: leave the caller's process as it was


def _train_locked(
    config: ExperimentConfig, run: RunDirectory, *, resume: bool, console: Console, show_progress: bool
) -> TrainResult:
    run_dir = run.path
    if resume:
        _check_resumable(run_dir, config)
    if config.train.num_threads:
        torch.set_num_threads(config.train.num_threads)
    seed_everything(config.seed)
    started = time.perf_counter()

    data = prepare_data(config, run_dir / "split.npz")
    split = data.split
    for note in data.notes:
        console.print(f"data: {note}", highlight=False, soft_wrap=True)
    require_folds(config, data)
    device = resolve_device(config.train.device)
    assembly = assemble(
        config,
        split,
        device,
        item_ids=[str(raw) for raw in data.dataset.item_ids],
        item_titles=data.dataset.item_titles,
        node_features=data.node_features(),
    )
    for note in assembly.notes:
        console.print(f"data: {note}", highlight=False, soft_wrap=True)
    data.notes.extend(assembly.notes)
    model, task, objective, scorer = assembly.model, assembly.task, assembly.objective, assembly.scorer
    modules = {"model": model, "objective": objective}
    batches = task.batches
    evaluator = make_evaluator(config, split)
    # fused Adam: one kernel over each table instead of ~10 elementwise passes (7.9 -> 1.6 ms a step
    # for Gowalla-sized tables on this CPU); torch has it for CPU and CUDA tensors
    fused = device.type in ("cpu", "cuda")
    parameters = [*model.parameters(), *objective.parameters()]
    optimizer = torch.optim.Adam(
        parameters, lr=config.train.learning_rate, weight_decay=config.train.weight_decay, fused=fused
    )
    info = CheckpointInfo(
        model=config.model.name,
        num_users=split.num_users,
        num_items=split.num_items,
        split_hash=split.content_hash,
        dataset=data.dataset.name,
        epoch=-1,
    )
    if resume:
        state = load_resume_state(run_dir, modules, optimizer, task, info)
        for note in run.truncate_log(state.next_epoch):
            console.print(note, highlight=False, soft_wrap=True)
        console.print(
            f"resuming {run_dir} at epoch {state.next_epoch} (best so far: epoch {state.best_epoch})"
        )
    else:
        run.clear_results()  # an earlier run's results in this directory are not this run's
        state = TrainingState(
            next_epoch=0,
            global_step=0,
            best_metric=-math.inf,
            best_epoch=-1,
            evaluations_since_best=0,
            train_seconds=0.0,
        )
    run.write_text("config.yaml", config.to_yaml())
    run.write_json("id_maps.json", data.id_maps())

    stopping_metric = config.train.early_stopping_metric
    budget = config.train.max_train_seconds
    total_steps = config.train.epochs * len(batches)
    eval_seconds = 0.0

    stopped_by = "epochs"
    with _progress(console, show_progress) as progress:
        epoch_task = progress.add_task("epochs", total=config.train.epochs, completed=state.next_epoch)
        batch_task = progress.add_task("batches", total=len(batches))
        for epoch in range(state.next_epoch, config.train.epochs):
            task.on_epoch(epoch)
            objective.on_epoch(epoch)
            model.train()
            objective.train()
            epoch_started = time.perf_counter()
            sums: dict[str, torch.Tensor] = {}
            steps_run, out_of_time = 0, False
            progress.reset(batch_task, total=len(batches), description=f"epoch {epoch}")
            lr = _learning_rate(config, state.global_step, total_steps)
            # the steps' score-sized temporaries reuse the heap; evaluation runs on glibc's rules
            with steps_reuse_freed_memory():
                for step, batch in enumerate(batches):
                    lr = _learning_rate(config, state.global_step, total_steps)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    try:
                        parts = training_step(task, objective, optimizer, batch)
                    except _NonFiniteLossError as failure:
                        raise _diverged(epoch, step, state.global_step, failure.parts, config) from None
                    state.global_step += 1
                    steps_run += 1
                    for name, part in parts.items():
                        sums[name] = sums[name] + part if name in sums else part
                    progress.advance(batch_task)
                    spent = state.train_seconds + time.perf_counter() - epoch_started
                    if budget is not None and spent >= budget:
                        out_of_time = True  # checked between batches: the budget is not overrun by an epoch
                        break
            _check_parameters(modules, epoch, config)
            epoch_seconds = time.perf_counter() - epoch_started
            state.train_seconds += epoch_seconds
            record: dict[str, Any] = {
                "epoch": epoch,
                "train_seconds": round(epoch_seconds, 3),
                "lr": lr,
                **{name: float(value) / max(steps_run, 1) for name, value in sums.items()},
            }
            if out_of_time and steps_run < len(batches):
                record["steps"] = steps_run  # a partial epoch: the budget ended it
            last_epoch = epoch == config.train.epochs - 1 or out_of_time
            stop = out_of_time
            if (epoch + 1) % config.train.eval_every == 0 or last_epoch:
                valid = evaluate_fold(scorer, evaluator, "valid")
                eval_seconds += valid.seconds
                value = valid.metrics[stopping_metric]
                record["valid"] = valid.metrics
                record["eval_seconds"] = round(valid.seconds, 3)
                if value > state.best_metric:
                    state.best_metric, state.best_epoch, state.evaluations_since_best = value, epoch, 0
                    save_weights(modules, run_dir / WEIGHTS_FILE, _with_epoch(info, epoch))
                    record["best"] = True
                else:
                    state.evaluations_since_best += 1
                    stop = stop or state.evaluations_since_best >= config.train.patience
                console.print(
                    f"epoch {epoch:>4}  loss {record['loss']:.4f}  {stopping_metric} {value:.4f}"
                    + (
                        "  (best)"
                        if record.get("best")
                        else f"  (best {state.best_metric:.4f} @ {state.best_epoch})"
                    )
                )
            state.history.append(record)
            run.append_log(record)
            state.next_epoch = epoch + 1
            save_resume_state(run_dir, modules, optimizer, task, state, _with_epoch(info, epoch))
            progress.advance(epoch_task)
            if stop:
                stopped_by = "time budget" if out_of_time else "patience"
                reason = (
                    "time budget reached"
                    if out_of_time
                    else f"no improvement in {config.train.patience} evaluations"
                )
                console.print(f"stopping after epoch {epoch}: {reason}")
                break

    if state.best_epoch < 0:
        raise CheckpointError(f"{run_dir}: training finished without a validation evaluation")
    load_weights(modules, run_dir / WEIGHTS_FILE, info)
    valid = evaluate_fold(scorer, evaluator, "valid")
    test = evaluate_fold(scorer, evaluator, "test")
    eval_seconds += valid.seconds + test.seconds
    epochs_run = state.next_epoch
    result = TrainResult(
        run_dir=run_dir,
        model=model,
        objective=objective,
        task=task,
        scorer=scorer,
        data=data,
        best_epoch=state.best_epoch,
        epochs_run=epochs_run,
        valid=valid,
        test=test,
        timings={
            "train_seconds": round(state.train_seconds, 3),
            "seconds_per_epoch": round(state.train_seconds / max(epochs_run, 1), 3),
            "eval_seconds": round(eval_seconds, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
        },
        num_parameters=count_parameters(model),
        stopped_by=stopped_by,
        history=state.history,
    )
    run.write_json("metrics.json", result.to_dict())
    return result


RESUMABLE_CHANGES = frozenset({("train", "epochs"), ("train", "max_train_seconds"), ("train", "num_threads")})
"""What a resumed run may set differently from the run it continues: how long, and how many threads."""


def _check_resumable(run_dir: Path, config: ExperimentConfig) -> None:
    """Refuse, before anything is written, a resume whose config differs from the saved one in
    anything that would change what the continued run computes."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        raise CheckpointError(
            f"{run_dir}: no resumable state (no config.yaml); start the run without --resume"
        )
    try:
        saved = yaml.safe_load(saved_path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"{saved_path}: unreadable ({error}); start the run afresh") from error
    current = yaml.safe_load(config.to_yaml())
    differences = [
        f"{'.'.join(path)}: {old!r} -> {new!r}"
        for path, old, new in _config_differences(saved, current)
        if path not in RESUMABLE_CHANGES and path != ("output_dir",)
    ]
    if differences:
        raise ConfigError(
            f"--resume: the config differs from the run in {run_dir} in what it computes: "
            + "; ".join(differences)
            + " (only train.epochs, train.max_train_seconds and train.num_threads may change; "
            "start a new run in another output_dir for the rest)"
        )


def _config_differences(
    old: object, new: object, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], object, object]]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in [*old, *(key for key in new if key not in old)]:
            found += _config_differences(old.get(key), new.get(key), (*path, str(key)))
        return found
    return [] if old == new else [(path, old, new)]


class _NonFiniteLossError(Exception):
    def __init__(self, parts: dict[str, torch.Tensor]) -> None:
        super().__init__("non-finite loss")
        self.parts = parts


def _diverged(
    epoch: int, step: int, global_step: int, parts: dict[str, torch.Tensor], config: ExperimentConfig
) -> TrainingDiverged:
    culprits = [name for name, value in parts.items() if name != "loss" and not torch.isfinite(value)]
    terms = ", ".join(f"'{name}' = {float(parts[name])}" for name in culprits) or "the weighted sum"
    return TrainingDiverged(
        f"training diverged at epoch {epoch}, step {step} (step {global_step} of the run): loss term "
        f"{terms}; nothing was scored. Lower train.learning_rate (now {config.train.learning_rate}) "
        "or the term weights"
    )


def _check_parameters(modules: dict[str, nn.Module], epoch: int, config: ExperimentConfig) -> None:
    for prefix, module in modules.items():
        for name, parameter in module.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: parameter '{prefix}.{name}' holds NaN or "
                    f"infinite values after the epoch's last step; nothing was scored. Lower "
                    f"train.learning_rate (now {config.train.learning_rate})"
                )


def training_step(
    task: Task, objective: Objective, optimizer: torch.optim.Optimizer, batch: Any
) -> dict[str, torch.Tensor]:
    """One optimisation step: ``loss, parts = objective(task.outputs(batch))``, clear the gradients
    (to None: no zero-fill), backpropagate, update. Returns the total and the parts, detached:
    tensors, not floats, so summing them needs no device sync per step on CUDA."""
    loss, parts = objective(task.outputs(batch))
    if not bool(torch.isfinite(loss)):  # one host sync a step: a NaN must not reach the weights
        raise _NonFiniteLossError({"loss": loss.detach(), **parts})
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), **parts}


def _learning_rate(config: ExperimentConfig, step: int, total_steps: int) -> float:
    base = config.train.learning_rate
    if config.train.lr_schedule == "cosine":
        return base * 0.5 * (1.0 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    return base


def _with_epoch(info: CheckpointInfo, epoch: int) -> CheckpointInfo:
    return CheckpointInfo(**{**info.__dict__, "epoch": epoch})


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not enabled,
    )
