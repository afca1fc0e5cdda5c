"""Seconds per LightGCN training epoch on Gowalla, and peak memory (issue: >= 3x faster than RecBole).

Settings match RecBole's peer run (../shared/peers/lightgcn_gowalla.yaml): 64-d, 3 layers,
batch 2048, one uniform negative, BPR + 1e-4 L2, Adam 1e-3. The epochs run through the real
trainer (`recforge.train`), so sampling, propagation, loss and optimizer are all counted; the
validation evaluation is timed separately.

    python benchmarks/bench_training_speed.py [--epochs 3] [--model lightgcn] [--data-root ../shared/data]

Run RecBole back to back with: LGCN_BUDGET=1 ../shared/peers/recbole_runs.sh ../shared/data WORK lightgcn
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from recforge.config import load_config
from recforge.train.trainer import train

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", choices=("lightgcn", "mf"), default="lightgcn")
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args()

    overrides = [f"train.epochs={args.epochs}", f"train.eval_every={args.epochs}", "train.patience=1000"]
    if args.data_root:
        overrides.append(f"data.root={args.data_root.resolve()}")
    config_path = REPO / "configs" / "gowalla" / f"{args.model}.yaml"
    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(config_path, [*overrides, f"output_dir={run_dir}"])
        started = time.perf_counter()
        result = train(config, show_progress=False)
        wall = time.perf_counter() - started
    epoch_seconds = [entry["train_seconds"] for entry in result.history]
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        "| model | epochs | s/epoch (median) | s/epoch (all) | full valid eval s | peak RSS GiB | threads "
        "| load avg |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| recforge {args.model} | {len(epoch_seconds)} | {statistics.median(epoch_seconds):.2f} | "
        f"{', '.join(f'{s:.2f}' for s in epoch_seconds)} | {result.valid.seconds:.2f} | {peak_gib:.2f} | "
        f"{torch.get_num_threads()} | {os.getloadavg()[0]:.2f} |"
    )
    print(f"wall {wall:.1f} s (includes data loading, split, {len(epoch_seconds)} epochs and 3 evaluations)")


if __name__ == "__main__":
    main()
