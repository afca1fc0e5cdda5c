"""ANN indexes against exact search: build time, memory, recall@K and queries per second.

Two catalogues: a finished run's item table (``--run RUN_DIR``, e.g. Gowalla LightGCN, 41k items,
queries = the run's users, seen items excluded as ``recforge serve`` does) and a synthetic one
(``--synthetic N``: N seeded vectors of ``--dim`` dimensions, queries drawn the same way, nothing
excluded). ``--clusters 0`` draws them isotropic Gaussian, the adversarial case: no structure for
a partition or a graph to use, every direction equally likely. ``--clusters C`` draws a mixture,
as trained embeddings are (they gather by genre, place, community): C unit-variance Gaussian
centres, each vector a centre plus Gaussian noise of standard deviation ``--spread``.
For each configuration: build seconds, the index's serialised size, and, over ``--queries``
queries in batches of ``--batch-size``, recall@K of its top-K against exact top-K (FAISS
``IndexFlatIP``, the same inner products) and the queries per second of both. HNSW (walked over
lifted items, and by inner product as ``hnsw-ip``) has its ``efSearch`` and IVF its ``nprobe``
swept on one built index each (set per search, as ``ItemIndex.search`` does; recall moving with
them shows they are applied).

    python benchmarks/ann_indexes.py --run benchmarks/runs/gowalla-distill/lightgcn32-rrd-1800s
    python benchmarks/ann_indexes.py --synthetic 1000000 --dim 64 [--clusters 1024] [--kinds ...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import faiss
import numpy as np
import scipy.sparse as sp

from recforge.retrieval.index import IndexParams, ItemIndex, build_index, faiss_index, index_params
from recforge.retrieval.recommender import load_recommender

HNSW_EF: list[dict[str, object]] = [{"ef_search": ef} for ef in (16, 64, 128, 256, 512, 1024)]
SWEEPS: dict[str, tuple[str, dict[str, object], list[dict[str, object]]]] = {
    # label: (kind, build settings, query-time settings swept on the one built index)
    "flat": ("flat", {}, [{}]),
    "ivf": ("ivf", {}, [{"nprobe": n} for n in (4, 16, 64, 256)]),
    "hnsw": ("hnsw", {}, HNSW_EF),
    "hnsw-ip": ("hnsw", {"hnsw_space": "inner_product"}, HNSW_EF),
    "ivfpq": ("ivfpq", {}, [{"nprobe": n, "refine": r} for n, r in ((16, 0), (16, 4), (64, 4), (64, 10))]),
}


def synthetic_vectors(
    rng: np.random.Generator, count: int, dim: int, clusters: int, spread: float
) -> np.ndarray:
    """(count, dim) float32: isotropic Gaussian (``clusters`` 0) or a Gaussian mixture whose
    centres come from a fixed seed, so items and queries share them."""
    if not clusters:
        return rng.standard_normal((count, dim), dtype=np.float32)
    centres = np.random.default_rng(0).standard_normal((clusters, dim), dtype=np.float32)
    members = rng.integers(clusters, size=count)
    return centres[members] + spread * rng.standard_normal((count, dim), dtype=np.float32)


def synthetic_index(items: np.ndarray, params: IndexParams) -> ItemIndex:
    """An index over a bare matrix (no run): the same FAISS construction as ``build_index``."""
    built, seconds = faiss_index(items, params)
    return ItemIndex(built, params, {"build_seconds": seconds, "kind": params.kind})


def measure(
    index: ItemIndex,
    exact: ItemIndex,
    queries: np.ndarray,
    seen: sp.csr_matrix | None,
    k: int,
    batch_size: int,
) -> tuple[float, float, float]:
    """(recall@k, ANN queries/s, exact queries/s)."""
    found, ann_seconds, exact_seconds = [], 0.0, 0.0
    for start in range(0, len(queries), batch_size):
        block = queries[start : start + batch_size]
        block_seen = None if seen is None else seen[start : start + len(block)]
        began = time.perf_counter()
        truth = exact.search(block, k, block_seen)[1]
        exact_seconds += time.perf_counter() - began
        began = time.perf_counter()
        answer = index.search(block, k, block_seen)[1]
        ann_seconds += time.perf_counter() - began
        found += [
            len(set(a[a >= 0]) & set(t[t >= 0])) / max(1, int((t >= 0).sum()))
            for a, t in zip(answer, truth, strict=True)
        ]
    return float(np.mean(found)), len(queries) / ann_seconds, len(queries) / exact_seconds


def index_bytes(index: ItemIndex) -> int:
    return int(faiss.serialize_index(index.index).nbytes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path)
    source.add_argument("--synthetic", type=int)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--clusters", type=int, default=0, help="synthetic mixture components (0: none)")
    parser.add_argument("--spread", type=float, default=0.5, help="noise around a synthetic centre")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--kinds", nargs="+", default=list(SWEEPS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    recommender = None
    if args.run:
        recommender = load_recommender(args.run, device="cpu")
        users = np.sort(
            rng.choice(
                recommender.split.num_users,
                size=min(args.queries, recommender.split.num_users),
                replace=False,
            )
        )
        queries = recommender.user_embeddings()[users].float().numpy()
        seen = recommender.seen[users]
        items = recommender.item_embeddings().float().numpy()
        label = f"{args.run.name}: {len(items):,} items × {items.shape[1]}"
    else:
        items = synthetic_vectors(rng, args.synthetic, args.dim, args.clusters, args.spread)
        queries = synthetic_vectors(rng, args.queries, args.dim, args.clusters, args.spread)
        seen = None
        shape = f"{args.clusters} clusters, spread {args.spread}" if args.clusters else "isotropic"
        label = f"synthetic ({shape}): {len(items):,} items × {args.dim}"
    print(
        f"{label}; {len(queries):,} queries, k = {args.k}, {args.threads} threads, "
        f"load {os.getloadavg()[0]:.2f}"
    )

    def build(kind: str, settings: dict[str, object]) -> ItemIndex:
        params = index_params(kind, settings)
        return build_index(recommender, params) if recommender is not None else synthetic_index(items, params)

    exact = build("flat", {})
    print("| kind | parameters | build s | size MiB | recall@k | ANN q/s | exact q/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for label in args.kinds:
        kind, build_settings, sweep = SWEEPS[label]
        built = build(kind, build_settings)
        for settings in sweep:
            built.params = built.params.model_copy(update=settings)  # query-time settings only
            recall, ann_qps, exact_qps = measure(built, exact, queries, seen, args.k, args.batch_size)
            shown = ", ".join(f"{name}={value}" for name, value in settings.items()) or "exact"
            print(
                f"| {label} | {shown} | {built.meta['build_seconds']:.1f} | "
                f"{index_bytes(built) / 2**20:.1f} | "
                f"{recall:.4f} | {ann_qps:,.0f} | {exact_qps:,.0f} | {ann_qps / exact_qps:.1f}× |",
                flush=True,
            )
    print(f"load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
