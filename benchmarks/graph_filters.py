"""Training-free graph filters on Gowalla: GF-CF, BSPM and EASE against the published anchors.

The split is LightGCN's Gowalla benchmark exactly as ``configs/gowalla/lightgcn.yaml`` makes it
(the given train/test files; a seeded 10% of each user's train interactions, seed 2020, becomes
the validation fold). Every hyperparameter is chosen on the **validation** fold only (filters
fitted on train, the 90%); the test fold is then scored once per protocol:

* ``train``: the filter fitted on train, each user scored from its train row;
* ``train, history +valid``: the same filter, each user scored from train + valid (what the user
  had done before the test period);
* ``train+valid (paper)``: the filter refitted on train + valid, which is the original
  ``train.txt``, and scored from it: the protocol of the published numbers.

Measured per phase: wall seconds (fit, and each fold's ``Evaluator.evaluate_scores``, scoring and
ranking together) and the peak resident memory of the process during the phase (sampled every
20 ms). ``--compare-linear`` also times four ways of applying GF-CF's linear filter to every user,
``--compare-svd`` ARPACK against ``torch.svd_lowrank``. Results go to ``--out``/summary.md and
results.json, and are printed.

    python benchmarks/graph_filters.py [--filters gfcf bspm ease] [--threads 2] [--compare-linear]
        [--compare-svd] [--data-root ../shared/data] [--out benchmarks/out/graph_filters]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds

from recforge.config import load_config
from recforge.data.split import Split
from recforge.evaluation.evaluator import EvaluationResult, Evaluator
from recforge.models.filters import BSPM, EASE, GFCF, ease_max_items
from recforge.train.experiment import prepare_data

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = {  # test Recall@20 / NDCG@20 on the original train/test split
    "GF-CF": (0.1849, 0.1518),
    "EASE": (0.1765, 0.1467),
    "BSPM": (0.1921, 0.1597),
    "LightGCN": (0.1830, None),
}
GFCF_ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8)
BSPM_GRID = (  # (ideal_weight β, sharpening_time T_s); one RK4 step, as the reference on Gowalla
    (0.2, 2.5), (0.2, 1.5), (0.2, 3.5), (0.1, 2.5), (0.4, 2.5),
)
EASE_REGULARIZATIONS = (25.0, 50.0, 100.0)
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------------
# measuring


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    peak_gib: float = 0.0
    notes: dict[str, object] = field(default_factory=dict)


PHASES: list[Phase] = []


@contextmanager
def phase(name: str) -> Iterator[Phase]:
    """Wall seconds and peak resident memory (sampled every 20 ms) of the enclosed block."""
    record = Phase(name)
    peak = [resident_bytes()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], resident_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        yield record
    finally:
        record.seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        record.peak_gib = max(peak[0], resident_bytes()) / 2**30
        PHASES.append(record)
        print(f"  [{name}] {record.seconds:.1f} s, peak RSS {record.peak_gib:.2f} GiB", flush=True)


def evaluate(evaluator: Evaluator, fold: str, score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             label: str) -> EvaluationResult:
    """``Evaluator.evaluate_scores`` of ``score(users, out)``, timed; one score buffer for every batch."""
    buffer = torch.empty(evaluator.batch_size, evaluator.split.num_items)

    def score_batch(users: torch.Tensor) -> torch.Tensor:
        return score(users, buffer[: len(users)])

    with phase(f"{label}: {fold}") as record:
        result = evaluator.evaluate_scores(score_batch, fold)
    record.notes = dict(result.metrics)
    print(f"    {label} {fold}: recall@20 {result.metrics['recall@20']:.4f}, "
          f"ndcg@20 {result.metrics['ndcg@20']:.4f}", flush=True)
    return result


def by_users(model: GFCF | BSPM | EASE) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda users, out: model.scores(users, out=out)


def by_histories(model: GFCF | BSPM | EASE,
                 histories: sp.csr_matrix) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    return lambda users, out: model.history_scores(histories[users.numpy()], out=out)


# ---------------------------------------------------------------------------------------------
# one filter: select on valid, test once under the three protocols


@dataclass
class Outcome:
    name: str
    chosen: str
    valid: dict[str, float]
    fit_seconds: float
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    test_seconds: dict[str, float] = field(default_factory=dict)
    refit_seconds: float = 0.0
    selection: list[tuple[str, float, float]] = field(default_factory=list)


def known_before_test(split: Split) -> sp.csr_matrix:
    known = (split.csr("train") + split.csr("valid")).tocsr()
    known.data[:] = 1.0
    return known


def score_test_fitted_on_train(outcome: Outcome, evaluator: Evaluator, model: GFCF | BSPM | EASE) -> None:
    """The test fold, scored once from the train rows and once from the train + valid rows."""
    known = known_before_test(evaluator.split)
    protocols = (("train", by_users(model)), ("train, history +valid", by_histories(model, known)))
    for protocol, score in protocols:
        result = evaluate(evaluator, "test", score, f"{outcome.name} [{protocol}]")
        outcome.test[protocol], outcome.test_seconds[protocol] = dict(result.metrics), result.seconds


def score_test_refitted(outcome: Outcome, evaluator: Evaluator,
                  make: Callable[[sp.csr_matrix], GFCF | BSPM | EASE]) -> None:
    """The test fold, scored once by the filter refitted on train + valid (the original train.txt)."""
    with phase(f"{outcome.name} [train+valid]: fit") as record:
        full = make(known_before_test(evaluator.split)).fit()
    outcome.refit_seconds = record.seconds
    result = evaluate(evaluator, "test", by_users(full), f"{outcome.name} [train+valid (paper)]")
    outcome.test["train+valid (paper)"] = dict(result.metrics)
    outcome.test_seconds["train+valid (paper)"] = result.seconds


def run_gfcf(split: Split, evaluator: Evaluator, threads: int) -> Outcome:
    print("GF-CF: k = 256 (the paper's), alpha chosen on valid", flush=True)
    with phase("GF-CF: fit") as record:
        model = GFCF(split.csr("train"), alpha=0.3, num_factors=256, num_threads=threads).fit()
    fit_seconds = record.seconds
    selection = []
    for alpha in GFCF_ALPHAS:
        model.alpha = alpha  # read at scoring time: the sweep needs no refit
        metrics = evaluate(evaluator, "valid", by_users(model), f"GF-CF alpha={alpha:g}").metrics
        selection.append((f"alpha={alpha:g}", metrics["recall@20"], metrics["ndcg@20"]))
    best = max(range(len(GFCF_ALPHAS)), key=lambda index: selection[index][1])
    model.alpha = GFCF_ALPHAS[best]
    outcome = Outcome("GF-CF", f"alpha={model.alpha:g}, k=256",
                      {"recall@20": selection[best][1], "ndcg@20": selection[best][2]}, fit_seconds,
                      selection=selection)
    score_test_fitted_on_train(outcome, evaluator, model)
    del model
    score_test_refitted(outcome, evaluator, lambda known: GFCF(
        known, alpha=GFCF_ALPHAS[best], num_factors=256, num_threads=threads))
    return outcome


def run_bspm(split: Split, evaluator: Evaluator, threads: int) -> Outcome:
    print("BSPM: k = 448, one RK4 sharpening step (the reference's); beta, T_s chosen on valid", flush=True)
    with phase("BSPM: fit") as record:
        model = BSPM(split.csr("train"), num_factors=448, num_threads=threads).fit()
    fit_seconds = record.seconds
    selection = []
    for ideal_weight, sharpening_time in BSPM_GRID:
        model.ideal_weight, model.sharpening_time = ideal_weight, sharpening_time  # read at scoring time
        label = f"beta={ideal_weight:g}, T_s={sharpening_time:g}"
        metrics = evaluate(evaluator, "valid", by_users(model), f"BSPM {label}").metrics
        selection.append((label, metrics["recall@20"], metrics["ndcg@20"]))
    best = max(range(len(BSPM_GRID)), key=lambda index: selection[index][1])
    ideal_weight, sharpening_time = BSPM_GRID[best]
    model.ideal_weight, model.sharpening_time = ideal_weight, sharpening_time
    outcome = Outcome("BSPM", f"{selection[best][0]}, k=448, rk4 1 step",
                      {"recall@20": selection[best][1], "ndcg@20": selection[best][2]}, fit_seconds,
                      selection=selection)
    score_test_fitted_on_train(outcome, evaluator, model)
    del model
    score_test_refitted(outcome, evaluator, lambda known: BSPM(
        known, num_factors=448, ideal_weight=ideal_weight, sharpening_time=sharpening_time,
        num_threads=threads))
    return outcome


def run_ease(split: Split, evaluator: Evaluator, threads: int) -> Outcome | None:
    needed_gib = 4 * split.num_items**2 / 2**30
    available_gib = os.sysconf("SC_PHYS_PAGES") * PAGE_BYTES / 2**30
    print(f"EASE: one dense {split.num_items:,}² float32 matrix = {needed_gib:.2f} GiB "
          f"(default budget allows {ease_max_items(8 * 2**30):,} items); machine {available_gib:.1f} GiB",
          flush=True)
    if needed_gib > 0.6 * available_gib:
        print("  does not fit beside the rest of the process: skipped", flush=True)
        return None
    selection, fit_seconds = [], 0.0
    model: EASE | None = None
    for regularization in EASE_REGULARIZATIONS:
        model = None  # one dense I × I matrix at a time
        with phase(f"EASE lambda={regularization:g}: fit") as record:
            model = EASE(split.csr("train"), regularization=regularization, num_threads=threads).fit()
        fit_seconds = record.seconds
        metrics = evaluate(evaluator, "valid", by_users(model), f"EASE lambda={regularization:g}").metrics
        selection.append((f"lambda={regularization:g}", metrics["recall@20"], metrics["ndcg@20"]))
    best = max(range(len(selection)), key=lambda index: selection[index][1])
    regularization = EASE_REGULARIZATIONS[best]
    outcome = Outcome("EASE", f"lambda={regularization:g}",
                      {"recall@20": selection[best][1], "ndcg@20": selection[best][2]}, fit_seconds,
                      selection=selection)
    if best != len(EASE_REGULARIZATIONS) - 1:  # the chosen one is not the one in memory: refit it
        model = None
        with phase(f"EASE lambda={regularization:g}: fit again") as record:
            model = EASE(split.csr("train"), regularization=regularization, num_threads=threads).fit()
    assert model is not None
    score_test_fitted_on_train(outcome, evaluator, model)
    model = None
    score_test_refitted(outcome, evaluator, lambda known: EASE(known, regularization=regularization,
                                                            num_threads=threads))
    return outcome


# ---------------------------------------------------------------------------------------------
# how to apply the linear filter, and which SVD


def compare_linear(split: Split, threads: int, block: int = 1024) -> list[tuple[str, float, float, float]]:
    """Seconds to compute r_B L for every user (no ranking), and the memory each form holds."""
    print("linear filter r L over all users, four forms", flush=True)
    train = split.csr("train")
    rows: list[tuple[str, float, float, float]] = []
    users = np.arange(split.num_users)
    out = np.empty((block, split.num_items), dtype=np.float32)
    for label, item_item in (("sparse L = R̃ᵀR̃, scipy, threads", True), ("(r R̃ᵀ) R̃, scipy, threads", False)):
        with phase(f"linear: {label}: build") as built:
            model = GFCF(train, alpha=0.0, num_factors=1, item_item=item_item, num_threads=threads).fit()
        with phase(f"linear: {label}: all users") as record:
            for start in range(0, len(users), block):
                chunk = train[users[start : start + block]]
                model.graph_.linear_rows(chunk, out[: chunk.shape[0]])
        held = 0.0 if model.graph_.item_item is None else model.graph_.item_item.data.nbytes * 2 / 2**30
        rows.append((label, built.seconds, record.seconds, held))
    graph = model.graph_
    with phase("linear: torch CSR R̃ᵀ(R̃ xᵀ) on dense rows: all users") as record:
        for start in range(0, len(users), block):
            chunk = torch.from_numpy(train[users[start : start + block]].T.toarray(order="C"))
            graph.linear_dense_t(chunk)
    rows.append(("R̃ᵀ(R̃ xᵀ), torch CSR @ dense rows", 0.0, record.seconds, 0.0))
    with phase("linear: dense L, torch CSR rows @ dense: build") as built:
        dense = np.zeros((split.num_items, split.num_items), dtype=np.float32)
        sp.csr_matrix(graph.normalized_t @ graph.normalized).toarray(out=dense)
        dense_t = torch.from_numpy(dense)
    with phase("linear: dense L, torch CSR rows @ dense: all users") as record:
        from recforge.models.filters import _torch_csr

        for start in range(0, len(users), block):
            torch.mm(_torch_csr(train[users[start : start + block]], check_invariants=False), dense_t)
    rows.append(("dense L (I × I float32), torch CSR rows @ dense", built.seconds, record.seconds,
                 dense.nbytes / 2**30))
    del dense, dense_t
    return rows


def compare_svd(split: Split, k: int = 256) -> list[tuple[str, float, float]]:
    """Seconds and the share of ARPACK's top-k subspace each torch.svd_lowrank setting recovers."""
    print(f"truncated SVD of R̃, k = {k}", flush=True)
    graph = GFCF(split.csr("train"), alpha=0.0, num_factors=1).fit().graph_
    with phase("svd: scipy svds (ARPACK), float32") as record:
        _, _, reference = svds(graph.normalized, k=k, random_state=0)
    rows = [("scipy svds (ARPACK), float32", record.seconds, 1.0)]
    matrix = torch.sparse_coo_tensor(np.vstack(graph.normalized.nonzero()), graph.normalized.data,
                                     graph.normalized.shape).coalesce()
    for oversampled, iterations in ((k + 10, 2), (k + 64, 4), (2 * k, 4), (2 * k, 8)):
        label = f"torch.svd_lowrank q={oversampled}, niter={iterations}"
        with phase(f"svd: {label}") as record, torch.random.fork_rng():
            torch.manual_seed(0)
            _, _, right = torch.svd_lowrank(matrix, q=oversampled, niter=iterations)
        overlap = float(np.linalg.norm(reference @ right[:, :k].numpy()) ** 2 / k)
        rows.append((label, record.seconds, overlap))
    return rows


# ---------------------------------------------------------------------------------------------
# report


def summary_markdown(outcomes: list[Outcome], linear: list | None, svd: list | None, header: str) -> str:
    lines = [header, ""]
    lines += ["| filter | chosen on valid | valid R@20 / N@20 | fit s | test, fitted on train | "
              "test, train + history valid | test, refitted on train+valid (paper protocol) | "
              "refit s + test s | published |",
              "|---|---|---|---|---|---|---|---|---|"]
    def pair(outcome: Outcome, protocol: str) -> str:
        metrics = outcome.test[protocol]
        return f"{metrics['recall@20']:.4f} / {metrics['ndcg@20']:.4f}"

    for outcome in outcomes:
        published = PUBLISHED[outcome.name]
        lines.append(
            f"| {outcome.name} | {outcome.chosen} | {outcome.valid['recall@20']:.4f} / "
            f"{outcome.valid['ndcg@20']:.4f} | {outcome.fit_seconds:.1f} | {pair(outcome, 'train')} | "
            f"{pair(outcome, 'train, history +valid')} | **{pair(outcome, 'train+valid (paper)')}** | "
            f"{outcome.refit_seconds:.1f} + {outcome.test_seconds['train+valid (paper)']:.1f} | "
            f"{published[0]} / {published[1]} |")
    for outcome in outcomes:
        sweep = "; ".join(f"{label} {recall:.4f} / {ndcg:.4f}" for label, recall, ndcg in outcome.selection)
        lines += ["", f"{outcome.name}, validation sweep (recall@20 / ndcg@20): {sweep}"]
    if linear:
        lines += ["", "| linear filter form | build s | all 29,858 users s | holds GiB |",
                  "|---|---|---|---|"]
        lines += [f"| {label} | {build:.1f} | {seconds:.1f} | {held:.2f} |"
                  for label, build, seconds, held in linear]
    if svd:
        lines += ["", "| SVD of R̃, k = 256 | s | share of ARPACK's subspace |", "|---|---|---|"]
        lines += [f"| {label} | {seconds:.1f} | {overlap:.3f} |" for label, seconds, overlap in svd]
    lines += ["", "| phase | s | peak RSS GiB |", "|---|---|---|"]
    lines += [f"| {record.name} | {record.seconds:.1f} | {record.peak_gib:.2f} |" for record in PHASES]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--filters", nargs="*", default=["gfcf", "bspm", "ease"],
                        choices=["gfcf", "bspm", "ease"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ease-threads", type=int, default=None,
                        help="threads of EASE's factorisation and inversion (default: --threads)")
    parser.add_argument("--compare-linear", action="store_true")
    parser.add_argument("--compare-svd", action="store_true")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "graph_filters")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    started = time.perf_counter()

    with tempfile.TemporaryDirectory() as scratch:
        overrides = [f"output_dir={scratch}"]
        if args.data_root is not None:
            overrides.append(f"data.root={args.data_root}")
        config = load_config(REPO / "configs" / "gowalla" / "lightgcn.yaml", overrides)
        split = prepare_data(config, Path(scratch) / "split.npz").split
    print(f"split {split.content_hash}: {split.protocol}; {split.num_users:,} users, "
          f"{split.num_items:,} items, train {len(split.train):,}, valid {len(split.valid):,}, "
          f"test {len(split.test):,}", flush=True)
    evaluator = Evaluator(split, ks=(20,), metrics=("recall", "ndcg"))

    linear = compare_linear(split, args.threads) if args.compare_linear else None
    svd = compare_svd(split) if args.compare_svd else None
    outcomes = []
    if "gfcf" in args.filters:
        outcomes.append(run_gfcf(split, evaluator, args.threads))
    if "bspm" in args.filters:
        outcomes.append(run_bspm(split, evaluator, args.threads))
    if "ease" in args.filters:
        ease = run_ease(split, evaluator, args.ease_threads or args.threads)
        if ease is not None:
            outcomes.append(ease)

    load_end = os.getloadavg()
    header = (f"Gowalla, split {split.content_hash} ({split.protocol}); {args.threads} threads, "
              f"{os.cpu_count()} CPUs; load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end; "
              f"wall {time.perf_counter() - started:.0f} s; process peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    summary = summary_markdown(outcomes, linear, svd, header)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(summary)
    (args.out / "results.json").write_text(json.dumps({
        "split": split.content_hash, "threads": args.threads, "load_average": [load_start, load_end],
        "outcomes": [outcome.__dict__ for outcome in outcomes], "linear": linear, "svd": svd,
        "phases": [record.__dict__ for record in PHASES],
    }, indent=1))
    print(summary)


if __name__ == "__main__":
    main()
