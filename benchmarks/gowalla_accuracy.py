"""LightGCN on Gowalla within a CPU time budget: test Recall/NDCG@20 vs the paper's 0.1830 / 0.1554.

Trains the given config (default: benchmarks/configs/gowalla_lightgcn_fast.yaml) through the real
trainer, selecting the checkpoint on the *validation* fold (10% of each user's train interactions,
seeded) and scoring the test fold once. Writes, under --out:

* ``curve.md``: validation Recall/NDCG@20 per evaluated epoch, with training seconds so far;
* ``curve.png``: the same curve, the paper's test figure as a reference line;
* ``summary.md``: the final table (best epoch, test metrics, time, budget).

    python benchmarks/gowalla_accuracy.py [--config CONFIG] [--budget-s 1800] [--out benchmarks/out/gowalla]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from recforge.config import load_config
from recforge.train.trainer import TrainResult, train

REPO = Path(__file__).resolve().parents[1]
PAPER = {"recall@20": 0.1830, "ndcg@20": 0.1554}


def curve_rows(result: TrainResult) -> list[tuple[int, float, float, float]]:
    """(epoch, cumulative train seconds, valid recall@20, valid ndcg@20) of every evaluated epoch."""
    rows, elapsed = [], 0.0
    for entry in result.history:
        elapsed += entry["train_seconds"]
        if "valid" in entry:
            rows.append((entry["epoch"], elapsed, entry["valid"]["recall@20"], entry["valid"]["ndcg@20"]))
    return rows


def write_outputs(result: TrainResult, out: Path, budget_s: float, config_name: str, wall_s: float) -> str:
    out.mkdir(parents=True, exist_ok=True)
    rows = curve_rows(result)
    lines = ["| epoch | train s | valid recall@20 | valid ndcg@20 |", "|---|---|---|---|"]
    lines += [f"| {e} | {s:.0f} | {r:.4f} | {n:.4f} |" for e, s, r, n in rows]
    (out / "curve.md").write_text("\n".join(lines) + "\n")

    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot([s / 60 for _, s, _, _ in rows], [r for _, _, r, _ in rows], label="valid Recall@20")
    axis.plot([s / 60 for _, s, _, _ in rows], [n for _, _, _, n in rows], label="valid NDCG@20")
    axis.axhline(PAPER["recall@20"], linestyle="--", color="C0", alpha=0.6, label="paper test Recall@20")
    axis.axhline(PAPER["ndcg@20"], linestyle="--", color="C1", alpha=0.6, label="paper test NDCG@20")
    axis.scatter(
        [result.timings["train_seconds"] / 60] * 2,
        [result.test.metrics["recall@20"], result.test.metrics["ndcg@20"]],
        marker="x",
        color="k",
        zorder=3,
        label="ours, test (once, best-valid checkpoint)",
    )
    axis.set_xlabel("training time on CPU (minutes)")
    axis.set_ylabel("metric")
    axis.set_title(f"LightGCN on Gowalla: {config_name}")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "curve.png", dpi=120)

    test = result.test.metrics
    summary = "\n".join(
        [
            "| recipe | budget s | epochs | best epoch (valid) | train s | test recall@20 | test ndcg@20 | "
            "paper recall@20 | paper ndcg@20 | peak RSS GiB |",
            "|---|---|---|---|---|---|---|---|---|---|",
            f"| {config_name} | {budget_s:.0f} | {result.epochs_run} | {result.best_epoch} | "
            f"{result.timings['train_seconds']:.0f} | {test['recall@20']:.4f} | {test['ndcg@20']:.4f} | "
            f"{PAPER['recall@20']} | {PAPER['ndcg@20']} | "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} |",
            "",
            f"wall {wall_s:.0f} s on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
            f"split: {result.data.split.protocol}",
        ]
    )
    (out / "summary.md").write_text(summary + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", type=Path, default=REPO / "benchmarks" / "configs" / "gowalla_lightgcn_fast.yaml"
    )
    parser.add_argument(
        "--budget-s", type=float, default=1800.0, help="training seconds (evaluation excluded)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "gowalla")
    parser.add_argument("-o", "--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()

    config = load_config(
        args.config,
        [*args.overrides, f"train.max_train_seconds={args.budget_s}", f"output_dir={args.out / 'run'}"],
    )
    started = time.perf_counter()
    result = train(config)
    print(write_outputs(result, args.out, args.budget_s, args.config.stem, time.perf_counter() - started))


if __name__ == "__main__":
    main()
