"""Time LightGCN-style propagation on CPU: COO vs CSR, native autograd vs ``SparsePropagation``.

One measured step is what a LightGCN training step does with the graph: ``L`` propagations of a
(U+I, d) table through the normalised adjacency, the layer mean, and (for "fwd+bwd") the
backward of a scalar loss of it. Variants:

- ``coo``: ``torch.sparse.mm`` on a COO matrix, torch's own backward;
- ``csr``: ``torch.sparse.mm`` on a CSR matrix, torch's own backward (it transposes the matrix
  on every call);
- ``coo+Function`` / ``csr+Function``: :func:`recforge.models.propagation.sparse_propagate`,
  whose backward reuses the (symmetric) matrix as its own transpose;
- ``csr int64+Function``: the same with int64 instead of int32 CSR indices (``normalized_adjacency``
  uses int32 where they fit; the CSR variants above have int32 indices, COO is always int64);
- ``scipy``: scipy CSR @ numpy (forward only, single-threaded), a reference point.

Every variant's output and gradient are checked against ``csr+Function`` before timing.

    .venv/bin/python benchmarks/bench_propagation.py                   # synthetic Gowalla-sized graph
    .venv/bin/python benchmarks/bench_propagation.py --data gowalla    # ../shared/data/lightgcn-gowalla
    .venv/bin/python benchmarks/bench_propagation.py --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from recforge.data.graph import normalized_adjacency
from recforge.models.propagation import sparse_propagate

# Gowalla as published with LightGCN (train file): the synthetic graph has exactly these sizes
GOWALLA_USERS, GOWALLA_ITEMS, GOWALLA_EDGES = 29_858, 40_981, 810_128
GOWALLA_TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "lightgcn-gowalla" / "train.txt.gz"

Propagate = Callable[[Tensor], Tensor]


def synthetic_bipartite(num_users: int, num_items: int, num_edges: int, seed: int = 0) -> sp.csr_matrix:
    """A random user × item matrix with exactly ``num_edges`` distinct edges and heavy-tailed degrees.

    Endpoints are drawn with probabilities proportional to Pareto(1.5) weights (a few very active
    users and very popular items, many rare ones, like check-in data); duplicate draws are dropped
    and the draw repeated until enough distinct edges exist.
    """
    rng = np.random.default_rng(seed)
    user_p = rng.pareto(1.5, num_users) + 1.0
    item_p = rng.pareto(1.5, num_items) + 1.0
    user_p /= user_p.sum()
    item_p /= item_p.sum()
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < num_edges:
        draw = 2 * (num_edges - len(keys)) + 1000
        users = rng.choice(num_users, size=draw, p=user_p)
        items = rng.choice(num_items, size=draw, p=item_p)
        keys = np.unique(np.concatenate([keys, users.astype(np.int64) * num_items + items]))
    keys = rng.choice(keys, size=num_edges, replace=False)
    data = np.ones(num_edges, dtype=np.float32)
    return sp.csr_matrix((data, (keys // num_items, keys % num_items)), shape=(num_users, num_items))


def gowalla_train(path: Path) -> sp.csr_matrix:
    from recforge.data.dataset import Fold
    from recforge.data.readers.lightgcn import read_lightgcn

    dataset = read_lightgcn(path, name="gowalla")
    train = dataset.interactions
    if dataset.fold is not None:
        train = train.take(dataset.fold == Fold.TRAIN)
    return train.to_csr(dataset.num_users, dataset.num_items)


def layer_mean(propagate: Propagate, embedding: Tensor, num_layers: int) -> Tensor:
    layer = layer_sum = embedding
    for _ in range(num_layers):
        layer = propagate(layer)
        layer_sum = layer_sum + layer
    return layer_sum / (num_layers + 1)


def interleaved_times_ms(
    steps: dict[str, Callable[[], object]], repeats: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Wall-clock ms of each step, the steps timed round-robin: on a shared machine a burst of
    someone else's load then slows every variant alike instead of whichever ran during it."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            times[name].append(1e3 * (time.perf_counter() - started))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", choices=["synthetic", "gowalla"], default="synthetic")
    parser.add_argument("--gowalla-path", type=Path, default=GOWALLA_TRAIN)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--skip-slow", action="store_true", help="skip native-autograd backward runs")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    train = gowalla_train(args.gowalla_path) if args.data == "gowalla" else synthetic_bipartite(
        GOWALLA_USERS, GOWALLA_ITEMS, GOWALLA_EDGES
    )
    started = time.perf_counter()
    csr = normalized_adjacency(train)
    build_ms = 1e3 * (time.perf_counter() - started)
    coo = csr.to_sparse_coo().coalesce()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "sparse CSR is beta" note
        csr_int64 = torch.sparse_csr_tensor(
            csr.crow_indices().long(), csr.col_indices().long(), csr.values(), size=csr.shape
        )
    scipy_csr = sp.csr_matrix(
        (csr.values().numpy(), csr.col_indices().numpy(), csr.crow_indices().numpy()), shape=tuple(csr.shape)
    )
    num_nodes = csr.shape[0]
    degrees = np.diff(train.indptr)
    print(f"graph: {args.data}, {train.shape[0]} users, {train.shape[1]} items, {train.nnz} edges "
          f"(user degree max {degrees.max()}, median {np.median(degrees):g}); "
          f"adjacency {num_nodes}×{num_nodes}, nnz {csr.values().numel()}, built in {build_ms:.0f} ms")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"torch.get_num_threads()={torch.get_num_threads()}, "
          f"get_num_interop_threads()={torch.get_num_interop_threads()}, os.cpu_count()={os.cpu_count()}")
    print(f"dim {args.dim}, layers {args.layers}, repeats {args.repeats}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    generator = torch.Generator().manual_seed(0)
    embedding = (0.1 * torch.randn(num_nodes, args.dim, generator=generator)).requires_grad_()
    loss_weights = torch.randn(num_nodes, args.dim, generator=generator)

    variants: dict[str, Propagate] = {
        "coo": lambda x: torch.sparse.mm(coo, x),
        "csr": lambda x: torch.sparse.mm(csr, x),
        "coo+Function": lambda x: sparse_propagate(coo, x, adjacency_transpose=coo),
        "csr+Function": lambda x: sparse_propagate(csr, x, adjacency_transpose=csr),
        "csr int64+Function": lambda x: sparse_propagate(csr_int64, x, adjacency_transpose=csr_int64),
    }

    def forward_backward(propagate: Propagate) -> tuple[Tensor, Tensor]:
        embedding.grad = None
        output = layer_mean(propagate, embedding, args.layers)
        (output * loss_weights).sum().backward()
        assert embedding.grad is not None
        return output.detach(), embedding.grad.clone()

    reference_output, reference_grad = forward_backward(variants["csr+Function"])
    for name, propagate in variants.items():
        output, grad = forward_backward(propagate)
        torch.testing.assert_close(output, reference_output, rtol=1e-4, atol=1e-6, msg=name)
        torch.testing.assert_close(grad, reference_grad, rtol=1e-4, atol=1e-6, msg=name)

    numpy_embedding = embedding.detach().numpy()
    steps: dict[str, Callable[[], object]] = {}
    for name, propagate in variants.items():
        steps[f"{name} fwd"] = partial(layer_mean, propagate, embedding, args.layers)
        if not (args.skip_slow and name in ("coo", "csr")):
            steps[f"{name} fwd+bwd"] = partial(forward_backward, propagate)

    def scipy_forward() -> object:
        layer = layer_sum = numpy_embedding
        for _ in range(args.layers):
            layer = scipy_csr @ layer
            layer_sum = layer_sum + layer
        return layer_sum / (args.layers + 1)

    steps["scipy (fwd only) fwd"] = scipy_forward
    times = interleaved_times_ms(steps, args.repeats)
    names = [*variants, "scipy (fwd only)"]
    rows = [(name, times[f"{name} fwd"], times.get(f"{name} fwd+bwd")) for name in names]

    print(f"\n| variant | forward ms, {args.layers} layers (median / min) | fwd+bwd ms (median / min) |")
    print("|---|---|---|")
    for name, forward, both in rows:
        both_text = "-" if both is None else f"{statistics.median(both):.1f} / {min(both):.1f}"
        print(f"| {name} | {statistics.median(forward):.1f} / {min(forward):.1f} | {both_text} |")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
