"""Run recforge's command line against hostile-but-fair input and count how each case ends.

Every case is one ``recforge ...`` invocation (in process, through typer's runner) on a tiny
generated dataset, with an expectation: ``error`` (a bad input: it must end with exit code 2 and a
one-line ``error:`` message, no traceback) or ``ok`` (a legitimate input that must work). A case
ends as one of: clean error, traceback, silently accepted (exit 0 where an error was due), or
wrongly refused. Nothing needs the network or the shared data.

    .venv/bin/python scripts/hostile_battery.py [--verbose]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import textwrap
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner

from recforge.cli import app


@dataclass
class Case:
    name: str
    args: Callable[[Path], list[str]]
    expect: str = "error"  # or "ok"
    setup: Callable[[Path], None] = field(default=lambda root: None)


CSV = "user,item,timestamp\n" + "".join(
    f"u{user},i{(user * 7 + step * 3) % 25},{100 * user + step}\n" for user in range(20) for step in range(8)
)

CONFIG = """\
name: hostile
seed: 1
output_dir: {root}/run
data:
  name: {root}/events.csv
  options: {{user: user, item: item, timestamp: timestamp}}
  split: {{protocol: random, ratios: [0.6, 0.2, 0.2]}}
model: {{name: lightgcn, dim: 8, num_layers: 1}}
objective:
  terms:
    bpr: {{weight: 1.0}}
    l2: {{weight: 1.0e-4}}
train: {{epochs: 2, batch_size: 16, num_threads: 1, early_stopping_metric: recall@5}}
evaluation: {{ks: [5], metrics: [recall, ndcg]}}
"""
TEMPLATE = CONFIG.format(root="{root}")  # braces single, the root still to fill in
SEQUENTIAL = (
    TEMPLATE.replace(
        "model: {name: lightgcn, dim: 8, num_layers: 1}", "model: {name: sasrec, dim: 8, max_length: 4}"
    )
    .replace("protocol: random, ratios: [0.6, 0.2, 0.2]", "protocol: leave_one_out")
    .replace("    bpr: {weight: 1.0}\n    l2: {weight: 1.0e-4}", "    ce: {weight: 1.0}")
)


FILTER_CONFIG = """\
name: hostile-filter
seed: 1
output_dir: {root}/run
data:
  name: {root}/events.csv
  options: {user: user, item: item, timestamp: timestamp}
  split: {protocol: random, ratios: [0.6, 0.2, 0.2]}
model: {name: gfcf, alpha: 0.3, num_factors: 3}
evaluation: {ks: [5], metrics: [recall, ndcg]}
"""


def write(relative: str, text: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{root}", str(root)))

    return setup


def train(*extra: str) -> Callable[[Path], list[str]]:
    return lambda root: ["train", str(root / "config.yaml"), "--no-progress", *extra]


def trained(root: Path) -> None:
    """A finished run in ROOT/run (for the cases that then misuse it)."""
    result = CliRunner().invoke(app, ["train", str(root / "config.yaml"), "--no-progress"])
    if result.exit_code != 0:
        raise RuntimeError(f"setup training failed: {result.output}")


def export_user_teacher(root: Path) -> None:
    """A per-user TeacherSignal of ROOT/run in ROOT/signal (a list per user, not per prefix)."""
    result = CliRunner().invoke(
        app,
        [
            "teacher",
            "export",
            str(root / "run"),
            "--queries",
            "users",
            "--k",
            "5",
            "-o",
            str(root / "signal"),
        ],
    )
    if result.exit_code != 0:
        raise RuntimeError(f"setup export failed: {result.output}")


def then(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for step in setups:
            step(root)

    return setup


def edit(relative: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / relative
        path.write_bytes(change(path.read_bytes()))

    return setup


CASES = [
    # -- the config file and overrides --------------------------------------------------------------
    Case("valid config trains", train(), "ok"),
    Case("override adds a term", train("-o", "objective.terms.uniformity.weight=0.1"), "ok"),
    Case("override drops a term", train("-o", "objective.terms.l2=null"), "ok"),
    Case("scientific notation without a dot", train("-o", "train.learning_rate=1e-3"), "ok"),
    Case("unknown top-level override", train("-o", "nosuch.key=1")),
    Case("unknown model", train("-o", "model.name=ngcf")),
    Case("unknown model parameter", train("-o", "model.layers=2")),
    Case("unknown term", train("-o", "objective.terms.bprr.weight=1")),
    Case("unknown term parameter", train("-o", "objective.terms.bpr.temperature=0.1")),
    Case("term without a weight", train("-o", "objective.terms.uniformity.t=2")),
    Case("negative weight", train("-o", "objective.terms.bpr.weight=-1")),
    Case("NaN weight", train("-o", "objective.terms.bpr.weight=.nan")),
    Case("term the model cannot feed", train("-o", "objective.terms.graph_alignment.weight=1")),
    Case("no terms at all", train("-o", "objective.terms={}")),
    Case("boolean dimension", train("-o", "model.dim=true")),
    Case("fractional dimension", train("-o", "model.dim=8.5")),
    Case("dimension as text", train("-o", "model.dim=eight")),
    Case("zero dimension", train("-o", "model.dim=0")),
    Case("infinite learning rate", train("-o", "train.learning_rate=.inf")),
    Case("diverging learning rate", train("-o", "train.learning_rate=1e30")),
    Case("empty ks", train("-o", "evaluation.ks=[]")),
    Case("empty metrics", train("-o", "evaluation.metrics=[]")),
    Case("stopping metric not evaluated", train("-o", "train.early_stopping_metric=recall@50")),
    Case("zero test share", train("-o", "data.split.ratios=[0.8,0.2,0.0]")),
    Case("ratios not summing to one", train("-o", "data.split.ratios=[0.8,0.2,0.2]")),
    Case("unknown protocol", train("-o", "data.split.protocol=kfold")),
    Case("unknown device", train("-o", "train.device=tpu")),
    Case("CUDA on a CPU-only torch", train("-o", "train.device=cuda")),
    Case("malformed override", train("-o", "model.dim")),
    Case("override into a value", train("-o", "seed.x=1")),
    Case("override value not YAML", train("-o", "model.dim=[1,")),
    Case("duplicated key in the file", train(), setup=write("config.yaml", TEMPLATE + "seed: 2\n")),
    Case("file is not YAML", train(), setup=write("config.yaml", "name: [unclosed\n")),
    Case("file is a list", train(), setup=write("config.yaml", "- a\n- b\n")),
    Case("missing config file", lambda root: ["train", str(root / "absent.yaml")]),
    Case(
        "old objective form",
        train(),
        setup=write(
            "config.yaml",
            TEMPLATE.replace(
                "  terms:\n    bpr: {weight: 1.0}\n    l2: {weight: 1.0e-4}", "  weights: {bpr: 1.0}"
            ),
        ),
    ),
    # -- data --------------------------------------------------------------------------------------
    Case("missing data file", train("-o", "data.name={root}/none.csv")),
    Case("missing column", train("-o", "data.options.user=uid")),
    Case("bad separator option", train("-o", "data.options.separator=tabs")),
    Case("unknown reader option", train("-o", "data.options.colour=red")),
    Case("NaN user id", train(), setup=write("events.csv", CSV + "NaN,i1,5000\n")),
    Case("empty item id", train(), setup=write("events.csv", CSV + "u1,,5000\n")),
    Case("non-numeric timestamp", train(), setup=write("events.csv", CSV + "u1,i1,soon\n")),
    Case("NaN timestamp", train(), setup=write("events.csv", CSV + "u1,i2,nan\n")),
    Case("ragged row", train(), setup=write("events.csv", CSV + "u1,i2\n")),
    Case("binary garbage", train(), setup=write("events.csv", "user,item,timestamp\n\x00\x01\x02,\x03\n")),
    Case("empty data file", train(), setup=write("events.csv", "")),
    # -- run directories ---------------------------------------------------------------------------
    Case("stale split with new ratios", train("-o", "data.split.ratios=[0.5,0.1,0.4]"), setup=trained),
    Case("resume with another dimension", train("--resume", "-o", "model.dim=16"), setup=trained),
    Case("resume with more epochs", train("--resume", "-o", "train.epochs=3"), "ok", setup=trained),
    Case("resume without a run", train("--resume")),
    Case(
        "torn resume state",
        train("--resume", "-o", "train.epochs=3"),
        setup=then(trained, edit("run/resume/state.safetensors", lambda data: data[: len(data) // 2])),
    ),
    Case("torn split file", train(), setup=then(trained, edit("run/split.npz", lambda data: data[:100]))),
    Case(
        "torn last log line on resume",
        train("--resume", "-o", "train.epochs=3"),
        "ok",
        setup=then(trained, edit("run/log.jsonl", lambda data: data + b'{"epoch": 2, "lo')),
    ),
    Case("output_dir under a regular file", train("-o", "output_dir={root}/config.yaml/run")),
    Case("evaluate a missing run", lambda root: ["evaluate", str(root / "nothing")]),
    Case(
        "evaluate a bad fold", lambda root: ["evaluate", str(root / "run"), "--fold", "train"], setup=trained
    ),
    Case(
        "evaluate after the data is gone",
        lambda root: ["evaluate", str(root / "run")],
        "ok",
        setup=then(trained, lambda root: (root / "events.csv").unlink()),
    ),
    Case(
        "evaluate a run with a torn split",
        lambda root: ["evaluate", str(root / "run")],
        setup=then(trained, edit("run/split.npz", lambda data: data[:100])),
    ),
    Case(
        "evaluate with damaged weights",
        lambda root: ["evaluate", str(root / "run")],
        setup=then(trained, edit("run/model.safetensors", lambda data: b"garbage" + data[7:])),
    ),
    # -- recommend ---------------------------------------------------------------------------------
    Case(
        "recommend for a known user",
        lambda root: ["recommend", str(root / "run"), "--user", "u3"],
        "ok",
        setup=trained,
    ),
    Case(
        "recommend for an unknown user",
        lambda root: ["recommend", str(root / "run"), "--user", "nobody"],
        setup=trained,
    ),
    Case(
        "recommend with k = 0",
        lambda root: ["recommend", str(root / "run"), "--user", "u3", "-k", "0"],
        setup=trained,
    ),
    Case("recommend with no question", lambda root: ["recommend", str(root / "run")], setup=trained),
    Case(
        "history for a graph model",
        lambda root: ["recommend", str(root / "run"), "--history", "i1"],
        setup=trained,
    ),
    Case(
        "similar to an unknown item",
        lambda root: ["recommend", str(root / "run"), "--similar", "zz"],
        setup=trained,
    ),
    # -- training-free filters -----------------------------------------------------------------------
    Case("filter fits", train(), "ok", setup=write("config.yaml", FILTER_CONFIG)),
    Case("filter given loss terms", train("-o", "model={name: gfcf, num_factors: 3}")),
    Case("filter given epochs", train("-o", "train.epochs=5"), setup=write("config.yaml", FILTER_CONFIG)),
    Case(
        "filter rank above the data's",
        train("-o", "model.num_factors=500"),
        setup=write("config.yaml", FILTER_CONFIG),
    ),
    Case(
        "EASE above its memory budget",
        train("-o", "model={name: ease, memory_budget_bytes: 100}"),
        setup=write("config.yaml", FILTER_CONFIG),
    ),
    Case(
        "resume a filter run",
        train("--resume"),
        setup=then(write("config.yaml", FILTER_CONFIG), trained),
    ),
    Case(
        "recommend from a filter run",
        lambda root: ["recommend", str(root / "run"), "--user", "u3"],
        "ok",
        setup=then(write("config.yaml", FILTER_CONFIG), trained),
    ),
    Case(
        "similar items from an EASE run",
        lambda root: ["recommend", str(root / "run"), "--similar", "i3"],
        setup=then(
            write("config.yaml", FILTER_CONFIG.replace("gfcf, alpha: 0.3, num_factors: 3", "ease")), trained
        ),
    ),
    # -- DLLM2Rec: per-prefix teachers, the teacher offset, the text teacher -------------------------
    Case("sequential run trains", train(), "ok", setup=write("config.yaml", SEQUENTIAL)),
    Case(
        "importance_rd without a teacher",
        train("-o", "objective.terms.importance_rd.weight=0.8"),
        setup=write("config.yaml", SEQUENTIAL),
    ),
    Case(
        "importance_rd on a graph model",
        train("-o", "objective.terms.importance_rd.weight=0.8", "-o", "objective.teacher={root}"),
    ),
    Case(
        "importance_rd with all three weights 0",
        train(
            "-o",
            "objective.terms.importance_rd={weight: 1, gamma_position: 0, gamma_confidence: 0, "
            "gamma_consistency: 0}",
            "-o",
            "objective.teacher={root}",
        ),
        setup=write("config.yaml", SEQUENTIAL),
    ),
    Case(
        "teacher offset without a teacher",
        train("-o", "model.teacher_offset.weight=0.2"),
        setup=write("config.yaml", SEQUENTIAL),
    ),
    Case(
        "text teacher on data without titles",
        train("-o", "model={name: text_sasrec, dim: 8, max_length: 4}"),
        setup=write("config.yaml", SEQUENTIAL),
    ),
    Case(
        "importance_rd with a user teacher",
        train(
            "-o", "objective.terms.importance_rd={weight: 0.8, k: 5}", "-o", "objective.teacher={root}/signal"
        ),
        setup=then(write("config.yaml", SEQUENTIAL), trained, export_user_teacher),
    ),
    Case(
        "fold a run without a teacher offset",
        lambda root: ["teacher", "fold", str(root / "run"), "-o", str(root / "folded")],
        setup=then(write("config.yaml", SEQUENTIAL), trained),
    ),
    Case(
        "training positions of a graph run",
        lambda root: ["teacher", "positions", str(root / "run"), "-o", str(root / "rows.tsv")],
        setup=trained,
    ),
    Case("data info of a missing path", lambda root: ["data", "info", str(root / "nothing.csv")]),
    Case(
        "data info with a bad option",
        lambda root: ["data", "info", str(root / "events.csv"), "-O", "id_base=abc"],
    ),
]


def run_case(case: Case, verbose: bool) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "events.csv").write_text(CSV)
        (root / "config.yaml").write_text(CONFIG.format(root=root))
        case.setup(root)
        args = [arg.replace("{root}", str(root)) for arg in case.args(root)]
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    output = " ".join(result.output.split())
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        outcome = "traceback"
        if verbose:
            traceback.print_exception(result.exception)
    elif case.expect == "ok":
        outcome = "works" if result.exit_code == 0 else "wrongly refused"
    elif result.exit_code == 0:
        outcome = "silently accepted"
    elif ("error:" in output or "Invalid value" in output) and "Traceback" not in output:
        outcome = "clean error"  # ours, or click's for an option out of its declared range
    else:
        outcome = "unclear failure"
    if verbose or outcome not in ("clean error", "works"):
        print(f"{outcome:>18}  {case.name}: {textwrap.shorten(output, 160)}")
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("RECFORGE_CACHE", tempfile.mkdtemp())
    outcomes = Counter(run_case(case, args.verbose) for case in CASES)
    print(f"{len(CASES)} cases: " + ", ".join(f"{count} {name}" for name, count in outcomes.most_common()))


if __name__ == "__main__":
    main()
