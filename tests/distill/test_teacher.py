"""TeacherSignal: exported from any run, imported from plain files, refused when it does not fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from recforge.config import config_from_dict
from recforge.distill.teacher import (
    TeacherError,
    check_teacher,
    export_teacher,
    import_teacher,
    load_teacher,
    read_matrix,
)
from recforge.errors import DataFormatError
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

NUM_USERS, NUM_ITEMS, PER_USER = 12, 20, 7


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    rng = np.random.default_rng(8)
    rows = ["user,item,timestamp"]
    for user in range(NUM_USERS):
        for step, item in enumerate(rng.choice(NUM_ITEMS, size=PER_USER, replace=False)):
            rows.append(f"u{user},i{item},{100 * user + step}")
    root = tmp_path_factory.mktemp("teacher")
    data = root / "events.csv"
    data.write_text("\n".join(rows) + "\n")
    made = {}
    for name, model, terms in (
        ("lightgcn", {"name": "lightgcn", "dim": 8, "num_layers": 1}, {"bpr": {"weight": 1.0}}),
        (
            "sasrec",
            {"name": "sasrec", "dim": 8, "max_length": 4, "num_layers": 1, "inner_dim": 8},
            {"ce": {"weight": 1.0}},
        ),
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
                    "epochs": 2,
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


def test_user_teacher_ranks_unseen_items_from_the_training_history(runs, tmp_path):
    signal = export_teacher(runs["lightgcn"], k=6, device="cpu")
    recommender = load_recommender(runs["lightgcn"], device="cpu")
    queries, items = recommender.embeddings("valid")
    scores = queries @ items.T
    train = recommender.split.csr("train")
    for user in range(NUM_USERS):
        seen = set(train[user].indices.tolist())
        expected = [i for i in torch.argsort(scores[user], descending=True).tolist() if i not in seen][:6]
        assert signal.top_items[user].tolist() == expected
        assert signal.top_scores[user].tolist() == pytest.approx(scores[user, expected].tolist())
    assert signal.queries == "users"
    assert signal.item_embeddings is not None
    assert torch.equal(signal.item_embeddings, items)
    saved = load_teacher(signal.save(tmp_path / "t"), split=recommender.split, item_ids=recommender.item_ids)
    assert torch.equal(saved.top_items, signal.top_items)
    meta = json.loads((tmp_path / "t" / "teacher.json").read_text())
    assert meta["k"] == 6
    assert meta["producer"]["model"] == "lightgcn"
    assert meta["split_hash"] == recommender.split.content_hash


def test_position_teacher_answers_every_training_prefix(runs):
    signal = export_teacher(runs["sasrec"], k=5, device="cpu")
    recommender = load_recommender(runs["sasrec"], device="cpu")
    indptr, sequence = recommender.split.train.sequences(NUM_USERS)
    lengths = np.diff(indptr)
    assert signal.queries == "positions"
    assert signal.num_queries == int(np.maximum(lengths - 1, 0).sum())
    assert signal.query_users is not None
    assert signal.query_steps is not None
    row = 3
    user, steps = int(signal.query_users[row]), int(signal.query_steps[row])
    prefix = [recommender.item_ids[i] for i in sequence[indptr[user] : indptr[user] + steps]]
    expected = recommender.recommend_for_history(prefix, k=5, exclude_seen=False)
    assert [recommender.item_ids[i] for i in signal.top_items[row].tolist()] == [e.item for e in expected]
    assert signal.query_embeddings is None  # one row per prefix: only on request


def test_position_confidence_is_the_cosine_distance_to_each_listed_item(runs):
    signal = export_teacher(runs["sasrec"], k=4, query_embeddings=True, device="cpu")
    assert signal.confidence is not None
    assert signal.query_embeddings is not None
    assert signal.item_embeddings is not None
    row, column = 5, 2
    state, item = signal.query_embeddings[row], signal.item_embeddings[int(signal.top_items[row, column])]
    expected = 1 - float(state @ item) / float(state.norm() * item.norm())
    assert float(signal.confidence[row, column]) == pytest.approx(expected, abs=1e-5)
    # listed best first by dot product; distances are a separate signal, all within [0, 2]
    assert bool(((signal.confidence >= -1e-6) & (signal.confidence <= 2 + 1e-6)).all())


def test_confidence_of_the_wrong_shape_is_refused(runs):
    from dataclasses import replace

    signal = export_teacher(runs["sasrec"], k=4, device="cpu")
    with pytest.raises(TeacherError, match=r"confidence has shape \(\d+, 3\)"):
        check_teacher(replace(signal, confidence=torch.zeros(signal.num_queries, 3)), where="t")
    check_teacher(replace(signal, confidence=torch.zeros(signal.num_queries)), where="t")  # per query: fine


def test_a_teacher_is_refused_when_it_does_not_fit(runs, tmp_path):
    signal = export_teacher(runs["lightgcn"], k=4, device="cpu")
    directory = signal.save(tmp_path / "t")
    other_split = load_recommender(runs["sasrec"], device="cpu").split  # another model, the same split
    assert load_teacher(directory, split=other_split).k == 4
    from dataclasses import replace

    moved = replace(other_split, test=other_split.valid)
    with pytest.raises(TeacherError, match=r"made on split [0-9a-f]{16}, the student trains on"):
        load_teacher(directory, split=moved)
    with pytest.raises(TeacherError, match="ranks K = 4 items per query, a term needs 40"):
        load_teacher(directory, min_k=40)
    with pytest.raises(TeacherError, match="needs the teacher's confidence"):
        load_teacher(directory, needs=["confidence"])
    for name, change, message in (
        ("top_items", lambda t: t.fill_(NUM_ITEMS + 3), r"item id 23, outside the catalogue 0\.\.19"),
        (
            "top_scores",
            lambda t: t.index_fill_(0, torch.tensor([2]), float("nan")),
            "top_scores holds NaN .*row 2",
        ),
        ("item_embeddings", lambda t: t.fill_(float("inf")), "item_embeddings holds NaN or infinite"),
    ):
        broken = replace(signal, **{name: change(getattr(signal, name).clone())})
        with pytest.raises(TeacherError, match=message):
            load_teacher(broken.save(tmp_path / name))
    (directory / "teacher.json").unlink()
    with pytest.raises(TeacherError, match=r"not a TeacherSignal \(teacher.json is missing\)"):
        load_teacher(directory)


def test_import_from_a_ranking_file_and_plain_tensors(runs, tmp_path):
    recommender = load_recommender(runs["lightgcn"], device="cpu")
    lines = [f"{user} i1 i2 i3" for user in recommender.user_ids]
    ranking = tmp_path / "ranking.txt"
    ranking.write_text("\n".join(lines) + "\n")
    items = tmp_path / "items.npy"
    np.save(items, np.ones((NUM_ITEMS, 5), dtype=np.float32))
    users = tmp_path / "users.pt"
    torch.save(torch.zeros(NUM_USERS, 3), users)
    signal = import_teacher(runs["lightgcn"], ranking=ranking, item_embeddings=items, query_embeddings=users)
    assert signal.k == 3
    expected = [recommender.item_index(raw) for raw in ("i1", "i2", "i3")]
    assert all(row == expected for row in signal.top_items.tolist())
    assert signal.top_scores[0].tolist() == [-1.0, -2.0, -3.0]
    assert load_teacher(signal.save(tmp_path / "t"), split=recommender.split).query_embeddings is not None


def test_import_errors_name_the_line_and_refuse_pickles(runs, tmp_path):
    ranking = tmp_path / "ranking.txt"
    ranking.write_text("u0 i1\nu1 i1 zz\n")
    with pytest.raises(DataFormatError, match=r"ranking.txt:2: field 'item': unknown item id 'zz'"):
        import_teacher(runs["lightgcn"], ranking=ranking)
    ranking.write_text("u0 i1\n")
    with pytest.raises(TeacherError, match=r"no ranking for 11 users"):
        import_teacher(runs["lightgcn"], ranking=ranking)

    from fractions import Fraction

    hostile = tmp_path / "hostile.pt"
    torch.save({"x": Fraction(1, 3)}, hostile)  # any class off torch's weights_only allow-list
    with pytest.raises(TeacherError, match=r"hostile.pt: not a plain tensor file"):
        read_matrix(hostile)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones(4, dtype=np.float32))
    with pytest.raises(TeacherError, match=r"expected one 2-D float tensor, got a 1-D torch\.float32 tensor"):
        read_matrix(flat)
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(TeacherError, match="not a plain tensor file"):
        read_matrix(objects)


def test_the_command_line_exports_and_checks(runs, tmp_path):
    from typer.testing import CliRunner

    from recforge.cli import app

    runner = CliRunner()
    out = tmp_path / "teacher"
    result = runner.invoke(app, ["teacher", "export", str(runs["lightgcn"]), "-o", str(out), "--k", "3"])
    assert result.exit_code == 0, result.output
    assert "queries=users, num_queries=12, k=3" in " ".join(result.output.split())
    assert runner.invoke(app, ["teacher", "info", str(out)]).exit_code == 0
    shutil.rmtree(out)
    failed = runner.invoke(app, ["teacher", "info", str(out)])
    assert failed.exit_code == 2
    assert "not a TeacherSignal" in " ".join(failed.output.split())
