"""DLLM2Rec on MovieLens-1M: an offline text teacher distilled into GRU4Rec, SASRec and SASRec + DROS.

The teacher (``teacher``: ``configs/ml-1m/text-sasrec.yaml``, SASRec blocks over frozen
all-MiniLM-L6-v2 title embeddings, grounded by cosine similarity) trains once; ``recforge teacher
export --queries positions --k 20`` then writes its top-20 list for every training prefix, the
cosine distance of each listed item to its prediction (the confidence signal) and the title
embeddings (the embedding-distillation input). Each student trains alone and with both DLLM2Rec
terms: ``importance_rd`` (λ 0.8, K 10, γ_p 0.3, γ_c 0.5, γ_o 0.1, the reference's settings) and
``model.teacher_offset`` (w_e 0.2, linear projector). Protocol: leave-one-out by time, full ranking
over all 3,706 items with each user's history masked, early stopping on valid NDCG@10, test scored
once; every student trains at most 20 epochs (``EPOCHS``: the same cap for all, so the comparison
does not depend on the machine's load) within a wall-clock backstop (``--budget-s``).

    .venv/bin/python benchmarks/dllm2rec_ml1m.py --runs teacher --budget-s 3600 --threads 1
    .venv/bin/python benchmarks/dllm2rec_ml1m.py --runs sasrec-alone-seed0,sasrec-dllm2rec-seed0 --threads 2
    .venv/bin/python benchmarks/dllm2rec_ml1m.py --report

Ablations (one student, ``sasrec``): ``-no-position`` / ``-no-confidence`` / ``-no-consistency``
(that γ set to 0), ``-no-embedding`` (ranking term only), ``-topk5`` / ``-topk20``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import scipy.stats

from run_matrix import REPO, Run, load, main, stopped_by_budget

OUT = REPO / "benchmarks" / "runs" / "dllm2rec-ml1m"
SIGNAL = OUT / "teacher-signal"
CONFIGS = REPO / "configs" / "ml-1m"
SEEDS = (0, 1, 2)
EPOCHS = "train.epochs=20"  # a cap every student shares (the CPU's budget), early stopping as configured
METRICS = ("hit@10", "ndcg@10", "hit@20", "ndcg@20")

STUDENTS = {
    "gru4rec": (CONFIGS / "gru4rec.yaml", ()),
    "sasrec": (CONFIGS / "sasrec.yaml", ()),
    "sasrec-dros": (CONFIGS / "sasrec.yaml", ("objective.terms.dros.weight=1.0",)),
}
DLLM2REC = (
    f"objective.teacher={SIGNAL}",
    "objective.terms.importance_rd.weight=0.8",
    "model.teacher_offset.weight=0.2",
)
ABLATIONS = {
    "no-position": ("objective.terms.importance_rd.gamma_position=0",),
    "no-confidence": ("objective.terms.importance_rd.gamma_confidence=0",),
    "no-consistency": ("objective.terms.importance_rd.gamma_consistency=0",),
    "topk5": ("objective.terms.importance_rd.k=5",),
    "topk20": ("objective.terms.importance_rd.k=20",),
}


def student_runs() -> dict[str, Run]:
    runs = {}
    for student, (config, own) in STUDENTS.items():
        for seed in SEEDS:
            base = (*own, EPOCHS, f"seed={seed}")
            runs[f"{student}-alone-seed{seed}"] = Run(f"{student}-alone-seed{seed}", config, base)
            runs[f"{student}-dllm2rec-seed{seed}"] = Run(
                f"{student}-dllm2rec-seed{seed}", config, (*base, *DLLM2REC)
            )
    config = CONFIGS / "sasrec.yaml"
    for name, changes in ABLATIONS.items():
        runs[f"sasrec-{name}-seed0"] = Run(
            f"sasrec-{name}-seed0", config, (EPOCHS, "seed=0", *DLLM2REC, *changes)
        )
    no_embedding = tuple(o for o in DLLM2REC if not o.startswith("model.teacher_offset"))
    runs["sasrec-no-embedding-seed0"] = Run(
        "sasrec-no-embedding-seed0", config, (EPOCHS, "seed=0", *no_embedding)
    )
    return runs


# 12 epochs: what the first teacher reached in its 1,200 s budget at 2 threads (best epoch 11); capped
# by epochs rather than time, so a retrained teacher (run directories are not kept) is the same one
TEACHER = Run("teacher", CONFIGS / "text-sasrec.yaml", ("train.epochs=12",), artifact=True)
RUNS = {"teacher": TEACHER, **student_runs()}


def export_signal() -> None:
    """The teacher's per-prefix top-20 lists, distances and title embeddings (once)."""
    if (SIGNAL / "teacher.json").exists() or not (OUT / "teacher" / "metrics.json").exists():
        return
    command = [sys.executable, "-m", "recforge.cli", "teacher", "export", str(OUT / "teacher")]
    command += ["--queries", "positions", "--k", "20", "-o", str(SIGNAL)]
    subprocess.run(command, check=True, cwd=REPO)


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def report(out) -> str:  # type: ignore[no-untyped-def]
    export_signal()
    lines = ["| model | seeds | " + " | ".join(f"test {m}" for m in METRICS) + " | gain N@10 (p) | s/epoch |"]
    lines.append("|" + "---|" * (len(METRICS) + 4))
    teacher = load(out, "teacher")
    if teacher is not None:
        cells = " | ".join(f"{teacher['test'][m]:.4f}" for m in METRICS)
        lines.append(f"| text teacher | 1 | {cells} | – | {teacher['seconds_per_epoch']:.1f} |")
    gains = []
    for student in STUDENTS:
        alone = [s for seed in SEEDS if (s := load(out, f"{student}-alone-seed{seed}")) is not None]
        for variant in ("alone", "dllm2rec"):
            found = [s for seed in SEEDS if (s := load(out, f"{student}-{variant}-seed{seed}")) is not None]
            if not found:
                continue
            cells = " | ".join(mean_std([s["test"][m] for s in found]) for m in METRICS)
            gain = "–"
            if variant == "dllm2rec" and alone:
                base = statistics.mean(s["test"]["ndcg@10"] for s in alone)
                ours = statistics.mean(s["test"]["ndcg@10"] for s in found)
                relative = ours / base - 1
                gains.append(relative)
                p = "n/a"
                if len(found) > 1 and len(alone) > 1:
                    test = scipy.stats.ttest_ind(
                        [s["test"]["ndcg@10"] for s in found],
                        [s["test"]["ndcg@10"] for s in alone],
                        equal_var=False,
                    )
                    p = f"{test.pvalue:.3f}"
                gain = f"{relative:+.1%} (p {p})"
            epoch = statistics.mean(s["seconds_per_epoch"] for s in found)
            cut = sum(stopped_by_budget(s) for s in found)
            seeds = f"{len(found)}" + (f" ({cut} cut by the budget)" if cut else "")
            lines.append(f"| {student} {variant} | {seeds} | {cells} | {gain} | {epoch:.1f} |")
    if gains:
        lines.append(f"\nAverage N@10 gain over students: {statistics.mean(gains):+.1%}")
    names = ["sasrec-dllm2rec-seed0", *(n for n in RUNS if n.startswith("sasrec-no-") or "topk" in n)]
    done = [(name, summary) for name in names if (summary := load(out, name)) is not None]
    if len(done) > 1:
        lines += [
            "",
            "| ablation (sasrec, seed 0) | " + " | ".join(METRICS) + " |",
            "|---" * (len(METRICS) + 1) + "|",
        ]
        for name, summary in done:
            lines.append(f"| {name} | " + " | ".join(f"{summary['test'][m]:.4f}" for m in METRICS) + " |")
    lines.append(f"\nplot: {plot(out).relative_to(REPO)}")
    return "\n".join(lines)


PLOT = REPO / "benchmarks" / "results" / "dllm2rec_ml1m.png"


def plot(out) -> Path:  # type: ignore[no-untyped-def]
    """Test NDCG@10 of each student alone and with DLLM2Rec (mean and std over the finished
    seeds), the teacher as a line; the ablations (seed 0) in a second panel."""
    figure, (students, ablations) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=(3, 2))
    for offset, variant in ((-0.2, "alone"), (0.2, "dllm2rec")):
        for index, student in enumerate(STUDENTS):
            found = [s for seed in SEEDS if (s := load(out, f"{student}-{variant}-seed{seed}")) is not None]
            if not found:
                continue
            values = [s["test"]["ndcg@10"] for s in found]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            colour = "tab:blue" if variant == "alone" else "tab:orange"
            students.bar(
                index + offset,
                statistics.mean(values),
                0.4,
                yerr=spread,
                color=colour,
                label=None if index else f"{variant} (seeds: {len(values)})",
            )
    teacher = load(out, "teacher")
    if teacher is not None:
        students.axhline(teacher["test"]["ndcg@10"], color="grey", linestyle="--", label="text teacher")
    students.set_xticks(range(len(STUDENTS)), list(STUDENTS))
    students.set(ylabel="test NDCG@10", title="ML-1M: students alone and with DLLM2Rec")
    students.legend(fontsize=8)
    names = ["sasrec-dllm2rec-seed0", *(n for n in RUNS if n.startswith("sasrec-no-") or "topk" in n)]
    done = [(name, summary) for name in names if (summary := load(out, name)) is not None]
    if done:
        labels = [name.removeprefix("sasrec-").removesuffix("-seed0") for name, _ in done]
        ablations.barh(labels, [summary["test"]["ndcg@10"] for _, summary in done], color="tab:orange")
        alone = load(out, "sasrec-alone-seed0")
        if alone is not None:
            ablations.axvline(alone["test"]["ndcg@10"], color="tab:blue", linestyle=":", label="alone")
            ablations.legend(fontsize=8)
        ablations.set(xlabel="test NDCG@10", title="SASRec ablations (seed 0)")
    figure.tight_layout()
    figure.savefig(PLOT, dpi=120)
    plt.close(figure)
    return PLOT


if __name__ == "__main__":
    # the signal is exported once its teacher has finished: before the next run, and at the end
    main(RUNS, report, description=__doc__.splitlines()[0], out=OUT, budget_s=5400, before_each=export_signal)
