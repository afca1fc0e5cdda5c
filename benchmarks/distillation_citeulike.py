"""Knowledge distillation on DE-RRD's CiteULike split: a BPR-MF teacher at dim 200, students at dim 20.

The teacher trains first (``--runs teacher``), then ``recforge teacher export`` writes its
TeacherSignal (top-500 lists outside each user's training items, user and item embeddings), then
each student trains with its terms. Protocol as the authors': each held-out item against 499
sampled negatives (fixed seed, the same for every run), early stopping on the sampled valid
NDCG@10, test scored once; full ranking of the same scores is reported beside it (``full/``).

    .venv/bin/python benchmarks/distillation_citeulike.py --runs teacher
    .venv/bin/python benchmarks/distillation_citeulike.py --runs all --report

The authors' logs (sampled, test, student BPR-20): alone H@10 .5559 / N@10 .3686, DE .5796 /
.3933, RRD .5727 / .3879, IR-RRD .5951 / .4072. Their candidate file is not public: ours are drawn
by ``recforge.evaluation.candidates`` (uniform without replacement over never-interacted items,
seed 0), so the numbers are comparable in protocol, not candidate for candidate.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from run_matrix import REPO, Run, cells, load, main

OUT = REPO / "benchmarks" / "runs" / "citeulike"
TEACHER = OUT / "teacher"
SIGNAL = OUT / "teacher-signal"
CONFIGS = REPO / "configs" / "citeulike-derrd"
METRICS = ("hit@10", "ndcg@10", "full/recall@20", "full/ndcg@20")
SEEDS = (0, 1, 2)

STUDENT_TERMS = {
    "alone": (),
    "de": ("objective.terms.de.weight=0.01",),
    "rrd": ("objective.terms.rrd.weight=0.001",),
    "ir-rrd": ("objective.terms.rrd.weight=0.001", "objective.terms.ir_rrd.weight=0.001"),
    "de+rrd": ("objective.terms.de.weight=0.01", "objective.terms.rrd.weight=0.001"),
    "phr": ("objective.terms.phr.weight=0.01",),
    "ftd": ("objective.terms.ftd.weight=0.001",),
    "htd": ("objective.terms.htd.weight=0.001",),
}


def student(variant: str, seed: int) -> Run:
    teacher = () if variant == "alone" else (f"objective.teacher={SIGNAL}",)
    return Run(
        f"student-{variant}-seed{seed}",
        CONFIGS / "mf-student.yaml",
        (*STUDENT_TERMS[variant], *teacher, f"seed={seed}"),
    )


L2_WEIGHTS = ("1e-2", "3e-3", "1e-4", "1e-5", "0")
REFERENCE_DECAY = 1e-3 / 1024  # DE-RRD: Adam weight_decay 1e-3 on a BPR loss summed over 1,024 pairs


def l2_candidate(role: str, weight: str) -> Run:
    """A run of the regularisation selection (chosen on valid): another ``l2`` weight, or
    (``"adam"``) no ``l2`` term and the reference code's Adam weight decay instead."""
    if weight == "adam":
        overrides: tuple[str, ...] = ("objective.terms.l2=null", f"train.weight_decay={REFERENCE_DECAY}")
    elif weight == "0":
        overrides = ("objective.terms.l2=null",)
    else:
        overrides = (f"objective.terms.l2.weight={weight}",)
    return Run(f"{role}-l2-{weight}", CONFIGS / f"mf-{role}.yaml", overrides)


L2_RUNS = [l2_candidate(role, weight) for role in ("student", "teacher") for weight in (*L2_WEIGHTS, "adam")]
RUNS = {
    "teacher": Run("teacher", CONFIGS / "mf-teacher.yaml"),
    **{run.name: run for run in L2_RUNS},
    **{run.name: run for run in (student(variant, seed) for variant in STUDENT_TERMS for seed in SEEDS)},
}


def export_signal() -> None:
    """The teacher's TeacherSignal, once the teacher has finished."""
    if (SIGNAL / "teacher.json").exists() or not (OUT / "teacher" / "metrics.json").exists():
        return
    command = [
        sys.executable,
        "-m",
        "recforge.cli",
        "teacher",
        "export",
        str(OUT / "teacher"),
        "-o",
        str(SIGNAL),
    ]
    subprocess.run([*command, "--k", "500"], check=True, cwd=REPO)


def report(out: Path) -> str:
    header = "| run | " + " | ".join(METRICS) + " | best/ran epochs | train s |"
    lines = [header, "|" + "---|" * (len(METRICS) + 3)]
    for name in RUNS:
        summary = load(out, name)
        if summary is not None:
            lines.append(f"| {name} | {cells(summary, METRICS)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    export_signal()
    main(RUNS, report, description=__doc__.splitlines()[0], out=OUT, budget_s=600.0)
    export_signal()
