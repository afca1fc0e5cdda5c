"""`recforge` command line: a thin layer that parses, calls one library function, and prints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recforge.errors import RecforgeError

app = typer.Typer(
    name="recforge",
    help="Build accurate recommenders and distill them into fast ones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
teacher_app = typer.Typer(help="Write and inspect TeacherSignals (a teacher as data).", no_args_is_help=True)
app.add_typer(teacher_app, name="teacher")
console = Console()
status = Console(stderr=True)

OverrideOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-o", help="Override a config value, e.g. -o model.dim=128 (repeatable)."),
]


def _fail(error: RecforgeError) -> None:
    # soft_wrap: a message is never broken mid-sentence at the console width (people grep it)
    status.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code=2)


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="YAML experiment file (see configs/).")],
    overrides: OverrideOption = None,
    resume: Annotated[bool, typer.Option(help="Continue from RUN_DIR/resume after an interruption.")] = False,
    root: Annotated[
        Path | None, typer.Option(help="Root of the named datasets (sets data.root; else $RECFORGE_DATA).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train the experiment in CONFIG; write config, split, log, best weights and metrics to RUN_DIR."""
    from recforge.config import load_config
    from recforge.train.trainer import train as run_training

    try:
        root_override = [f"data.root={root.resolve()}"] if root is not None else []
        experiment = load_config(config, [*root_override, *(overrides or ())])
        result = run_training(experiment, resume=resume, console=status, show_progress=progress)
    except RecforgeError as error:
        _fail(error)
    console.print(result.summary_table(tuple(experiment.evaluation.ks)))
    console.print(f"run directory: {result.run_dir}")


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `recforge train`.")],
    fold: Annotated[list[str] | None, typer.Option(help="Fold(s) to score: valid, test.")] = None,
    overrides: OverrideOption = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Score the best checkpoint of RUN_DIR on its saved split (valid and test by default).

    Reads the run directory only: the dataset files need not be present."""
    from recforge.retrieval.recommender import evaluate_run, load_recommender

    folds = tuple(fold or ("valid", "test"))
    for name in folds:
        if name not in ("valid", "test"):
            _fail(RecforgeError(f"--fold: expected valid or test, got '{name}'"))
    try:
        recommender = load_recommender(run_dir, overrides=tuple(overrides or ()), device=device)
        results = evaluate_run(recommender, folds)
    except RecforgeError as error:
        _fail(error)
    if as_json:
        console.print_json(json.dumps({name: result.to_dict() for name, result in results.items()}))
        return
    info = recommender.info
    table = Table(title=f"{run_dir} (epoch {info.epoch}, split {info.split_hash})")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    for metric in next(iter(results.values())).metrics:
        table.add_row(metric, *(f"{result.metrics[metric]:.4f}" for result in results.values()))
    console.print(table)


@app.command()
def recommend(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `recforge train`.")],
    users: Annotated[list[str] | None, typer.Option("--user", "-u", help="Raw user id (repeatable).")] = None,
    history: Annotated[
        list[str] | None,
        typer.Option(
            "--history", help="Raw item id of a history, oldest first (repeatable; sequential models)."
        ),
    ] = None,
    similar: Annotated[str | None, typer.Option(help="Raw item id: list the items most like it.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="How many items.")] = 10,
    include_seen: Annotated[
        bool, typer.Option(help="Also rank items the user is known to have interacted with.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Top-K items for users (--user), after an item history (--history), or like an item
    (--similar), with titles where the dataset has them. Reads the run directory only."""
    from recforge.retrieval.recommender import load_recommender

    asked = [bool(users), bool(history), similar is not None]
    if sum(asked) != 1:
        _fail(RecforgeError("give exactly one of --user (repeatable), --history (repeatable) or --similar"))
    try:
        recommender = load_recommender(run_dir, device=device)
        if users:
            answers = dict(
                zip(users, recommender.recommend(users, k, exclude_seen=not include_seen), strict=True)
            )
        elif history:
            answers = {
                "history": recommender.recommend_for_history(history, k, exclude_seen=not include_seen)
            }
        else:
            answers = {f"similar to {similar}": recommender.similar_items(similar, k)}
    except RecforgeError as error:
        _fail(error)
    if as_json:
        console.print_json(
            json.dumps({query: [entry.to_dict() for entry in ranked] for query, ranked in answers.items()})
        )
        return
    for query, ranked in answers.items():
        title = f"user {query}" if users else query
        table = Table(title=f"{title} — {recommender.model_name}, top {k}", title_justify="left")
        table.add_column("#", justify="right")
        table.add_column("item")
        table.add_column("title")
        table.add_column("score", justify="right")
        for rank, entry in enumerate(ranked, start=1):
            table.add_row(str(rank), entry.item, entry.title or "", f"{entry.score:.4f}")
        console.print(table)


@app.command()
def index(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of a model that ranks by embeddings.")],
    kind: Annotated[str, typer.Option(help="flat, ivf, hnsw or ivfpq.")] = "hnsw",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="An index parameter, e.g. -p nprobe=32 (ivf, ivfpq: nlist, nprobe; hnsw: hnsw_m, "
            "ef_construction, ef_search, hnsw_space lifted|inner_product; ivfpq: pq_m, pq_bits, refine). "
            "Repeatable.",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Directory to write the index to.")
    ] = None,
    evaluate: Annotated[
        bool, typer.Option("--evaluate", help="Report recall@K against exact top-K and queries per second.")
    ] = False,
    existing: Annotated[
        Path | None, typer.Option("--index", help="Evaluate this saved index instead of building one.")
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="K of the evaluation's recall@K.")] = 100,
    users: Annotated[int, typer.Option(min=1, help="Users the evaluation asks (seeded sample).")] = 2000,
    exclusion: Annotated[
        str, typer.Option(help="How seen items are excluded: overfetch (batched) or selector (per query).")
    ] = "overfetch",
    threads: Annotated[int | None, typer.Option(min=1, help="FAISS and torch threads.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Build a FAISS index over RUN_DIR's item table (-o DIR), and/or --evaluate one: recall@K of
    its top-K against exact search and queries per second of both, seen items excluded in both."""
    import torch

    from recforge.retrieval.index import Exclusion, build_index, evaluate_index, index_params, load_index
    from recforge.retrieval.recommender import load_recommender
    from recforge.yaml_settings import parse_override

    if output is None and not evaluate:
        _fail(RecforgeError("give --output DIR to write the index, or --evaluate to measure it (or both)"))
    if exclusion not in ("overfetch", "selector"):
        _fail(RecforgeError(f"--exclusion: expected overfetch or selector, got '{exclusion}'"))
    try:
        if threads:
            torch.set_num_threads(threads)
        settings: dict[str, object] = {}
        for text in param or []:
            path, value = parse_override(text)
            settings[".".join(path)] = value
        recommender = load_recommender(run_dir, device="cpu")
        if existing is not None:
            built = load_index(existing, recommender)
        else:
            built = build_index(recommender, index_params(kind, settings), threads=threads)
            if output is not None:
                built.save(output)
        report = None
        if evaluate:
            mode: Exclusion = "selector" if exclusion == "selector" else "overfetch"  # checked above
            report = evaluate_index(recommender, built, k=k, users=users, exclusion=mode)
    except RecforgeError as error:
        _fail(error)
    if as_json:
        console.print_json(
            json.dumps({"index": built.meta, "evaluation": report.to_dict() if report else None})
        )
        return
    meta = built.meta
    console.print(
        f"{meta['kind']} index over {meta['num_items']:,} items of dimension {meta['dim']} "
        f"({', '.join(f'{name}={value}' for name, value in meta['params'].items()) or 'exact'}), "
        f"built in {meta['build_seconds']:.2f} s" + (f", written to {output}" if output else ""),
        highlight=False,
        soft_wrap=True,
    )
    if report is not None:
        table = Table(
            title=f"{report.kind} vs exact, {report.users:,} users, seen items excluded ({report.exclusion})"
        )
        table.add_column(f"recall@{report.k}", justify="right")
        table.add_column("ANN queries/s", justify="right")
        table.add_column("exact queries/s", justify="right")
        table.add_column("seen items returned", justify="right")
        table.add_row(
            f"{report.recall:.4f}",
            f"{report.ann_qps:,.0f}",
            f"{report.exact_qps:,.0f}",
            str(report.seen_returned),
        )
        console.print(table)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@app.command()
def serve(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `recforge train`.")],
    index_dir: Annotated[
        Path | None, typer.Option("--index", help="A `recforge index` directory to answer users from.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind (beyond loopback: an API key).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8000,
    fallback: Annotated[
        str | None, typer.Option(help="popular: answer unknown users with popular items (marked).")
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="Name of an environment variable holding the key the X-API-Key header must carry."),
    ] = None,
    max_k: Annotated[int, typer.Option(min=1, help="Largest k a request may ask for.")] = 1000,
    max_batch: Annotated[int, typer.Option(min=1, help="Most users in one POST /recommend.")] = 256,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="CPU threads torch and FAISS use per request (requests already run side by side).",
        ),
    ] = 1,
) -> None:
    """Serve RUN_DIR over HTTP: /recommend/{user}, POST /recommend, POST /recommend/history,
    /similar/{item}, /health, /metadata, OpenAPI docs at /docs, and a page at /."""
    import os

    import torch
    import uvicorn

    from recforge.retrieval.index import load_index
    from recforge.retrieval.recommender import load_recommender
    from recforge.retrieval.service import Limits, create_app

    if fallback not in (None, "popular"):
        _fail(RecforgeError(f"--fallback: expected popular, got '{fallback}'"))
    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            _fail(RecforgeError(f"--api-key-env: environment variable {api_key_env} is not set or empty"))
    if host not in LOOPBACK and api_key is None:
        _fail(RecforgeError(f"--host {host}: binding beyond loopback needs --api-key-env NAME"))
    started = time.perf_counter()
    torch.set_num_threads(threads)
    try:
        recommender = load_recommender(run_dir, device=device)
        index = load_index(index_dir, recommender) if index_dir is not None else None
        if index is not None:
            import faiss

            faiss.omp_set_num_threads(threads)
        app_ = create_app(
            recommender,
            index=index,
            fallback=fallback,
            api_key=api_key,
            limits=Limits(max_k=max_k, max_batch=max_batch),
        )
    except RecforgeError as error:
        _fail(error)
    status.print(
        f"serving {recommender.model_name} from {run_dir} "
        f"({'index ' + str(index_dir) if index_dir else 'exact scoring'}); ready in "
        f"{time.perf_counter() - started:.2f} s",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def terms() -> None:
    """List the loss terms a config's objective.terms may name, what each needs and its parameters."""
    from recforge.objectives.registry import TERMS, term_parameters

    table = Table(title="loss terms: objective.terms.NAME: {weight: W, PARAMETER: VALUE}")
    table.add_column("term")
    table.add_column("needs")
    table.add_column("parameters (default)")
    table.add_column("what")
    for name, term in TERMS.items():
        parameters = ", ".join(f"{key} {value}" for key, value in term_parameters(name).items())
        table.add_row(name, ", ".join(sorted(term.needs)), parameters or "—", term.summary)
    console.print(table)


@teacher_app.command("export")
def teacher_export(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (any model).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the TeacherSignal to.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Items ranked per query.")] = 500,
    queries: Annotated[
        str | None,
        typer.Option(
            help="users, or positions (every training prefix; sequential models). Default: by model."
        ),
    ] = None,
    query_embeddings: Annotated[
        bool | None,
        typer.Option(
            "--query-embeddings/--no-query-embeddings",
            help="Write the query states too. Default: yes for users, no for positions (one row per "
            "training prefix: large).",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Write RUN_DIR's teacher outputs (top-K lists, scores, embeddings) as a TeacherSignal.

    Position queries also get each listed item's cosine distance to the state (``confidence``)."""
    from recforge.distill.teacher import export_teacher

    if queries not in (None, "users", "positions"):
        _fail(RecforgeError(f"--queries: expected users or positions, got '{queries}'"))
    try:
        signal = export_teacher(
            run_dir, k=k, queries=queries, query_embeddings=query_embeddings, device=device  # type: ignore[arg-type]
        )
        signal.save(output)
    except RecforgeError as error:
        _fail(error)
    console.print(f"{signal!r}\nwritten to {output}", highlight=False, soft_wrap=True)


@teacher_app.command("import")
def teacher_import(
    run_dir: Annotated[Path, typer.Argument(help="A run on the student's data: its split and ids are used.")],
    ranking: Annotated[Path, typer.Option(help="Lines 'user item item ...' in raw ids, best first.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the TeacherSignal to.")],
    item_embeddings: Annotated[
        Path | None, typer.Option(help=".npy or .pt (plain tensor), run's item order.")
    ] = None,
    query_embeddings: Annotated[
        Path | None, typer.Option(help=".npy or .pt (plain tensor), run's user order.")
    ] = None,
    producer: Annotated[str, typer.Option(help="A name for the teacher, kept in teacher.json.")] = "external",
) -> None:
    """Build a TeacherSignal from an external recommender's files (nothing is unpickled)."""
    from recforge.distill.teacher import import_teacher

    try:
        signal = import_teacher(
            run_dir,
            ranking=ranking,
            item_embeddings=item_embeddings,
            query_embeddings=query_embeddings,
            producer=producer,
        )
        signal.save(output)
    except RecforgeError as error:
        _fail(error)
    console.print(f"{signal!r}\nwritten to {output}", highlight=False, soft_wrap=True)


@teacher_app.command("positions")
def teacher_positions(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished run of a sequential model on the student's data.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The tab-separated file to write.")],
    history: Annotated[
        int | None, typer.Option(min=1, help="Items of each prefix to list. Default: the run's max_length.")
    ] = None,
) -> None:
    """Write the training prefixes an external (BIGRec-style) teacher must answer, one row each.

    Columns: row, user, step, next, history (raw ids). The teacher's output files must have one line
    per row, in this order, for `recforge teacher import-bigrec`."""
    from recforge.distill.bigrec import write_positions

    try:
        rows = write_positions(run_dir, output, history=history)
    except RecforgeError as error:
        _fail(error)
    console.print(f"{rows} training prefixes written to {output}", highlight=False, soft_wrap=True)


@teacher_app.command("import-bigrec")
def teacher_import_bigrec(
    run_dir: Annotated[Path, typer.Argument(help="The run whose `teacher positions` rows the files answer.")],
    ranking: Annotated[Path, typer.Option(help="myrank_train.txt: K raw item ids per row, best first.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the TeacherSignal to.")],
    confidence: Annotated[
        Path | None, typer.Option(help="confidence_train.txt: K distances per row (lower = surer).")
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option(help="all_embeddings.pt (plain tensor) or .npy: one row per item.")
    ] = None,
    embedding_ids: Annotated[
        Path | None, typer.Option(help="One raw item id per embedding row. Default: row r is item id r.")
    ] = None,
    producer: Annotated[str, typer.Option(help="A name for the teacher, kept in teacher.json.")] = "bigrec",
) -> None:
    """Build a position TeacherSignal from BIGRec / DLLM2Rec teacher files (nothing is unpickled)."""
    from recforge.distill.bigrec import import_bigrec

    try:
        signal = import_bigrec(
            run_dir,
            ranking=ranking,
            confidence=confidence,
            embeddings=embeddings,
            embedding_ids=embedding_ids,
            producer=producer,
        )
        signal.save(output)
    except RecforgeError as error:
        _fail(error)
    console.print(f"{signal!r}\nwritten to {output}", highlight=False, soft_wrap=True)


@teacher_app.command("fold")
def teacher_fold(
    run_dir: Annotated[Path, typer.Argument(help="A student run trained with model.teacher_offset.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to write the plain student to.")],
) -> None:
    """Fold a student's teacher offset into its item table: a plain student run (no teacher files,
    no projector) that scores identically."""
    from recforge.distill.fold import fold_run

    try:
        fold_run(run_dir, output)
    except RecforgeError as error:
        _fail(error)
    console.print(f"folded {run_dir} into {output}", highlight=False, soft_wrap=True)


@teacher_app.command("info")
def teacher_info(directory: Annotated[Path, typer.Argument(help="A TeacherSignal directory.")]) -> None:
    """Check a TeacherSignal and print what it holds."""
    from recforge.distill.teacher import load_teacher

    try:
        signal = load_teacher(directory)
    except RecforgeError as error:
        _fail(error)
    console.print(repr(signal), highlight=False, soft_wrap=True)


@data_app.command("list")
def data_list() -> None:
    """List the named datasets and where each is looked for."""
    from recforge.data.registry import DATASETS

    table = Table(title="named datasets (data root: --root, $RECFORGE_DATA, or shared/data nearby)")
    table.add_column("name")
    table.add_column("directory under the root")
    table.add_column("what it is")
    for name, spec in DATASETS.items():
        table.add_row(name, spec.directory or "(downloaded and cached)", spec.description)
    console.print(table)


@data_app.command("info")
def data_info(
    name_or_path: Annotated[str, typer.Argument(help="A registered dataset name or a path to data files.")],
    root: Annotated[
        Path | None, typer.Option(help="Root of the named datasets (else $RECFORGE_DATA).")
    ] = None,
    data_format: Annotated[str | None, typer.Option("--format", help="Force a reader for a path.")] = None,
    reader_options: Annotated[
        list[str] | None,
        typer.Option("--option", "-O", help="Reader argument, e.g. -O user=userId (repeatable)."),
    ] = None,
) -> None:
    """Read a dataset and print its size, sparsity and what it carries."""
    from recforge.data.registry import load_dataset
    from recforge.yaml_settings import parse_override

    try:
        options: dict[str, object] = {}
        for option in reader_options or ():
            key_path, option_value = parse_override(option)
            options[".".join(key_path)] = option_value
        if data_format:
            options["format"] = data_format
        dataset = load_dataset(name_or_path, root=root, **options)
    except RecforgeError as error:
        _fail(error)
    table = Table(title=f"{dataset.name}", show_header=False)
    for key, value in dataset.summary().items():
        table.add_row(key, f"{value:.6f}" if isinstance(value, float) else str(value))
    console.print(table)
    for note in dataset.notes:
        console.print(f"note: {note}")


@app.command()
def quickstart(
    output_dir: Annotated[Path, typer.Option(help="Where the run is written.")] = Path("runs/quickstart"),
    overrides: OverrideOption = None,
    users: Annotated[int, typer.Option(help="How many users to show recommendations for.")] = 3,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train LightGCN on MovieLens-100K, print test metrics and top-10 recommendations with titles."""
    from recforge.quickstart import recommendations_for, run_quickstart

    try:
        result = run_quickstart(output_dir, tuple(overrides or ()), console=status, show_progress=progress)
    except RecforgeError as error:
        _fail(error)
    console.print(result.summary_table())
    for entry in recommendations_for(result, num_users=users):
        table = Table(
            title=f"user {entry.user} — recently watched: {'; '.join(entry.recent)}", title_justify="left"
        )
        table.add_column("#", justify="right")
        table.add_column("recommended (✓ = watched in the held-out test fold)")
        for rank, (title, hit) in enumerate(zip(entry.recommended, entry.hits, strict=True), start=1):
            table.add_row(str(rank), f"{title}{'  ✓' if hit else ''}")
        console.print(table)
    console.print(f"run directory: {result.run_dir}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
