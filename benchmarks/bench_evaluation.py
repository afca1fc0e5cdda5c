"""Seconds to evaluate every Gowalla test user by full ranking, against the matmul + topk floor.

Target (2-core CPU): evaluating all 29,858 test users over 40,981 items with 64-d embeddings,
Recall/NDCG/HR@20, train + valid items masked, in <= 8 s. Scoring is a dense matmul and a topk per
batch; anything the evaluator adds on top (masking, relevance lookup, metrics, slices) shows up as
the gap between columns (b') and (c). Column (b') differs from (b) only by writing every batch's
scores into one reused buffer, as the evaluator does: fresh 100+ MB blocks cost page faults. The
embeddings are random (seeded): the timing depends on their shapes, not their values.

    python benchmarks/bench_evaluation.py [--data-root ../shared/data] [--batch-sizes 256 1024 4096]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch

from recforge.data.readers.lightgcn import read_lightgcn
from recforge.data.split import Split
from recforge.data.splitting import given_split
from recforge.evaluation.evaluator import Evaluator

REPO = Path(__file__).resolve().parents[1]


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """Fastest of ``repeats`` runs: the least disturbed by other processes on a shared machine."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def matmul_only(users: torch.Tensor, items: torch.Tensor, batch_size: int) -> None:
    for start in range(0, len(users), batch_size):
        users[start : start + batch_size] @ items.T


def matmul_topk(users: torch.Tensor, items: torch.Tensor, batch_size: int, k: int) -> None:
    for start in range(0, len(users), batch_size):
        (users[start : start + batch_size] @ items.T).topk(k, dim=1)


def matmul_topk_into_buffer(users: torch.Tensor, items: torch.Tensor, batch_size: int, k: int) -> None:
    buffer = users.new_empty(batch_size, len(items))  # what Evaluator.evaluate does
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        torch.mm(batch, items.T, out=buffer[: len(batch)]).topk(k, dim=1)


def load_gowalla(data_root: Path) -> Split:
    folder = data_root / "lightgcn-gowalla"
    dataset = read_lightgcn(folder / "train.txt.gz", folder / "test.txt.gz", name="gowalla")
    return given_split(dataset, valid_ratio=0.1, seed=2020)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1024])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    loading = time.perf_counter()
    split = load_gowalla(args.data_root)
    loading = time.perf_counter() - loading
    generator = torch.Generator().manual_seed(2020)
    user_embeddings = torch.randn(split.num_users, args.dim, generator=generator).to(args.device)
    item_embeddings = torch.randn(split.num_items, args.dim, generator=generator).to(args.device)
    masked = len(split.train) + len(split.valid)
    print(f"gowalla: {split.num_users} users x {split.num_items} items, {masked} train+valid interactions "
          f"masked, {len(split.test)} test interactions; loaded and split in {loading:.1f} s")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"load average at start {os.getloadavg()[0]:.2f}\n")

    print("| batch | (a) matmul s | (b) matmul+topk s | (b') same, one reused buffer s "
          "| (c) Evaluator.evaluate s | (c) first call s | users | recall@20 | peak RSS GiB | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch_size in args.batch_sizes:
        evaluator = Evaluator(split, ks=(20,), metrics=("recall", "ndcg", "hit"), batch_size=batch_size)
        first = time.perf_counter()  # builds the fold index (once per fold and device), then scores
        result = evaluator.evaluate(user_embeddings, item_embeddings, "test")
        first = time.perf_counter() - first
        with torch.no_grad():
            seconds_matmul = best_of(args.repeats, lambda b=batch_size: matmul_only(user_embeddings,
                                                                                    item_embeddings, b))
            seconds_topk = best_of(args.repeats, lambda b=batch_size: matmul_topk(user_embeddings,
                                                                                  item_embeddings, b, 20))
            seconds_buffer = best_of(args.repeats, lambda b=batch_size: matmul_topk_into_buffer(
                user_embeddings, item_embeddings, b, 20))
        seconds_evaluate = best_of(
            args.repeats, lambda e=evaluator: e.evaluate(user_embeddings, item_embeddings, "test"))
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"| {batch_size} | {seconds_matmul:.2f} | {seconds_topk:.2f} | {seconds_buffer:.2f} "
              f"| {seconds_evaluate:.2f} "
              f"| {first:.2f} | {result.num_users} | {result.metrics['recall@20']:.5f} | {peak_gib:.2f} "
              f"| {os.getloadavg()[0]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
