"""Issue-3 tables: MF, LightGCN, GAT and RGT on GFormer's LastFM and Yelp; LightGCN against RGT over
five seeds on both; RGT ablations on LastFM (three seeds); the anchor-set size sweep; RGT's cost
next to LightGCN's.

Protocol (every run): the shipped 70:5:25 train/valid/test split, full ranking over all items with
train items masked, Recall/NDCG@20/40. Early stopping and checkpoint choice read valid Recall@40
only; the test fold is scored once. Every run of a dataset gets the same wall-clock training
budget and thread count, in its own ``recforge train`` process (:mod:`run_matrix`), which also
records peak memory.

    python benchmarks/graph_transformer.py --runs lastfm-mf,lastfm-lightgcn --budget-s 600
    python benchmarks/graph_transformer.py --report        # tables.md + anchors.png under --out
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import run_matrix
from recforge.data.anchors import anchor_hop_distances, bipartite_adjacency, sample_anchors
from recforge.data.dataset import Fold
from recforge.data.registry import load_dataset
from run_matrix import REPO, Run, cells, load

METRICS = ("recall@20", "recall@40", "ndcg@20", "ndcg@40")
SEEDS = (2020, 2021, 2022)
COMPARISON_SEEDS = (*SEEDS, 2023, 2024)
"""LightGCN against RGT, the issue's headline claim, gets five seeds; the ablations three."""
ANCHOR_COUNTS = (8, 16, 32, 64, 128)
ABLATIONS = {
    "full": (),
    "no-position": ("model.position_encoding=false",),
    "no-distill": ("objective.terms.distill=null",),
    "no-masking": ("model.masked_autoencoding=false", "objective.terms.reconstruction=null"),
    "no-cir": ("objective.terms.cir=null",),
}


def config(dataset: str, model: str) -> Path:
    return REPO / "configs" / f"gformer-{dataset}" / f"{model}.yaml"


def ablation_name(variant: str, seed: int) -> str:
    return "lastfm-rgt" if (variant, seed) == ("full", SEEDS[0]) else f"lastfm-rgt-{variant}-seed{seed}"


def seed_name(dataset: str, model: str, seed: int) -> str:
    """Seed 2020 is the main table's run; LastFM RGT's other seeds are the full-model ablation runs."""
    if seed == SEEDS[0]:
        return f"{dataset}-{model}"
    if (dataset, model) == ("lastfm", "rgt"):
        return ablation_name("full", seed)
    return f"{dataset}-{model}-seed{seed}"


def anchor_name(count: int) -> str:
    return "lastfm-rgt" if count == 32 else f"lastfm-rgt-anchors{count}"


RUNS = {
    run.name: run
    for run in [
        *(
            Run(f"{d}-{m}", config(d, m))
            for d in ("lastfm", "yelp")
            for m in ("mf", "lightgcn", "gat", "rgt")
        ),
        *(
            Run(ablation_name(v, s), config("lastfm", "rgt"), (*o, f"seed={s}"))
            for v, o in ABLATIONS.items()
            for s in SEEDS
            if ablation_name(v, s) != "lastfm-rgt"
        ),
        *(
            Run(seed_name(d, m, s), config(d, m), (f"seed={s}",))
            for d in ("lastfm", "yelp")
            for m in ("lightgcn", "rgt")
            for s in COMPARISON_SEEDS[1:]  # LastFM RGT's seeds 2021/2022 are the ablations' full runs
        ),
        *(
            Run(anchor_name(a), config("lastfm", "rgt"), (f"model.anchors={a}",))
            for a in ANCHOR_COUNTS
            if a != 32
        ),
    ]
}


def distance_seconds(dataset: str, count: int, cutoff: int = 4, repeats: int = 3) -> float:
    """Median seconds of one anchor hop-distance computation on the dataset's training graph."""
    data = load_dataset(f"gformer-{dataset}")
    train = data.interactions.take(data.fold == Fold.TRAIN).to_csr(data.num_users, data.num_items)
    graph = bipartite_adjacency(train)
    times = []
    for repeat in range(repeats):
        anchors = sample_anchors(graph.shape[0], count, np.random.default_rng(repeat))
        started = time.perf_counter()
        anchor_hop_distances(graph, anchors, cutoff)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def seed_cells(runs: list[dict | None]) -> str:
    """Mean ± sample std of each test metric over the finished runs, then how many finished."""
    done = [run for run in runs if run]
    if not done:
        return " | ".join(["–"] * len(METRICS)) + " | 0"
    stats = []
    for metric in METRICS:
        values = [run["test"][metric] for run in done]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        stats.append(f"{statistics.mean(values):.4f} ± {spread:.4f}")
    return " | ".join(stats) + f" | {len(done)}"


def report(out: Path) -> str:
    header = (
        "| dataset | model | " + " | ".join(f"test {m}" for m in METRICS) + " | best/ran epochs | train s |"
    )
    rule = "|---" * (len(METRICS) + 4) + "|"
    lines = ["### Main table (test fold, selected on valid Recall@40)", "", header, rule]
    for dataset in ("lastfm", "yelp"):
        for model, label in (("mf", "MF"), ("lightgcn", "LightGCN"), ("gat", "GAT"), ("rgt", "RGT")):
            lines.append(f"| {dataset} | {label} | {cells(load(out, f'{dataset}-{model}'), METRICS)} |")

    lines += [
        "",
        f"### LightGCN against RGT over seeds {', '.join(map(str, COMPARISON_SEEDS))} (test, mean ± std)",
        "",
        "| dataset | model | " + " | ".join(f"test {m}" for m in METRICS) + " | seeds done |",
        "|---" * 7 + "|",
    ]
    for dataset in ("lastfm", "yelp"):
        for model, label in (("lightgcn", "LightGCN"), ("rgt", "RGT")):
            runs = [load(out, seed_name(dataset, model, seed)) for seed in COMPARISON_SEEDS]
            lines.append(f"| {dataset} | {label} | {seed_cells(runs)} |")

    lines += [
        "",
        "### RGT ablations on LastFM (test, mean ± std over seeds " + ", ".join(map(str, SEEDS)) + ")",
        "",
    ]
    lines += ["| variant | " + " | ".join(f"test {m}" for m in METRICS) + " | seeds done |", "|---" * 6 + "|"]
    for variant in ABLATIONS:
        runs = [load(out, ablation_name(variant, seed)) for seed in SEEDS]
        lines.append(f"| {variant} | {seed_cells(runs)} |")

    lines += [
        "",
        "### Anchor-set size (LastFM; distance time on the LastFM and Yelp training graphs, q = 4)",
        "",
    ]
    lines += [
        "| anchors | test recall@40 | test ndcg@40 | LastFM distances s | Yelp distances s |",
        "|---|---|---|---|---|",
    ]
    sweep = []
    for count in ANCHOR_COUNTS:
        run = load(out, anchor_name(count))
        lastfm_s, yelp_s = distance_seconds("lastfm", count), distance_seconds("yelp", count)
        recall = run["test"]["recall@40"] if run else float("nan")
        ndcg = run["test"]["ndcg@40"] if run else float("nan")
        sweep.append((count, recall, yelp_s))
        lines.append(f"| {count} | {recall:.4f} | {ndcg:.4f} | {lastfm_s:.4f} | {yelp_s:.4f} |")

    lines += ["", "### Cost on Yelp (same budget, one process each)", ""]
    lines += ["| model | seconds / epoch | epochs | peak RSS GiB | parameters |", "|---|---|---|---|---|"]
    for model in ("lightgcn", "gat", "rgt"):
        run = load(out, f"yelp-{model}")
        if run:
            peak = f"{run['peak_rss_gib']:.2f}" if run.get("peak_rss_gib") else "–"
            per_epoch, epochs, parameters = run["seconds_per_epoch"], run["epochs_run"], run["parameters"]
            lines.append(f"| {model} | {per_epoch:.2f} | {epochs} | {peak} | {parameters:,} |")
    text = "\n".join(lines) + "\n"
    (out / "tables.md").write_text(text)

    figure, left = plt.subplots(figsize=(6, 3.5))
    left.plot([c for c, _, _ in sweep], [r for _, r, _ in sweep], marker="o", color="C0")
    full = [run["test"]["recall@40"] for run in (load(out, ablation_name("full", s)) for s in SEEDS) if run]
    shown = [r for _, r, _ in sweep if r == r]  # finished sweep runs (NaN otherwise)
    if len(full) > 1:  # the seed spread of the 32-anchor model: the scale any difference is read on
        mean, spread = statistics.mean(full), statistics.stdev(full)
        band = f"A=32, mean ± std of {len(full)} seeds"
        left.axhspan(mean - spread, mean + spread, color="C0", alpha=0.15, label=band)
        left.legend(loc="lower right", fontsize=8)
        shown += [mean - spread, mean + spread]
    if shown:  # ±0.01 around the values, so seed-level wiggles are not drawn as trends
        left.set_ylim(min(shown) - 0.01, max(shown) + 0.01)
    left.set_xscale("log", base=2)
    left.set_xlabel("anchor-set size A")
    left.set_ylabel("LastFM test Recall@40", color="C0")
    right = left.twinx()
    right.plot([c for c, _, _ in sweep], [s for _, _, s in sweep], marker="s", color="C1")
    right.set_ylabel("Yelp distance computation (s)", color="C1")
    left.set_title("RGT anchor-set size")
    left.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "anchors.png", dpi=120)
    return text


if __name__ == "__main__":
    run_matrix.main(
        RUNS,
        report,
        description=__doc__.splitlines()[0],
        out=REPO / "benchmarks" / "out" / "graph_transformer",
        budget_s=300.0,
    )
