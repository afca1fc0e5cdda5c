"""Run a list of ``recforge train`` configs (with overrides) under one budget and collect results.

The accuracy benchmarks are tables of runs that differ by one setting. Each run here is a separate
``recforge train`` process under ``/usr/bin/time -v`` (so its peak memory is its own), with a
wall-clock training budget and a thread count. The trainer writes ``metrics.json`` (valid scores of
the best-valid epoch, the test fold scored once, timings); this module adds ``benchmark.json``
(budget, threads, peak RSS, wall time, machine load) next to it. A run whose ``benchmark.json``
exists is read back, not retrained, so a table can be filled by several shells and resumed.

Run directories are not committed (``runs/`` is ignored: checkpoints and teacher signals are
large), so each finished run's summary is also written to a ledger,
``benchmarks/results/ledgers/<out name>.json``, which is committed (one line per run): a table
can then be filled over several sessions and rebuilt from the ledger alone. A run in the ledger is
not retrained unless it is an ``artifact`` (its directory is an input of other runs, as a
teacher's is).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    name: str
    config: Path
    overrides: tuple[str, ...] = field(default=())
    trains: bool = True
    """False for a training-free filter: fitted once, so no time budget applies (nor is allowed)."""
    artifact: bool = False
    """True when other runs read this run's directory (a teacher): only a directory on disk counts."""


def ledger_path(out: Path) -> Path:
    """The committed record of ``out``'s finished runs (one JSON object: run name -> summary)."""
    return REPO / "benchmarks" / "results" / "ledgers" / f"{out.name}.json"


_LEDGERS: dict[Path, tuple[int, dict[str, dict]]] = {}


def read_ledger(out: Path) -> dict[str, dict]:
    """The ledger as on disk, parsed once per version of the file (a report loads every run)."""
    path = ledger_path(out)
    if not path.exists():
        return {}
    stamp = path.stat().st_mtime_ns
    if path not in _LEDGERS or _LEDGERS[path][0] != stamp:
        _LEDGERS[path] = (stamp, json.loads(path.read_text()))
    return _LEDGERS[path][1]


def record(out: Path, name: str, summary: dict) -> None:
    """Add ``summary`` to the ledger; locked, since two shells may finish runs at the same time."""
    path = ledger_path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ledger = {**read_ledger(out), name: summary}
        partial = path.with_suffix(".json.partial")
        rows = (f"{json.dumps(key)}: {json.dumps(ledger[key], sort_keys=True)}" for key in sorted(ledger))
        partial.write_text("{\n" + ",\n".join(rows) + "\n}\n")
        partial.replace(path)


def run_one(run: Run, out: Path, budget_s: float, threads: int) -> dict:
    """Train ``run`` into ``out/run.name`` (unless already done) and return its summary."""
    run_dir = out / run.name
    summary_file = run_dir / "benchmark.json"
    if summary_file.exists() or (not run.artifact and run.name in read_ledger(out)):
        return load(out, run.name) or {}
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = [*run.overrides, f"output_dir={run_dir}", f"train.num_threads={threads}"]
    if run.trains:
        overrides.append(f"train.max_train_seconds={budget_s}")
    command = [sys.executable, "-m", "recforge.cli", "train", str(run.config)]
    for override in overrides:
        command += ["-o", override]
    started = time.perf_counter()
    completed = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=REPO, check=False
    )
    (run_dir / "train.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(f"{run.name}: recforge train failed, see {run_dir / 'train.log'}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
    summary = {
        "run": run.name,
        "config": str(run.config.relative_to(REPO)),
        "overrides": list(run.overrides),
        "budget_s": budget_s if run.trains else None,
        "threads": threads,
        "wall_seconds": time.perf_counter() - started,
        "peak_rss_gib": int(peak.group(1)) / 2**20 if peak else None,
        "machine": f"{platform.node()} ({os.cpu_count()} cpus), load {os.getloadavg()[0]:.2f} at the end",
    }
    summary_file.write_text(json.dumps(summary, indent=2))
    finished = load(out, run.name) or {}
    earlier = read_ledger(out).get(run.name)
    if earlier is not None and earlier.get("test") != finished.get("test"):
        # a retrained artifact that differs (another thread count sums in another order): the runs
        # that read the earlier one are not comparable with the runs that will read this one
        then, now = earlier.get("test") or {}, finished.get("test") or {}
        gaps = {m: abs(now[m] - then[m]) for m in now.keys() & then.keys() if None not in (now[m], then[m])}
        widest = max(gaps, key=gaps.__getitem__) if gaps else None
        largest = f"largest test difference {gaps[widest]:.2g} in {widest}" if widest else "other metrics"
        print(
            f"warning: {run.name} retrained differs from its ledger entry ({largest}; "
            f"{earlier.get('threads')} threads then, {threads} now); the ledger now holds the new one",
            file=sys.stderr,
        )
    record(out, run.name, finished)
    return finished


def load(out: Path, name: str) -> dict | None:
    """The trainer's ``metrics.json`` merged with ``benchmark.json`` (from the run directory, else
    from the ledger); None if the run has not finished."""
    run_dir = out / name
    if not (run_dir / "benchmark.json").exists() or not (run_dir / "metrics.json").exists():
        return read_ledger(out).get(name)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    summary = json.loads((run_dir / "benchmark.json").read_text())
    train_seconds = metrics["timings"]["train_seconds"]
    return {
        **summary,
        **metrics,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / max(1, metrics["epochs_run"]),
    }


def stopped_by_budget(summary: dict) -> bool:
    """Whether a run ended on its wall-clock budget, so it may not have converged: the trainer's
    ``stopped_by``, or for a run recorded before the trainer wrote it, training time at the budget."""
    if "stopped_by" in summary:
        return bool(summary["stopped_by"] == "time budget")
    budget = summary.get("budget_s")
    return bool(budget) and summary["train_seconds"] >= 0.99 * budget


def epochs_cell(summary: dict) -> str:
    """``best/ran`` epochs, marked ``(budget)`` when the time budget stopped the run."""
    cut = " (budget)" if stopped_by_budget(summary) else ""
    return f"{summary['best_epoch']}/{summary['epochs_run']}{cut}"


def cells(summary: dict | None, metrics: tuple[str, ...]) -> str:
    """Markdown cells: each test metric, best/ran epochs (``epochs_cell``), training seconds."""
    if summary is None:
        return " | ".join(["–"] * (len(metrics) + 2))
    test = summary["test"]
    values = " | ".join(f"{test[m]:.4f}" for m in metrics)
    return f"{values} | {epochs_cell(summary)} | {summary['train_seconds']:.0f}"


def run_all(
    runs: dict[str, Run],
    names: list[str],
    out: Path,
    budget_s: float,
    threads: int,
    before_each: Callable[[], None] = lambda: None,
) -> None:
    """Train ``names`` in order; ``before_each`` prepares what a run reads from an earlier one of
    the same invocation (a teacher's exported signal, once the teacher has finished), and runs once
    more after the last run, so that a report or a later invocation finds it."""
    for name in names:
        before_each()
        summary = run_one(runs[name], out, budget_s, threads)
        test = ", ".join(f"{key} {value:.4f}" for key, value in summary["test"].items() if "@" in key)
        cut = "; STOPPED BY THE TIME BUDGET (raise --budget-s)" if stopped_by_budget(summary) else ""
        print(
            f"{name}: {test} (best epoch {summary['best_epoch']} of {summary['epochs_run']}, "
            f"{summary['train_seconds']:.0f} s{cut})",
            flush=True,
        )
    before_each()


def main(
    runs: dict[str, Run],
    report: Callable[[Path], str],
    *,
    description: str,
    out: Path,
    budget_s: float,
    before_each: Callable[[], None] = lambda: None,
) -> None:
    """The command line every run-matrix benchmark shares: ``--runs``, budget, threads, ``--report``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", default="", help=f"comma-separated, from: {', '.join(runs)}; 'all'")
    parser.add_argument("--budget-s", type=float, default=budget_s, help="training wall-clock budget per run")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per run (1: two shells share 2 cores)"
    )
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--report", action="store_true", help="write the tables and plots from finished runs")
    args = parser.parse_args()
    names = list(runs) if args.runs == "all" else [name for name in args.runs.split(",") if name]
    unknown = sorted(set(names) - set(runs))
    if unknown:
        parser.error(f"unknown runs {unknown}; choose from {', '.join(runs)}")
    run_all(runs, names, args.out, args.budget_s, args.threads, before_each)
    if args.report:
        print(report(args.out))
