"""BIGRec / DLLM2Rec teacher files: the positions file, the import, and every refusal."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from recforge.cli import app
from recforge.config import config_from_dict
from recforge.data.sequences import PADDING, prefix_windows
from recforge.distill.bigrec import POSITIONS_HEADER, import_bigrec, write_positions
from recforge.distill.teacher import TeacherError, check_teacher, load_teacher
from recforge.errors import DataFormatError
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

NUM_USERS, NUM_ITEMS, PER_USER, MAX_LENGTH, K = 12, 20, 7, 4, 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A tiny sasrec run (and a lightgcn one, to be refused) over numeric raw item ids 1..20, as
    DLLM2Rec's files use the dataset's integer item ids."""
    rng = np.random.default_rng(8)
    rows = ["user,item,timestamp"]
    for user in range(NUM_USERS):
        for step, item in enumerate(rng.choice(NUM_ITEMS, size=PER_USER, replace=False)):
            rows.append(f"u{user},{item + 1},{100 * user + step}")
    root = tmp_path_factory.mktemp("bigrec")
    data = root / "events.csv"
    data.write_text("\n".join(rows) + "\n")
    made = {}
    for name, model, terms in (
        (
            "sasrec",
            {"name": "sasrec", "dim": 8, "max_length": MAX_LENGTH, "num_layers": 1, "inner_dim": 8},
            {"ce": {"weight": 1.0}},
        ),
        ("lightgcn", {"name": "lightgcn", "dim": 8, "num_layers": 1}, {"bpr": {"weight": 1.0}}),
    ):
        config = config_from_dict(
            {
                "name": name,
                "output_dir": str(root / name),
                "data": {
                    "name": str(data),
                    "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
                    "split": {"protocol": "leave_one_out"},
                },
                "model": model,
                "objective": {"terms": terms},
                "train": {
                    "epochs": 1,
                    "batch_size": 8,
                    "num_threads": 1,
                    "early_stopping_metric": "recall@5",
                },
                "evaluation": {"ks": [5]},
            }
        )
        train(config, show_progress=False)
        made[name] = root / name
    return made


@pytest.fixture(scope="module")
def run(runs):
    return runs["sasrec"]


@pytest.fixture(scope="module")
def recommender(run):
    return load_recommender(run, device="cpu")


@pytest.fixture(scope="module")
def prefixes(recommender):
    split = recommender.split
    return prefix_windows(split.train, split.num_users, MAX_LENGTH)


@pytest.fixture(scope="module")
def teacher_rows(recommender, prefixes):
    """What BIGRec would answer: K distinct raw item ids per row and a distance for each."""
    rng = np.random.default_rng(3)
    raw_items = np.array([int(raw) for raw in recommender.item_ids])
    ranking = np.stack([rng.choice(raw_items, size=K, replace=False) for _ in range(len(prefixes[0]))])
    distances = np.sort(rng.uniform(0.1, 3.0, size=ranking.shape), axis=1)
    return ranking, distances


def write_files(directory: Path, ranking: np.ndarray, distances: np.ndarray) -> tuple[Path, Path]:
    """myrank_train.txt and confidence_train.txt exactly as DLLM2Rec writes them (np.savetxt)."""
    directory.mkdir(parents=True, exist_ok=True)
    np.savetxt(directory / "myrank_train.txt", ranking)  # default '%.18e': 1.200000000000000000e+01
    np.savetxt(directory / "confidence_train.txt", distances)
    return directory / "myrank_train.txt", directory / "confidence_train.txt"


def embedding_table(num_rows: int, dim: int = 6) -> torch.Tensor:
    """Row r holds r in every column plus a column ramp: each row recognisable by its values."""
    return torch.arange(num_rows, dtype=torch.float32)[:, None] * 10 + torch.arange(dim, dtype=torch.float32)


def edit_line(path: Path, line: int, new: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = new
    path.write_text("\n".join(lines) + "\n")


# -- positions ------------------------------------------------------------------------------------


def read_positions(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert tuple(rows[0]) == POSITIONS_HEADER
    return rows[1:]


@pytest.mark.parametrize("history", [None, 2])
def test_positions_rows_are_the_training_prefixes_in_prefix_windows_order(
    run, recommender, tmp_path, history
):
    path = tmp_path / "positions.tsv"
    count = write_positions(run, path, history=history)
    split = recommender.split
    length = MAX_LENGTH if history is None else history
    users, steps, windows = prefix_windows(split.train, split.num_users, length)
    indptr, sequence = split.train.sequences(split.num_users)
    rows = read_positions(path)
    assert count == len(rows) == len(users) == int(np.maximum(np.diff(indptr) - 1, 0).sum())
    for index, (row, user, step, target, items) in enumerate(rows):
        assert int(row) == index
        assert user == recommender.user_ids[users[index]]
        assert int(step) == steps[index]
        assert target == recommender.item_ids[sequence[indptr[users[index]] + steps[index]]]
        window = [recommender.item_ids[i - 1] for i in windows[index] if i != PADDING]
        assert items.split(" ") == window
        assert len(window) == min(steps[index], length)
    assert not list(tmp_path.glob("*.partial"))


def test_positions_refuse_a_model_that_reads_no_sequences(runs, tmp_path):
    with pytest.raises(TeacherError, match="reads no sequences"):
        write_positions(runs["lightgcn"], tmp_path / "p.tsv")
    with pytest.raises(TeacherError, match="history must be a positive integer"):
        write_positions(runs["sasrec"], tmp_path / "p.tsv", history=0)
    assert not (tmp_path / "p.tsv").exists()


# -- import ---------------------------------------------------------------------------------------


def test_import_maps_every_row_and_id_through_the_runs_raw_ids(
    run, recommender, prefixes, teacher_rows, tmp_path
):
    ranking, distances = teacher_rows
    ranking_file, confidence_file = write_files(tmp_path / "tocf", ranking, distances)
    assert "e+0" in ranking_file.read_text().split()[0]  # the reference's float format
    num_rows = NUM_ITEMS + 1 + 4  # raw ids are 1..20: row 0 and rows 21..24 name no item of the run
    table = embedding_table(num_rows)
    torch.save(table, tmp_path / "all_embeddings.pt")
    signal = import_bigrec(
        run, ranking=ranking_file, confidence=confidence_file, embeddings=tmp_path / "all_embeddings.pt"
    )
    assert signal.queries == "positions"
    assert signal.k == K
    assert signal.top_items.dtype == torch.long
    raw_of = recommender.item_ids
    assert [[raw_of[i] for i in row] for row in signal.top_items.tolist()] == [
        [str(v) for v in row] for row in ranking.tolist()
    ]
    ranks = torch.arange(1, K + 1, dtype=torch.float32).expand(len(ranking), K)
    assert torch.equal(signal.top_scores, -ranks)
    assert signal.confidence is not None
    assert torch.equal(signal.confidence, torch.from_numpy(distances.astype(np.float32)))
    assert signal.query_users is not None
    assert signal.query_steps is not None
    assert signal.query_users.tolist() == prefixes[0].tolist()
    assert signal.query_steps.tolist() == prefixes[1].tolist()
    assert signal.item_embeddings is not None
    expected = table[[int(raw) for raw in raw_of]]  # the run's item order, row r = raw id r
    assert torch.equal(signal.item_embeddings, expected)
    assert signal.producer["embedding_rows_dropped"] == num_rows - NUM_ITEMS
    assert signal.producer["model"] == "bigrec"
    check_teacher(signal, where="test")
    loaded = load_teacher(
        signal.save(tmp_path / "teacher"),
        split=recommender.split,
        item_ids=recommender.item_ids,
        needs=("confidence", "item_embeddings"),
    )
    assert torch.equal(loaded.top_items, signal.top_items)
    assert loaded.item_embeddings is not None
    assert torch.equal(loaded.item_embeddings, expected)


def test_embedding_ids_name_shuffled_rows_and_extra_rows_are_dropped(
    run, recommender, teacher_rows, tmp_path
):
    ranking_file, _ = write_files(tmp_path, *teacher_rows)
    names = [*recommender.item_ids, "not-an-item", "999"]
    order = np.random.default_rng(5).permutation(len(names))
    shuffled = [names[i] for i in order]
    table = embedding_table(len(names))  # row r belongs to shuffled[r]
    np.save(tmp_path / "emb.npy", table.numpy().astype(np.float16))  # .npy, half precision
    (tmp_path / "ids.txt").write_text("\n".join(shuffled) + "\n")
    signal = import_bigrec(
        run, ranking=ranking_file, embeddings=tmp_path / "emb.npy", embedding_ids=tmp_path / "ids.txt"
    )
    row_of = {raw: row for row, raw in enumerate(shuffled)}
    assert signal.item_embeddings is not None
    assert torch.equal(
        signal.item_embeddings, table.half().float()[[row_of[raw] for raw in recommender.item_ids]]
    )
    assert signal.producer["embedding_rows_dropped"] == 2
    assert signal.confidence is None


def test_integer_formatted_ranking_is_read_the_same(run, teacher_rows, tmp_path):
    ranking, distances = teacher_rows
    floats, _ = write_files(tmp_path / "a", ranking, distances)
    np.savetxt(tmp_path / "ints.txt", ranking, fmt="%d", header="BIGRec top-5")  # '# ' header line
    as_floats = import_bigrec(run, ranking=floats).top_items
    assert torch.equal(as_floats, import_bigrec(run, ranking=tmp_path / "ints.txt").top_items)


# -- refusals -------------------------------------------------------------------------------------


@pytest.fixture
def files(teacher_rows, tmp_path) -> tuple[Path, Path]:
    return write_files(tmp_path / "tocf", *teacher_rows)


@pytest.mark.parametrize(
    ("new_line", "line", "message"),
    [
        ("1 2 3 4", 3, f"4 values, but line 1 has {K}"),
        ("", 2, f"0 values, but line 1 has {K}"),
        ("1 2 3 4 12.5", 4, "column 5: 12.5 is not an integer item id"),
        ("1 2 abc 4 5", 2, "column 3: 'abc' is not a number"),
        ("1 2 999 4 5", 5, "column 3: unknown item id '999'"),
        ("1 2 nan 4 5", 2, "column 3: nan is not an integer item id"),
        ("1 2 3 2 5", 6, "item '2' is listed twice in one row"),
    ],
)
def test_malformed_ranking_names_file_line_and_column(run, files, new_line, line, message):
    ranking, _ = files
    edit_line(ranking, line, new_line)
    with pytest.raises(DataFormatError) as caught:
        import_bigrec(run, ranking=ranking)
    assert caught.value.line == line
    assert caught.value.path == str(ranking)
    assert message in str(caught.value)


def test_unreadable_or_empty_ranking(run, tmp_path):
    with pytest.raises(DataFormatError, match="cannot read the ranking"):
        import_bigrec(run, ranking=tmp_path / "missing.txt")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataFormatError, match="cannot read the ranking"):
        import_bigrec(run, ranking=tmp_path / "binary.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DataFormatError, match="holds no rows"):
        import_bigrec(run, ranking=tmp_path / "empty.txt")


def test_a_row_count_other_than_the_training_prefixes_is_refused(run, prefixes, teacher_rows, tmp_path):
    ranking, distances = teacher_rows
    short, _ = write_files(tmp_path, ranking[:-1], distances[:-1])
    with pytest.raises(TeacherError) as caught:
        import_bigrec(run, ranking=short)
    text = str(caught.value)
    assert f"{len(ranking) - 1} rows" in text
    assert f"{len(prefixes[0])} training prefixes" in text
    assert "recforge teacher positions" in text


def test_confidence_of_another_shape_or_with_nan_is_refused(run, teacher_rows, tmp_path):
    ranking, distances = teacher_rows
    ranking_file, confidence_file = write_files(tmp_path, ranking, distances)
    np.savetxt(tmp_path / "narrow.txt", distances[:, :-1])
    with pytest.raises(TeacherError, match=f"{len(ranking)} rows of {K - 1} distances"):
        import_bigrec(run, ranking=ranking_file, confidence=tmp_path / "narrow.txt")
    np.savetxt(tmp_path / "short.txt", distances[:-2])
    with pytest.raises(TeacherError, match=f"{len(ranking)} rows of {K} items"):
        import_bigrec(run, ranking=ranking_file, confidence=tmp_path / "short.txt")
    edit_line(confidence_file, 7, "0.1 0.2 nan 0.4 0.5")
    with pytest.raises(DataFormatError) as caught:
        import_bigrec(run, ranking=ranking_file, confidence=confidence_file)
    assert caught.value.line == 7
    assert "column 3: nan is not a finite" in str(caught.value)
    edit_line(confidence_file, 7, "0.1 0.2 1e300 0.4 0.5")  # finite in float64, inf in float32
    with pytest.raises(DataFormatError, match="1e"):
        import_bigrec(run, ranking=ranking_file, confidence=confidence_file)


class NotATensor:
    """A pickled object: torch.load(weights_only=True) must refuse it, never build it."""


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (embedding_table(NUM_ITEMS - 5), TeacherError, "no embedding row for 6 of the run's 20 items"),
        (torch.arange(NUM_ITEMS + 1), TeacherError, "expected one 2-D float tensor, got a 1-D torch.int64"),
        (torch.zeros(NUM_ITEMS + 1, 4, 2), TeacherError, "expected one 2-D float tensor, got a 3-D"),
        ({"embeddings": embedding_table(NUM_ITEMS + 1)}, TeacherError, "got dict"),
        (NotATensor(), TeacherError, "not a plain tensor file"),
    ],
)
def test_malformed_embeddings_are_refused(run, files, tmp_path, content, error, message):
    ranking, _ = files
    torch.save(content, tmp_path / "all_embeddings.pt")
    with pytest.raises(error, match=message):
        import_bigrec(run, ranking=ranking, embeddings=tmp_path / "all_embeddings.pt")


def test_nan_embedding_row_and_bad_embedding_ids_are_refused(run, recommender, files, tmp_path):
    ranking, _ = files
    table = embedding_table(NUM_ITEMS + 1)
    table[7, 2] = float("nan")
    torch.save(table, tmp_path / "nan.pt")
    with pytest.raises(DataFormatError, match=r"nan\.pt: row 7 \(item '7'\) holds NaN"):
        import_bigrec(run, ranking=ranking, embeddings=tmp_path / "nan.pt")
    torch.save(embedding_table(NUM_ITEMS), tmp_path / "e.pt")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(recommender.item_ids[:-1]) + "\n")
    with pytest.raises(TeacherError, match=f"{NUM_ITEMS - 1} ids for the {NUM_ITEMS} rows"):
        import_bigrec(run, ranking=ranking, embeddings=tmp_path / "e.pt", embedding_ids=ids)
    ids.write_text("\n".join([*recommender.item_ids[:-1], recommender.item_ids[0]]) + "\n")
    with pytest.raises(DataFormatError) as caught:
        import_bigrec(run, ranking=ranking, embeddings=tmp_path / "e.pt", embedding_ids=ids)
    assert caught.value.line == NUM_ITEMS
    assert "repeats line 1" in str(caught.value)
    with pytest.raises(TeacherError, match="none given"):
        import_bigrec(run, ranking=ranking, embedding_ids=ids)


def test_import_refuses_a_model_that_reads_no_sequences(runs, files):
    with pytest.raises(TeacherError, match="reads no sequences"):
        import_bigrec(runs["lightgcn"], ranking=files[0])


# -- command line ---------------------------------------------------------------------------------


def test_cli_positions_and_import_bigrec(run, recommender, files, tmp_path):
    runner = CliRunner()
    wide = {"COLUMNS": "400"}
    positions = tmp_path / "positions.tsv"
    result = runner.invoke(app, ["teacher", "positions", str(run), "-o", str(positions)], env=wide)
    assert result.exit_code == 0, result.output
    rows = read_positions(positions)
    assert f"{len(rows)} training prefixes" in result.output
    ranking, confidence = files
    torch.save(embedding_table(NUM_ITEMS + 1), tmp_path / "all_embeddings.pt")
    arguments = ["teacher", "import-bigrec", str(run), "--ranking", str(ranking)]
    arguments += ["--confidence", str(confidence), "--embeddings", str(tmp_path / "all_embeddings.pt")]
    arguments += ["-o", str(tmp_path / "teacher")]
    result = runner.invoke(app, arguments, env=wide)
    assert result.exit_code == 0, result.output
    signal = load_teacher(tmp_path / "teacher", split=recommender.split, item_ids=recommender.item_ids)
    assert signal.num_queries == len(rows)
    edit_line(ranking, 4, "1 2 3")
    result = runner.invoke(app, [*arguments[:-2], "-o", str(tmp_path / "bad")], env=wide)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert f"{ranking}:4: 3 values, but line 1 has {K}" in result.output
    assert not (tmp_path / "bad").exists()
    result = runner.invoke(app, ["teacher", "positions", str(run), "-o", str(positions), "--history", "0"])
    assert result.exit_code == 2  # typer's own range check


def test_unreadable_confidence_and_blank_embedding_ids_are_refused(run, recommender, files, tmp_path):
    ranking, _ = files
    with pytest.raises(DataFormatError, match="cannot read the confidence"):
        import_bigrec(run, ranking=ranking, confidence=tmp_path / "missing.txt")
    torch.save(embedding_table(NUM_ITEMS), tmp_path / "e.pt")
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join([*recommender.item_ids[:3], "  ", *recommender.item_ids[4:]]) + "\n")
    with pytest.raises(DataFormatError, match="blank line") as caught:
        import_bigrec(run, ranking=ranking, embeddings=tmp_path / "e.pt", embedding_ids=ids)
    assert caught.value.line == 4
    ids.write_text("\n")
    with pytest.raises(DataFormatError, match="holds no ids"):
        import_bigrec(run, ranking=ranking, embeddings=tmp_path / "e.pt", embedding_ids=ids)


@pytest.mark.parametrize(
    ("user_ids", "item_ids", "message"),
    [(["u0", "u\t1"], ["1", "2"], "user id 'u\\\\t1'"), (["u0"], ["1", "item 2"], "item id 'item 2'")],
)
def test_raw_ids_the_positions_file_cannot_hold_are_refused(user_ids, item_ids, message):
    from types import SimpleNamespace

    from recforge.distill.bigrec import _check_writable_ids

    with pytest.raises(TeacherError, match=message):
        _check_writable_ids(SimpleNamespace(user_ids=user_ids, item_ids=item_ids))
