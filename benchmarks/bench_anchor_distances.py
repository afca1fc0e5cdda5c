"""Time the anchor hop-distance pre-computation of RGT/GFormer position encoding (recforge.data.anchors).

What is timed is :func:`recforge.data.anchors.anchor_hop_distances` alone (the adjacency is built
and the anchors drawn beforehand), the median of ``--repeats`` runs:

(a) against the graph size: Gowalla's training graph (LightGCN split, 70,839 nodes) with its
    interactions subsampled (seeded, without replacement) to 1/16 .. 1 of them, A=32, q=4.
    ``|E|`` is the number of stored adjacency entries (2 per interaction). The node set is kept,
    so every level also pays O(n) and the result costs O(n·A) to write: the least-squares line
    has an intercept, and seconds / (|E|·A) falls towards a constant as |E| grows if the cost is
    near-linear. A search stops at q hops, so the sparse subsamples (which reach little within q
    hops) cost less than a full traversal.
(b) against the anchor count A in {8, 16, 32, 64, 128} on the gformer-yelp training fold, q=4.

Writes, under ``--out``: ``scaling.md`` and ``scaling.png`` (a: time vs |E| with a least-squares
line), ``anchors.md`` (b). ``--quick`` (fractions 1/16 and 1/8, A in {8, 16}, one repeat) only
checks that the script runs.

    .venv/bin/python benchmarks/bench_anchor_distances.py [--out benchmarks/out/anchors] [--repeats 3]
    .venv/bin/python benchmarks/bench_anchor_distances.py --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import scipy
import scipy.sparse as sp

from recforge.data.anchors import anchor_hop_distances, bipartite_adjacency, sample_anchors
from recforge.data.dataset import Fold
from recforge.data.registry import load_dataset

REPO = Path(__file__).resolve().parents[1]
FRACTIONS = [Fraction(1, 16), Fraction(1, 8), Fraction(1, 4), Fraction(1, 2), Fraction(1)]
ANCHOR_COUNTS = [8, 16, 32, 64, 128]
QUICK_FRACTIONS = FRACTIONS[:2]
QUICK_ANCHOR_COUNTS = ANCHOR_COUNTS[:2]


def train_matrix(name: str, root: Path | None) -> sp.csr_matrix:
    """The training fold of a registered pre-split dataset as a binary user × item matrix."""
    dataset = load_dataset(name, root=root)
    interactions = dataset.interactions
    if dataset.fold is not None:
        interactions = interactions.take(dataset.fold == Fold.TRAIN)
    return interactions.to_csr(dataset.num_users, dataset.num_items)


def subsample(train: sp.csr_matrix, fraction: Fraction, seed: int = 0) -> sp.csr_matrix:
    """``fraction`` of the interactions, drawn without replacement; the user × item shape is kept."""
    coo = train.tocoo()
    keep = np.random.default_rng(seed).choice(coo.nnz, size=round(coo.nnz * fraction), replace=False)
    return sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=train.shape)


def median_seconds(step: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_distances(adjacency: sp.csr_matrix, count: int, cutoff: int, repeats: int) -> tuple[float, float]:
    """(median seconds, fraction of (node, anchor) pairs within the cut-off) for a seeded anchor set."""
    anchors = sample_anchors(adjacency.shape[0], count, np.random.default_rng(0))
    distances = anchor_hop_distances(adjacency, anchors, cutoff)  # warm-up, and the reach
    seconds = median_seconds(lambda: anchor_hop_distances(adjacency, anchors, cutoff), repeats)
    return seconds, float(np.isfinite(distances).mean())


# --- the alternatives of (c) ------------------------------------------------------------------------


def environment() -> str:
    return (
        f"numpy {np.__version__}, scipy {scipy.__version__}, {platform.processor() or platform.machine()}, "
        f"os.cpu_count()={os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def write_scaling(
    rows: list[tuple[Fraction, int, int, float, float]], count: int, cutoff: int, out: Path
) -> str:
    edges = np.array([row[2] for row in rows], dtype=np.float64)
    seconds = np.array([row[3] for row in rows])
    slope, intercept = np.polyfit(edges, seconds, 1) if len(rows) > 1 else (seconds[0] / edges[0], 0.0)
    lines = [
        f"Anchor distances vs |E|: Gowalla train graph subsampled, A={count}, q={cutoff}. "
        "|E| = stored adjacency entries (2 per interaction); median seconds.",
        "",
        "| fraction | interactions | abs(E) | seconds | ns per abs(E)·A | reached within q |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {fraction} | {interactions:,} | {nnz:,} | {secs:.4f} | {1e9 * secs / (nnz * count):.3f} "
        f"| {reach:.1%} |"
        for fraction, interactions, nnz, secs, reach in rows
    ]
    lines += ["", f"least squares: seconds = {intercept:.4f} + {1e9 * slope:.2f} ns × |E|", "", environment()]
    text = "\n".join(lines).replace("abs(E)", "\\|E\\|") + "\n"
    (out / "scaling.md").write_text(text)

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(edges / 1e6, seconds, "o", label=f"anchor_hop_distances (A={count}, q={cutoff})")
    grid = np.linspace(0, edges.max(), 50)
    axis.plot(grid / 1e6, intercept + slope * grid, "--", label="least-squares line")
    axis.set_xlabel("|E| (million stored adjacency entries)")
    axis.set_ylabel("seconds (median)")
    axis.set_title("Anchor hop distances on subsampled Gowalla")
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
    axis.legend()
    figure.tight_layout()
    figure.savefig(out / "scaling.png", dpi=120)
    plt.close(figure)
    return text


def write_anchors(rows: list[tuple[int, float, float]], graph: sp.csr_matrix, cutoff: int, out: Path) -> str:
    lines = [
        f"Anchor distances vs A: gformer-yelp train fold, {graph.shape[0]:,} nodes, "
        f"|E| = {graph.nnz:,} stored entries, q={cutoff}; median seconds.",
        "",
        "| A | seconds | ns per abs(E)·A | reached within q |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {count} | {secs:.4f} | {1e9 * secs / (graph.nnz * count):.3f} | {reach:.1%} |"
        for count, secs, reach in rows
    ]
    lines += ["", environment()]
    text = "\n".join(lines).replace("abs(E)", "\\|E\\|") + "\n"
    (out / "anchors.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "anchors")
    parser.add_argument("--data-root", type=Path, default=None, help="data root (default: found as usual)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cutoff", type=int, default=4, help="hop cut-off q")
    parser.add_argument("--scaling-anchors", type=int, default=32, help="A for the |E| scaling run")
    parser.add_argument("--quick", action="store_true", help="fractions 1/16, 1/8; A in {8, 16}; one repeat")
    args = parser.parse_args()
    fractions = QUICK_FRACTIONS if args.quick else FRACTIONS
    anchor_counts = QUICK_ANCHOR_COUNTS if args.quick else ANCHOR_COUNTS
    repeats = 1 if args.quick else args.repeats
    args.out.mkdir(parents=True, exist_ok=True)
    print(environment())

    gowalla = train_matrix("gowalla", args.data_root)
    scaling_rows = []
    for fraction in fractions:
        train = gowalla if fraction == 1 else subsample(gowalla, fraction)
        graph = bipartite_adjacency(train)
        seconds, reach = time_distances(graph, args.scaling_anchors, args.cutoff, repeats)
        scaling_rows.append((fraction, train.nnz, graph.nnz, seconds, reach))
        print(f"gowalla × {fraction}: |E| {graph.nnz:,}, {seconds:.4f} s", flush=True)
    print("\n" + write_scaling(scaling_rows, args.scaling_anchors, args.cutoff, args.out))

    yelp = bipartite_adjacency(train_matrix("gformer-yelp", args.data_root))
    anchor_rows = []
    for count in anchor_counts:
        seconds, reach = time_distances(yelp, count, args.cutoff, repeats)
        anchor_rows.append((count, seconds, reach))
    print(write_anchors(anchor_rows, yelp, args.cutoff, args.out))

    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
