"""DLLM2Rec's importance-aware ranking distillation: the weights and the loss by hand, the
per-prefix row lookup, the term against a slow loop, and a distilled sequential run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from recforge.config import config_from_dict
from recforge.distill.importance import (
    ImportanceRD,
    ImportanceRDParams,
    PositionRows,
    importance_weights,
    ranking_distillation_loss,
)
from recforge.distill.teacher import TeacherError, TeacherSignal, export_teacher
from recforge.errors import ConfigError
from recforge.objectives.outputs import BatchOutputs, QueryPositions, TermContext
from recforge.train.trainer import train


def params(**overrides: object) -> ImportanceRDParams:
    return ImportanceRDParams.model_validate({"weight": 1.0, "k": 3, **overrides})


def test_weights_by_hand():
    distances = torch.tensor([[0.0, 1.0, 2.0]])
    agreement = torch.tensor([[True, False, True]])
    got = importance_weights(distances, agreement, params())
    e = [math.exp(-r) for r in (1, 2, 3)]
    position = [v / sum(e) for v in e]
    c = [math.exp(-d) for d in (0.0, 1.0, 2.0)]
    confidence = [v / sum(c) for v in c]
    consistency = [0.5, 0.0, 0.5]  # share: the agreeing candidates split the mass
    mixed = [0.3 * p + 0.5 * q + 0.1 * o for p, q, o in zip(position, confidence, consistency, strict=True)]
    assert got[0].tolist() == pytest.approx([m / sum(mixed) for m in mixed], rel=1e-6)
    # the reference code's form: the 0/1 indicator added as it is
    indicator = importance_weights(distances, agreement, params(consistency="indicator"))
    raw = [0.3 * p + 0.5 * q + 0.1 * o for p, q, o in zip(position, confidence, [1, 0, 1], strict=True)]
    assert indicator[0].tolist() == pytest.approx([m / sum(raw) for m in raw], rel=1e-6)


def test_weights_without_a_component_and_rows_with_nothing_to_weigh():
    agreement = torch.tensor([[False, False, False], [False, True, False]])
    only_consistency = params(gamma_position=0, gamma_confidence=0, gamma_consistency=1)
    got = importance_weights(None, agreement, only_consistency)
    assert got.tolist() == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]  # no agreement, no weight
    position_only = importance_weights(None, agreement, params(gamma_confidence=0, gamma_consistency=0))
    assert position_only.sum(1).tolist() == pytest.approx([1.0, 1.0])
    assert position_only[0, 0] > position_only[0, 1] > position_only[0, 2]
    with pytest.raises(ValueError, match="all 0"):
        params(gamma_position=0, gamma_confidence=0, gamma_consistency=0)


def test_loss_by_hand():
    candidates, negative = torch.tensor([[2.0, -1.0]]), torch.tensor([0.5])
    weights = torch.tensor([[0.75, 0.25]])

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x))

    expected = -(
        0.75 * (log_sigmoid(2.0) + log_sigmoid(-0.5)) + 0.25 * (log_sigmoid(-1.0) + log_sigmoid(-0.5))
    )
    assert ranking_distillation_loss(candidates, negative, weights).item() == pytest.approx(expected)
    extreme = ranking_distillation_loss(torch.tensor([[-1e4, 1e4]]), torch.tensor([1e4]), weights)
    assert torch.isfinite(extreme).all()


def position_teacher(lengths: list[int], k: int, num_items: int, *, seed: int = 0) -> TeacherSignal:
    """One row per training prefix, rows shuffled, random lists and distances."""
    users = np.repeat(np.arange(len(lengths)), [max(n - 1, 0) for n in lengths])
    steps = np.concatenate([np.arange(1, n) for n in lengths if n > 1])
    order = np.random.default_rng(seed).permutation(len(users))
    generator = torch.Generator().manual_seed(seed)
    queries = len(users)
    return TeacherSignal(
        queries="positions",
        top_items=torch.stack([torch.randperm(num_items, generator=generator)[:k] for _ in range(queries)]),
        top_scores=-torch.arange(1.0, k + 1).expand(queries, k).clone(),
        user_ids=[f"u{u}" for u in range(len(lengths))],
        item_ids=[f"i{i}" for i in range(num_items)],
        split_hash="s",
        producer={},
        query_users=torch.from_numpy(users[order]),
        query_steps=torch.from_numpy(steps[order]),
        confidence=torch.rand(queries, k, generator=generator) * 2,
    )


def context(teacher: TeacherSignal, lengths: list[int], num_items: int) -> TermContext:
    return TermContext(
        num_users=len(lengths),
        num_items=num_items,
        dim=4,
        positive_counts=torch.ones(num_items),
        device=torch.device("cpu"),
        teacher=teacher,
        train_lengths=np.array(lengths),
    )


def test_position_rows_find_each_prefix_in_a_shuffled_teacher():
    lengths = [4, 1, 3, 0, 2]
    teacher = position_teacher(lengths, k=2, num_items=6)
    rows = PositionRows(teacher, np.array(lengths), where="t")
    users, steps = torch.tensor([0, 0, 0, 2, 2, 4]), torch.tensor([1, 2, 3, 1, 2, 1])
    found = rows(users, steps)
    assert teacher.query_users[found].tolist() == users.tolist()
    assert teacher.query_steps[found].tolist() == steps.tolist()


def test_a_teacher_without_a_row_per_prefix_is_refused():
    lengths = [4, 3]
    teacher = position_teacher(lengths, k=2, num_items=6)
    with pytest.raises(TeacherError, match=r"user 1 has 2 rows for 1 prefixes"):
        PositionRows(teacher, np.array([4, 2]), where="t")
    duplicated = torch.where(teacher.query_steps == 3, 2, teacher.query_steps)  # user 0: steps 1, 2, 2
    from dataclasses import replace

    with pytest.raises(TeacherError, match="one row per training prefix"):
        PositionRows(replace(teacher, query_steps=duplicated), np.array(lengths), where="t")
    user_teacher = replace(teacher, queries="users")
    with pytest.raises(ConfigError, match="one list per training prefix"):
        PositionRows(user_teacher, np.array(lengths), where="t")


def test_confidence_weights_need_per_candidate_distances():
    lengths = [3, 3]
    from dataclasses import replace

    teacher = position_teacher(lengths, k=3, num_items=5)
    per_query = replace(teacher, confidence=torch.zeros(teacher.num_queries))
    with pytest.raises(TeacherError, match="per listed item"):
        ImportanceRD(params(), context(per_query, lengths, 5))
    ImportanceRD(params(gamma_confidence=0), context(per_query, lengths, 5))  # without w_c: fine


@pytest.mark.parametrize("consistency", [0.1, 0.0])
def test_term_matches_a_slow_loop(consistency: float):
    lengths, num_items, k = [5, 4, 3], 9, 3
    teacher = position_teacher(lengths, k=k, num_items=num_items, seed=2)
    settings = params(gamma_consistency=consistency)
    term = ImportanceRD(settings, context(teacher, lengths, num_items))
    generator = torch.Generator().manual_seed(5)
    users, steps = torch.tensor([0, 0, 1, 2, 0]), torch.tensor([1, 4, 2, 2, 3])
    queries = torch.randn(5, 4, generator=generator, requires_grad=True)
    items = torch.randn(num_items, 4, generator=generator)
    negatives = torch.randint(num_items, (5, 2), generator=generator)
    outputs = BatchOutputs(queries=queries, items=items, negative_ids=negatives)
    outputs.views["positions"] = QueryPositions(users, steps)
    got = term(outputs)
    total = 0.0
    for n in range(5):
        row = next(
            r
            for r in range(teacher.num_queries)
            if (int(teacher.query_users[r]), int(teacher.query_steps[r])) == (int(users[n]), int(steps[n]))
        )
        scores = (queries[n] @ items.T).tolist()
        listed = teacher.top_items[row].tolist()
        student_top = sorted(range(num_items), key=lambda i: -scores[i])[:k]
        agree = [1.0 if item in student_top else 0.0 for item in listed]
        share = [a / max(sum(agree), 1.0) for a in agree]
        position = [math.exp(-r) / sum(math.exp(-q) for q in range(1, k + 1)) for r in range(1, k + 1)]
        distance = teacher.confidence[row].tolist()
        confidence = [math.exp(-d) / sum(math.exp(-e) for e in distance) for d in distance]
        mixed = [
            0.3 * p + 0.5 * c + consistency * o for p, c, o in zip(position, confidence, share, strict=True)
        ]
        weights = [m / sum(mixed) for m in mixed]
        negative = scores[int(negatives[n, 0])]
        for weight, item in zip(weights, listed, strict=True):
            total += weight * (math.log1p(math.exp(-scores[item])) + math.log1p(math.exp(negative)))
    assert got.item() == pytest.approx(total / 5, rel=1e-5)
    got.backward()
    assert queries.grad is not None
    assert queries.grad.abs().sum() > 0


def test_term_refuses_a_batch_without_negatives():
    lengths = [3]
    term = ImportanceRD(params(), context(position_teacher(lengths, k=3, num_items=4), lengths, 4))
    outputs = BatchOutputs(queries=torch.randn(1, 4), items=torch.randn(4, 4), negative_ids=torch.zeros(1, 0))
    outputs.views["positions"] = QueryPositions(torch.tensor([0]), torch.tensor([1]))
    with pytest.raises(ConfigError, match="num_negatives"):
        term(outputs)


def sequential_config(root: Path, data: Path, name: str, terms: dict, **extra: object) -> dict:
    return {
        "name": name,
        "output_dir": str(root / name),
        "data": {
            "name": str(data),
            "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
            "split": {"protocol": "leave_one_out"},
        },
        "model": {"name": "sasrec", "dim": 8, "max_length": 4, "num_layers": 1, "inner_dim": 8},
        "objective": {"terms": terms, **extra},
        "train": {
            "epochs": 2,
            "batch_size": 8,
            "num_threads": 1,
            "early_stopping_metric": "recall@5",
            "num_negatives": 1,
        },
        "evaluation": {"ks": [5]},
    }


def test_a_sequential_student_trains_on_an_exported_position_teacher(tmp_path, write_events):
    data = write_events(10, 15, 8, seed=4, gap=100)
    train(
        config_from_dict(sequential_config(tmp_path, data, "teacher", {"ce": {"weight": 1.0}})),
        show_progress=False,
    )
    signal = export_teacher(tmp_path / "teacher", k=5, device="cpu")
    signal.save(tmp_path / "signal")
    terms = {"ce": {"weight": 1.0}, "importance_rd": {"weight": 0.8, "k": 5}}
    config = config_from_dict(
        sequential_config(tmp_path, data, "student", terms, teacher=str(tmp_path / "signal"))
    )
    result = train(config, show_progress=False)
    assert math.isfinite(result.test.metrics["recall@5"])
    log = (tmp_path / "student" / "log.jsonl").read_text()
    assert "importance_rd" in log
    too_long = {"ce": {"weight": 1.0}, "importance_rd": {"weight": 0.8, "k": 6}}
    from recforge.errors import RecforgeError

    with pytest.raises(RecforgeError, match="K = 5"):
        train(
            config_from_dict(
                sequential_config(tmp_path, data, "s2", too_long, teacher=str(tmp_path / "signal"))
            ),
            show_progress=False,
        )
