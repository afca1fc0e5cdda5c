"""What a query costs each model of finished runs: exact full-ranking top-K time and memory.

For each run directory (a teacher and its students, or a graph filter) this loads the run through
``load_recommender`` (what a service does) and measures, with ``--threads`` torch threads:

* **batched**: ``--batched-users`` seeded users' top ``k`` over the whole catalogue, seen items
  masked, in batches of ``--batch-size`` users (``Recommender.recommend``); the time per query;
* **single**: ``--single`` users asked one at a time, median and 95th percentile per query;
* **memory**: the bytes of what scoring reads beyond the split (the user and item tables; a
  filter's fitted state) and the process's peak resident memory after the run's measurements.

The first query of each kind is run once before timing (lazy tables, allocator warm-up). Runs are
measured one after another in one process; ``ru_maxrss`` only grows, so the peak is cumulative and
the per-run figure is the table size.

    python benchmarks/scoring_cost.py RUN_DIR [RUN_DIR ...] [--k 20] [--threads 1] [--single 200]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from recforge.models.scoring import FilterScorer
from recforge.retrieval.recommender import Recommender, load_recommender


def table_bytes(recommender: Recommender) -> int:
    """What ranking reads besides the split: embedding tables, or a filter's fitted state."""
    scorer = recommender.scorer
    if isinstance(scorer, FilterScorer):
        fitted = scorer.filter
        state = sum(t.numel() * t.element_size() for t in fitted.fitted_tensors().values())
        graph = getattr(fitted, "graph_", None)
        if graph is not None and graph.item_item is not None:  # the sparse item-item filter
            item_item = graph.item_item
            state += item_item.data.nbytes + item_item.indices.nbytes + item_item.indptr.nbytes
        return state
    users, items = recommender.user_embeddings(), recommender.item_embeddings()
    return users.numel() * users.element_size() + items.numel() * items.element_size()


def measure(
    run_dir: Path, k: int, batch_size: int, single: int, batched_users: int, seed: int
) -> dict[str, object]:
    recommender = load_recommender(run_dir, device="cpu")
    rng = np.random.default_rng(seed)
    users = recommender.user_ids
    recommender.recommend(users[:2], k=k)  # warm-up: tables, buffers
    sample = [
        users[i] for i in np.sort(rng.choice(len(users), size=min(batched_users, len(users)), replace=False))
    ]
    started = time.perf_counter()
    for start in range(0, len(sample), batch_size):
        recommender.recommend(sample[start : start + batch_size], k=k)
    batched = (time.perf_counter() - started) / len(sample)
    asked = [users[i] for i in rng.choice(len(users), size=min(single, len(users)), replace=False)]
    times = []
    for user in asked:
        begin = time.perf_counter()
        recommender.recommend([user], k=k)
        times.append(time.perf_counter() - begin)
    return {
        "run": run_dir.name,
        "model": f"{recommender.model_name} {describe(recommender)}".strip(),
        "users": len(users),
        "items": len(recommender.item_ids),
        "batched_ms": 1000 * batched,
        "single_p50_ms": 1000 * statistics.median(times),
        "single_p95_ms": 1000 * float(np.percentile(times, 95)),
        "table_mib": table_bytes(recommender) / 2**20,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def describe(recommender: Recommender) -> str:
    model = recommender.config.model
    if getattr(model, "dim", None) is not None:
        return f"d={model.dim}"  # type: ignore[union-attr]
    factors = getattr(model, "num_factors", None)
    return f"k={factors}" if factors is not None else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--single", type=int, default=200, help="users asked one at a time")
    parser.add_argument(
        "--batched-users", type=int, default=4096, help="users asked in batches (seeded sample)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, k {args.k}, load average {os.getloadavg()[0]:.2f}")
    print("| run | model | users × items | batched ms/query | single p50 / p95 ms | tables MiB | peak GiB |")
    print("|---|---|---|---|---|---|---|")
    for run_dir in args.runs:
        row = measure(run_dir, args.k, args.batch_size, args.single, args.batched_users, args.seed)
        print(
            f"| {row['run']} | {row['model']} | {row['users']:,} × {row['items']:,} | "
            f"{row['batched_ms']:.3f} | {row['single_p50_ms']:.2f} / {row['single_p95_ms']:.2f} | "
            f"{row['table_mib']:.1f} | "
            f"{row['peak_rss_gib']:.2f} |",
            flush=True,
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
