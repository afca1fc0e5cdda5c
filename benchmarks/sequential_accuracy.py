"""Issue-4 accuracy tables: SASRec (CE), GRU4Rec, LightGCN (DirectAU) and GSAU on Amazon Beauty and
Toys, GSAU's γ sweep, and shared vs separate embedding tables, all under one protocol and budget.

Protocol (every run): leave-one-out by time, full ranking over all items with the user's history
masked, Recall/NDCG@10/20. Each run trains through the real trainer with early stopping on
*validation* NDCG@10 (patience 10) inside a wall-clock training budget, keeps the best-validation
checkpoint, and scores the test fold once. Each run is its own ``recforge train`` process
(:mod:`run_matrix`); finished runs are read back, not retrained, so two shells can split the list
(``--runs``) and ``--report`` joins it.

    python benchmarks/sequential_accuracy.py --runs beauty-sasrec,beauty-gsau --budget-s 600 --threads 1
    python benchmarks/sequential_accuracy.py --report      # tables (markdown) + gamma.png under --out
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import run_matrix
from run_matrix import REPO, Run, cells, load

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
GAMMAS = (0.0, 0.1, 0.5, 1.0, 2.0)
# Anchors from the issue, measured with RecBole's protocol by the GSAU authors' released logs.
ANCHORS = {
    ("beauty", "sasrec"): {"recall@10": 0.0826, "ndcg@10": 0.0414},
    ("toys", "gsau"): {"recall@10": 0.0924, "recall@20": 0.1328, "ndcg@10": 0.0470, "ndcg@20": 0.0572},
}


def config(dataset: str, model: str) -> Path:
    folder = {"beauty": "amazon-beauty", "toys": "amazon-toys"}[dataset]
    return REPO / "configs" / folder / f"{model}.yaml"


def gamma_overrides(gamma: float) -> tuple[str, ...]:
    return (
        f"objective.terms.graph_uniformity.weight={gamma}",
        f"objective.terms.sequence_uniformity.weight={gamma}",
    )


MODELS = ("sasrec", "gru4rec", "lightgcn-directau", "gsau")
RUNS = {
    run.name: run
    for run in [
        *(Run(f"{d}-{m}", config(d, m)) for d in ("beauty", "toys") for m in MODELS),
        *(
            Run(f"beauty-gsau-gamma{g}", config("beauty", "gsau"), gamma_overrides(g))
            for g in GAMMAS
            if g != 0.1
        ),
        Run("beauty-gsau-separate", config("beauty", "gsau"), ("model.shared_embeddings=false",)),
    ]
}


def _cells(summary: dict | None) -> str:
    return cells(summary, METRICS)


def report(out: Path) -> str:
    header = (
        "| dataset | model | " + " | ".join(f"test {m}" for m in METRICS) + " | best/ran epochs | train s |"
    )
    rule = "|---" * (len(METRICS) + 4) + "|"
    lines = ["### Main table (test fold, selected on valid NDCG@10)", "", header, rule]
    labels = {
        "sasrec": "SASRec (CE)",
        "gru4rec": "GRU4Rec (CE)",
        "lightgcn-directau": "LightGCN (DirectAU)",
        "gsau": "GSAU",
    }
    for dataset in ("beauty", "toys"):
        for model, label in labels.items():
            lines.append(f"| {dataset} | {label} | {_cells(load(out, f'{dataset}-{model}'))} |")
            anchor = ANCHORS.get((dataset, model))
            if anchor:
                cells = " | ".join(f"{anchor[m]:.4f}" if m in anchor else "–" for m in METRICS)
                lines.append(
                    f"| {dataset} | {label}, published anchor (RecBole protocol) | {cells} | – | – |"
                )
    lines += [
        "",
        "### GSAU γ sweep on Beauty (L = L_GA + L_SA + γ(L_GU + L_SU))",
        "",
        header.replace("| model |", "| γ |"),
        rule,
    ]
    gammas = []
    for gamma in GAMMAS:
        summary = load(out, "beauty-gsau" if gamma == 0.1 else f"beauty-gsau-gamma{gamma}")
        lines.append(f"| beauty | {gamma} | {_cells(summary)} |")
        if summary:
            gammas.append((gamma, summary["test"]["recall@10"], summary["test"]["ndcg@10"]))
    lines += [
        "",
        "### Shared vs separate item tables (GSAU, Beauty, γ = 0.1)",
        "",
        header.replace("| model |", "| tables |"),
        rule,
    ]
    lines.append(f"| beauty | shared | {_cells(load(out, 'beauty-gsau'))} |")
    lines.append(f"| beauty | separate | {_cells(load(out, 'beauty-gsau-separate'))} |")
    text = "\n".join(lines) + "\n"
    (out / "tables.md").write_text(text)
    if gammas:
        figure, axis = plt.subplots(figsize=(6, 3.5))
        positions = range(len(gammas))
        axis.plot(positions, [r for _, r, _ in gammas], marker="o", label="test Recall@10")
        axis.plot(positions, [n for _, _, n in gammas], marker="s", label="test NDCG@10")
        sasrec = load(out, "beauty-sasrec")
        if sasrec:
            axis.axhline(
                sasrec["test"]["recall@10"], linestyle="--", color="C0", alpha=0.5, label="SASRec Recall@10"
            )
            axis.axhline(
                sasrec["test"]["ndcg@10"], linestyle="--", color="C1", alpha=0.5, label="SASRec NDCG@10"
            )
        axis.set_xticks(list(positions), [str(g) for g, _, _ in gammas])
        axis.set_xlabel("γ (uniformity weight)")
        axis.set_title("GSAU on Amazon Beauty: γ sweep")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(out / "gamma.png", dpi=120)
    return text


if __name__ == "__main__":
    run_matrix.main(
        RUNS,
        report,
        description=__doc__.splitlines()[0],
        out=REPO / "benchmarks" / "out" / "sequential",
        budget_s=600.0,
    )
