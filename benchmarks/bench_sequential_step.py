"""CPU seconds and page faults of one sequential training step on MovieLens-1M (SASRec, GRU4Rec,
with or without DLLM2Rec's terms), with glibc's default heap and with ``recforge.allocator``.

Each mode runs in its own process (the allocator setting is process-wide and cannot be undone):
the config's task, model and objective are assembled as ``recforge train`` does, a few warm-up
steps run, then ``--steps`` steps are timed. CPU time (``time.process_time``) rather than wall
time, so a busy machine distorts the figure less; the load average is printed beside it.

    .venv/bin/python benchmarks/bench_sequential_step.py --config configs/ml-1m/sasrec.yaml
    .venv/bin/python benchmarks/bench_sequential_step.py --config configs/ml-1m/sasrec.yaml \\
        --set objective.teacher=benchmarks/runs/dllm2rec-ml1m/teacher-signal \\
        --set objective.terms.importance_rd.weight=0.8 --set model.teacher_offset.weight=0.2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def measure(config_path: Path, overrides: list[str], steps: int, keep: bool) -> dict[str, float]:
    """One process's figures: CPU s/step, minor faults/step, peak RSS."""
    from recforge.config import load_config
    from recforge.device import resolve_device
    from recforge.train.experiment import assemble, prepare_data

    torch.set_num_threads(1)
    if keep:
        from recforge.allocator import keep_freed_memory  # (imported here: an older tree lacks it)

        keep_freed_memory()
    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(config_path, [*overrides, f"output_dir={run_dir}"])
        data = prepare_data(config, Path(run_dir) / "split.npz")
        parts = assemble(
            config,
            data.split,
            resolve_device("cpu"),
            item_ids=[str(raw) for raw in data.dataset.item_ids],
            item_titles=data.dataset.item_titles,
            node_features=data.node_features(),
        )
        model, task, objective = parts.model, parts.task, parts.objective
        optimizer = torch.optim.Adam([*model.parameters(), *objective.parameters()], fused=True)
        task.on_epoch(0)
        objective.on_epoch(0)
        model.train()
        batches = iter(task.batches)

        def step(batch: object) -> None:
            loss, _ = objective(task.outputs(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        for batch in itertools.islice(batches, 5):  # warm-up: the heap reaches its working size
            step(batch)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        cpu = time.process_time()
        for batch in itertools.islice(batches, steps):
            step(batch)
        return {
            "cpu_s_per_step": (time.process_time() - cpu) / steps,
            "faults_per_step": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps,
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "batches_per_epoch": len(task.batches),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--mode", choices=("default", "keep"), help=argparse.SUPPRESS)  # one child's mode
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.config, args.set, args.steps, keep=args.mode == "keep")))
        return
    print(f"{args.config} {' '.join(args.set)}; {args.steps} steps, 1 thread")
    print("| heap | CPU s/step | minor faults/step | peak RSS GiB | s/epoch (CPU) | load avg |")
    print("|---|---|---|---|---|---|")
    for mode in ("default", "keep"):
        command = [sys.executable, __file__, "--config", str(args.config), "--steps", str(args.steps)]
        command += [*itertools.chain.from_iterable(("--set", o) for o in args.set), "--mode", mode]
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        label = "glibc default" if mode == "default" else "recforge.allocator"
        epoch = figures["cpu_s_per_step"] * figures["batches_per_epoch"]
        print(
            f"| {label} | {figures['cpu_s_per_step']:.3f} | {figures['faults_per_step']:,.0f} | "
            f"{figures['peak_rss_gib']:.2f} | {epoch:.0f} | {os.getloadavg()[0]:.2f} |"
        )


if __name__ == "__main__":
    main()
