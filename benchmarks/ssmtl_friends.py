"""SSMTL on friend graphs: the GAT over node features trained on retrieval alone, + CCA-SSG,
+ GraphMAE, and all three, against the baselines a user tries first (popularity, common neighbours,
Adamic–Adar, MF and LightGCN on the friendship matrix), overall and on the cold-start slices.

Every run uses the ``links`` split (10% valid / 10% test of each user's friendships, each
friendship in one fold, a user never their own candidate), full ranking over all users with the
user's known friends masked, early stopping on valid Recall@20, test scored once. Cold start: the
``<=2`` slice (users with at most two training friends) of every run, and a second split per
dataset (``-new``) where a seeded 10% of the users with two or more friends keep one friendship
(the rest moved to test): the paper's new-user case. Three seeds each.

    .venv/bin/python benchmarks/ssmtl_friends.py --runs lastfm-social-all-seed0 --threads 2
    .venv/bin/python benchmarks/ssmtl_friends.py --runs all --budget-s 900 --threads 2
    .venv/bin/python benchmarks/ssmtl_friends.py --report

Run names: ``<dataset>-<model>-seed<k>`` and ``<dataset>-<model>-new-seed<k>``; datasets
lastfm-social, twitch-de (the largest Twitch graph: 153,138 friendships), twitch-engb; models
popularity, common-neighbours, adamic-adar, mf, lightgcn, retrieval, retrieval+cca, retrieval+mae, all.
"""

from __future__ import annotations

import statistics

from run_matrix import REPO, Run, load, main

OUT = REPO / "benchmarks" / "runs" / "ssmtl"
CONFIGS = REPO / "configs" / "lastfm-social"
DATASETS = ("lastfm-social", "twitch-de", "twitch-engb")
SEEDS = (0, 1, 2)
METRICS = ("recall@20", "ndcg@20", "hit@20", "recall@50", "ndcg@50", "hit@50")
COLD = "<=2"

NO_CCA = "objective.terms.cca_ssg=null"
NO_MAE = "objective.terms.masked_features=null"
MODELS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    # name: (base config, overrides, trains)
    "popularity": ("adamic-adar.yaml", ("model={name: popularity}",), False),
    "common-neighbours": ("adamic-adar.yaml", ("model={name: common_neighbours}",), False),
    "adamic-adar": ("adamic-adar.yaml", (), False),
    "mf": ("lightgcn.yaml", ("model={name: mf, dim: 64}",), True),
    "lightgcn": ("lightgcn.yaml", (), True),
    "retrieval": ("ssmtl.yaml", (NO_CCA, NO_MAE), True),
    "retrieval+cca": ("ssmtl.yaml", (NO_MAE,), True),
    "retrieval+mae": ("ssmtl.yaml", (NO_CCA,), True),
    "all": ("ssmtl.yaml", (), True),
}


def runs() -> dict[str, Run]:
    made = {}
    for dataset in DATASETS:
        for model, (config, overrides, trains) in MODELS.items():
            for seed in SEEDS:
                for cold, extra in (("", ()), ("-new", ("data.split.new_users=0.1",))):
                    name = f"{dataset}-{model}{cold}-seed{seed}"
                    settings = (f"data.name={dataset}", f"seed={seed}", *overrides, *extra)
                    made[name] = Run(name, CONFIGS / config, settings, trains=trains)
    return made


RUNS = runs()


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def report(out) -> str:  # type: ignore[no-untyped-def]
    lines = []
    for dataset in DATASETS:
        for cold, title in (("", "overall and users with <= 2 training friends"), ("-new", "new users")):
            rows = []
            for model in MODELS:
                found = [s for seed in SEEDS if (s := load(out, f"{dataset}-{model}{cold}-seed{seed}"))]
                if not found:
                    continue
                overall = " | ".join(mean_std([s["test"][m] for s in found]) for m in METRICS[:3])
                slices = [s["test_slices"].get(COLD, {}) for s in found]
                cold_cells = " | ".join(
                    mean_std([piece[m] for piece in slices if m in piece]) for m in METRICS[:2]
                )
                rows.append(f"| {model} | {len(found)} | {overall} | {cold_cells} |")
            if rows:
                lines += [
                    f"\n**{dataset}, {title}**\n",
                    "| model | seeds | R@20 | N@20 | H@20 | R@20 (<=2 friends) | N@20 (<=2 friends) |",
                    "|---|---|---|---|---|---|---|",
                    *rows,
                ]
    return "\n".join(lines)


if __name__ == "__main__":
    main(RUNS, report, description=__doc__.splitlines()[0], out=OUT, budget_s=900)
