"""Distilling a training-free graph filter into small embedding students on the Gowalla split.

The teacher is BSPM (``configs/gowalla/bspm.yaml``, the best filter on this split; settings chosen
on valid in ``benchmarks/graph_filters.py``), fitted once on train; ``recforge teacher export``
writes its TeacherSignal: each user's top 500 items outside their training items, scored from the
training history only, and its rank-448 ideal part as embeddings. Students are MF and LightGCN at
dim 32 and 16 on the CPU schedule of ``benchmarks/configs/gowalla_{mf,lightgcn}_fast.yaml``, alone
and with RRD (DE-RRD's relaxed ranking distillation, K = L = 40, T = 10, weight 1e-3). Early
stopping reads valid Recall@20 only; test is scored once. The issue's goal: the best student keeps
≥ 95% of its teacher's test Recall@20.

    .venv/bin/python benchmarks/distillation_gowalla.py --runs teacher --threads 2
    .venv/bin/python benchmarks/distillation_gowalla.py --runs mf32-alone,mf32-rrd --budget-s 1200
    .venv/bin/python benchmarks/distillation_gowalla.py --runs lightgcn64-teacher --budget-s 1500
    .venv/bin/python benchmarks/distillation_gowalla.py --runs lightgcn32-rrd-from-lightgcn64 --budget-s 900
    .venv/bin/python benchmarks/distillation_gowalla.py --report
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from run_matrix import REPO, Run, epochs_cell, load, main

OUT = REPO / "benchmarks" / "runs" / "gowalla-distill"
SIGNAL = OUT / "teacher-signal"
METRICS = ("recall@20", "ndcg@20")
STUDENT_CONFIGS = {
    "mf": REPO / "benchmarks" / "configs" / "gowalla_mf_fast.yaml",
    "lightgcn": REPO / "benchmarks" / "configs" / "gowalla_lightgcn_fast.yaml",
}
TERMS = {"alone": (), "rrd": ("objective.terms.rrd.weight=0.001",)}
LIGHTGCN_TEACHER = "lightgcn64-teacher"
"""The trained teacher: LightGCN's best CPU recipe (64-d, ``gowalla_lightgcn_fast.yaml``; 256-d would
take hours on these cores), beside the filter teacher. Its signal is written to its own directory."""
TEACHER_SIGNALS = {"teacher": SIGNAL, LIGHTGCN_TEACHER: OUT / f"{LIGHTGCN_TEACHER}-signal"}


def student(model: str, dim: int, variant: str, teacher_run: str = "teacher") -> Run:
    teacher = () if variant == "alone" else (f"objective.teacher={TEACHER_SIGNALS[teacher_run]}",)
    suffix = "" if teacher_run == "teacher" else f"-from-{teacher_run.removesuffix('-teacher')}"
    return Run(
        f"{model}{dim}-{variant}{suffix}",
        STUDENT_CONFIGS[model],
        (f"model.dim={dim}", *TERMS[variant], *teacher),
    )


RUNS = {
    "teacher": Run("teacher", REPO / "configs" / "gowalla" / "bspm.yaml", trains=False, artifact=True),
    LIGHTGCN_TEACHER: Run(LIGHTGCN_TEACHER, STUDENT_CONFIGS["lightgcn"], artifact=True),
    **{
        run.name: run
        for run in (
            student(model, dim, variant) for model in STUDENT_CONFIGS for dim in (32, 16) for variant in TERMS
        )
    },
    **{run.name: run for run in (student("lightgcn", dim, "rrd", LIGHTGCN_TEACHER) for dim in (32, 16))},
}


RESUMED = ("lightgcn32-rrd-1800s",)
"""Runs continued beyond their budget, reported too: ``lightgcn32-rrd`` copied to this name and
resumed with ``recforge train ... -o train.max_train_seconds=1800 --resume`` (same overrides)."""


def export_signal() -> None:
    """Each teacher's TeacherSignal, once that teacher has finished."""
    for teacher_run, signal in TEACHER_SIGNALS.items():
        if (signal / "teacher.json").exists() or not (OUT / teacher_run / "metrics.json").exists():
            continue
        command = [sys.executable, "-m", "recforge.cli", "teacher", "export", str(OUT / teacher_run)]
        subprocess.run([*command, "-o", str(signal), "--k", "500"], check=True, cwd=REPO)


def teacher_of(name: str) -> str:
    """The teacher run whose signal ``name`` read (``-from-lightgcn64`` students, or the filter)."""
    suffix = f"-from-{LIGHTGCN_TEACHER.removesuffix('-teacher')}"
    return LIGHTGCN_TEACHER if name.endswith(suffix) else "teacher"


def report(out: Path) -> str:
    """Every finished run; a student's share is of its own teacher's test Recall@20; runs the
    budget stopped are marked."""
    header = "| run | " + " | ".join(METRICS) + " | of teacher R@20 | best/ran epochs | train s |"
    lines = [header, "|" + "---|" * (len(METRICS) + 4)]
    for name in (*RUNS, *RESUMED):
        summary = load(out, name)
        if summary is None:
            continue
        teacher = load(out, teacher_of(name))
        reference = teacher["test"]["recall@20"] if teacher and name not in TEACHER_SIGNALS else None
        share = f"{summary['test']['recall@20'] / reference:.1%}" if reference else "–"
        values = " | ".join(f"{summary['test'][metric]:.4f}" for metric in METRICS)
        seconds = f"{summary['train_seconds']:.0f}"
        lines.append(f"| {name} | {values} | {share} | {epochs_cell(summary)} | {seconds} |")
    return "\n".join(lines)


if __name__ == "__main__":
    # the signal is exported once its teacher has finished: before the next run, and at the end
    main(
        RUNS, report, description=__doc__.splitlines()[0], out=OUT, budget_s=1200.0, before_each=export_signal
    )
