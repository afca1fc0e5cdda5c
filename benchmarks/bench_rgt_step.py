"""Time one training step of RGT against one of LightGCN, both built from a shipped config.

A step is what the trainer runs per batch: RGT's includes its share of the rationale resampling
(every ``rationale_every`` steps) and of the anchor update. Each model is built exactly as
``recforge train`` builds it; the first ``--warmup`` steps are not timed; the median over
``--repeats`` blocks of ``--steps`` steps is reported, in milliseconds per step, next to the
milliseconds one rationale resampling takes on its own.

    .venv/bin/python benchmarks/bench_rgt_step.py [--dataset yelp] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from recforge.config import load_config
from recforge.tasks.rationale import RationaleTask
from recforge.train.experiment import assemble, prepare_data
from recforge.train.trainer import seed_everything, training_step

REPO = Path(__file__).resolve().parents[1]


def step_milliseconds(config_path: Path, steps: int, warmup: int, repeats: int) -> tuple[float, float | None]:
    """Median ms per training step, and ms per rationale resampling (RGT only)."""
    with tempfile.TemporaryDirectory() as scratch:
        config = load_config(config_path, [f"output_dir={scratch}"])
        seed_everything(config.seed)
        data = prepare_data(config, Path(scratch) / "split.npz")
        parts = assemble(config, data.split, torch.device("cpu"))
        model, task, objective = parts.model, parts.task, parts.objective
        optimizer = torch.optim.Adam(
            [*model.parameters(), *objective.parameters()], lr=config.train.learning_rate, fused=True
        )
        task.on_epoch(0)
        batches = iter(task.batches)
        model.train()
        for _ in range(warmup):
            training_step(task, objective, optimizer, next(batches))
        blocks = []
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(steps):
                training_step(task, objective, optimizer, next(batches))
            blocks.append((time.perf_counter() - started) / steps * 1e3)
        resample_ms = None
        if isinstance(task, RationaleTask):
            started = time.perf_counter()
            for _ in range(3):
                task._update_rationale()
            resample_ms = (time.perf_counter() - started) / 3 * 1e3
    return statistics.median(blocks), resample_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="yelp", choices=("lastfm", "yelp"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{platform.node()} ({os.cpu_count()} cpus), torch {torch.__version__}, {args.threads} thread(s)")
    for model in ("lightgcn", "rgt"):
        config = REPO / "configs" / f"gformer-{args.dataset}" / f"{model}.yaml"
        per_step, resample = step_milliseconds(config, args.steps, args.warmup, args.repeats)
        extra = f", one rationale resampling {resample:.0f} ms" if resample is not None else ""
        print(f"{args.dataset} {model}: {per_step:.0f} ms/step{extra} (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
