"""RRD: the relaxed ranking loss by hand, the samplers' guarantees, the term, and a distilled run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.config import config_from_dict
from recforge.distill.ranking import (
    IRRRD,
    RRD,
    IRRRDParams,
    RRDParams,
    relaxed_ranking_loss,
    sample_interesting,
    sample_uninteresting,
    teacher_item_rankings,
)
from recforge.distill.teacher import TeacherError, TeacherSignal, export_teacher
from recforge.errors import ConfigError
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.train.trainer import train


def slow_relaxed_loss(interesting: list[float], uninteresting: list[float]) -> float:
    total = 0.0
    for k, score in enumerate(interesting):
        below = sum(math.exp(s) for s in interesting[k:]) + sum(math.exp(s) for s in uninteresting)
        total -= score - math.log(below)
    return total


def test_relaxed_ranking_loss_by_hand():
    # one interesting item above one uninteresting: -(s1 - log(e^s1 + e^s2)) = log(1 + e^(s2 - s1))
    value = relaxed_ranking_loss(torch.tensor([[2.0]]), torch.tensor([[0.5]]))
    assert value.item() == pytest.approx(math.log1p(math.exp(0.5 - 2.0)))
    generator = torch.Generator().manual_seed(1)
    interesting, uninteresting = (
        torch.randn(3, 4, generator=generator),
        torch.randn(3, 5, generator=generator),
    )
    got = relaxed_ranking_loss(interesting, uninteresting)
    for row in range(3):
        assert got[row].item() == pytest.approx(
            slow_relaxed_loss(interesting[row].tolist(), uninteresting[row].tolist())
        )


def test_relaxed_loss_rewards_the_teachers_order_and_ignores_the_uninteresting_order():
    uninteresting = torch.tensor([[0.0, -1.0]])
    in_order = relaxed_ranking_loss(torch.tensor([[3.0, 2.0, 1.0]]), uninteresting)
    reversed_order = relaxed_ranking_loss(torch.tensor([[1.0, 2.0, 3.0]]), uninteresting)
    assert in_order < reversed_order
    assert relaxed_ranking_loss(torch.tensor([[3.0, 2.0]]), torch.tensor([[0.0, -1.0]])) == pytest.approx(
        relaxed_ranking_loss(torch.tensor([[3.0, 2.0]]), torch.tensor([[-1.0, 0.0]])).item()
    )


def test_interesting_items_come_from_the_list_in_teacher_order():
    top = torch.arange(50).reshape(2, 25) + 100  # two users, teacher lists 100..124 and 125..149
    drawn = sample_interesting(top, 6, temperature=10.0, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (2, 6)
    for row in range(2):
        assert set(drawn[row].tolist()) <= set(top[row].tolist())
        assert drawn[row].tolist() == sorted(drawn[row].tolist())  # rank order = id order here
        assert len(set(drawn[row].tolist())) == 6
    # a tiny temperature leaves no choice but the top of the list
    sharp = sample_interesting(top, 3, temperature=0.05, generator=torch.Generator().manual_seed(0))
    assert sharp.tolist() == [[100, 101, 102], [125, 126, 127]]


def test_interesting_draws_follow_the_rank_weights():
    top = torch.arange(4).expand(20000, 4)
    drawn = sample_interesting(top, 1, temperature=1.0, generator=torch.Generator().manual_seed(0))
    frequencies = torch.bincount(drawn.flatten(), minlength=4).double() / 20000
    weights = torch.exp(-torch.arange(1.0, 5.0, dtype=torch.float64))
    assert torch.allclose(frequencies, weights / weights.sum(), atol=0.01)


def test_uninteresting_items_avoid_training_and_teacher_items():
    rng = np.random.default_rng(0)
    excluded = sp.csr_matrix((rng.random((30, 40)) < 0.5).astype(np.float32))
    drawn = sample_uninteresting(excluded, 40, 8, torch.Generator().manual_seed(0))
    assert drawn.shape == (30, 8)
    for row in range(30):
        chosen = drawn[row].tolist()
        assert len(set(chosen)) == 8
        assert not set(chosen) & set(excluded[row].indices.tolist())
    full = sp.csr_matrix(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(ConfigError, match="row 0 has only 0 items outside"):
        sample_uninteresting(full, 5, 1, torch.Generator())


def tiny_teacher(top_items: torch.Tensor, num_items: int) -> TeacherSignal:
    return TeacherSignal(
        queries="users",
        top_items=top_items,
        top_scores=torch.zeros(top_items.shape, dtype=torch.float32),
        user_ids=[str(u) for u in range(len(top_items))],
        item_ids=[str(i) for i in range(num_items)],
        split_hash="0" * 16,
        producer={},
    )


def test_rrd_term_is_the_loss_of_the_drawn_items_over_the_batch_size():
    num_users, num_items, dim = 3, 12, 4
    teacher = tiny_teacher(torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]), num_items)
    train_matrix = sp.csr_matrix(([1.0], ([0], [11])), shape=(num_users, num_items), dtype=np.float32)
    context = TermContext(
        num_users, num_items, dim, torch.ones(num_items), torch.device("cpu"), train_matrix, 5, teacher
    )
    term = RRD(RRDParams(weight=1.0, k=2, l=3, top=4), context)
    term.on_epoch(0)
    assert not set(term.uninteresting[0].tolist()) & {0, 1, 2, 3, 11}
    queries, items = torch.randn(4, dim), torch.randn(num_items, dim)
    outputs = BatchOutputs(query_ids=torch.tensor([2, 0, 2, 1]), queries=queries, items=items)
    expected = 0.0
    for row, user in ((1, 0), (3, 1), (0, 2)):  # the first row of each distinct user
        interesting = (items[term.interesting[user]] @ queries[row]).tolist()
        uninteresting = (items[term.uninteresting[user]] @ queries[row]).tolist()
        expected += slow_relaxed_loss(interesting, uninteresting)
    assert term(outputs).item() == pytest.approx(expected / 4, rel=1e-5)
    first = term.interesting.clone()
    term.on_epoch(0)
    assert torch.equal(term.interesting, first)  # a function of (seed, epoch): resumes draw the same
    term.on_epoch(1)
    assert not torch.equal(term.uninteresting, term.interesting[:, :0])
    assert term.uninteresting.shape == (3, 3)


# -- a distilled run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(4)
    rows = ["user,item,timestamp"]
    for user in range(30):
        for step, item in enumerate(rng.choice(40, size=10, replace=False)):
            rows.append(f"u{user},i{item},{100 * user + step}")
    root = tmp_path_factory.mktemp("rrd")
    data = root / "events.csv"
    data.write_text("\n".join(rows) + "\n")
    teacher = config(
        data, root / "teacher", {"name": "lightgcn", "dim": 32, "num_layers": 2}, {"bpr": {"weight": 1.0}}
    )
    train(teacher, show_progress=False)
    export_teacher(root / "teacher", k=20, device="cpu").save(root / "signal")
    return data, root / "signal", root


def config(
    data: Path,
    run_dir: Path,
    model: dict,
    terms: dict,
    teacher: Path | None = None,
    epochs: int = 3,
    overrides: tuple[str, ...] = (),
):
    return config_from_dict(
        {
            "name": "rrd",
            "seed": 2,
            "output_dir": str(run_dir),
            "data": {
                "name": str(data),
                "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
                "split": {"protocol": "random", "ratios": [0.7, 0.15, 0.15]},
            },
            "model": model,
            "objective": {"terms": terms, "teacher": None if teacher is None else str(teacher)},
            "train": {
                "epochs": epochs,
                "batch_size": 32,
                "num_threads": 1,
                "early_stopping_metric": "recall@5",
            },
            "evaluation": {"ks": [5]},
        },
        overrides,
    )


STUDENT = {"name": "mf", "dim": 4}
RRD_TERMS = {"bpr": {"weight": 1.0}, "rrd": {"weight": 0.1, "k": 5, "l": 5, "top": 20}}


def test_a_student_distils_from_a_teacher_and_resumes_exactly(teacher_run, tmp_path):
    data, signal, _ = teacher_run
    full = train(config(data, tmp_path / "full", STUDENT, RRD_TERMS, signal, epochs=3), show_progress=False)
    assert all("rrd" in entry for entry in full.history)
    assert full.history[-1]["rrd"] < full.history[0]["rrd"]  # the student learns the teacher's order
    train(config(data, tmp_path / "cut", STUDENT, RRD_TERMS, signal, epochs=2), show_progress=False)
    resumed = train(
        config(data, tmp_path / "cut", STUDENT, RRD_TERMS, signal, epochs=3), resume=True, show_progress=False
    )
    assert [entry["loss"] for entry in resumed.history] == [entry["loss"] for entry in full.history]


def test_teacher_misuse_is_refused(teacher_run, tmp_path):
    data, signal, _root = teacher_run
    with pytest.raises(
        ConfigError, match=r"objective.terms.rrd: term 'rrd' reads a teacher; set objective.teacher"
    ):
        config(data, tmp_path / "a", STUDENT, RRD_TERMS)
    too_long = {"bpr": {"weight": 1.0}, "rrd": {"weight": 0.1, "top": 500}}
    with pytest.raises(TeacherError, match="ranks K = 20 items per query, a term needs 500"):
        train(config(data, tmp_path / "b", STUDENT, too_long, signal), show_progress=False)
    other_split = config(data, tmp_path / "c", STUDENT, RRD_TERMS, signal, overrides=("data.split.seed=9",))
    with pytest.raises(TeacherError, match="the teacher was made on split"):
        train(other_split, show_progress=False)


def test_de_and_rrd_train_together_and_their_experts_are_checkpointed(teacher_run, tmp_path):
    from safetensors.torch import load_file

    data, signal, _ = teacher_run
    terms = {
        **RRD_TERMS,
        "de": {"weight": 0.01, "experts": 3, "anneal_epochs": 3},
        "ir_rrd": {"weight": 0.01, "k": 3, "l": 3, "top": 10},
        "htd": {"weight": 0.01, "groups": 2},
    }
    full = train(config(data, tmp_path / "full", STUDENT, terms, signal, epochs=3), show_progress=False)
    assert all(math.isfinite(entry["de"]) for entry in full.history)
    saved = load_file(str(tmp_path / "full" / "model.safetensors"))
    assert any(key.startswith("objective.terms.de.user_experts.") for key in saved)
    train(config(data, tmp_path / "cut", STUDENT, terms, signal, epochs=2), show_progress=False)
    resumed = train(
        config(data, tmp_path / "cut", STUDENT, terms, signal, epochs=3), resume=True, show_progress=False
    )
    assert [entry["loss"] for entry in resumed.history] == [entry["loss"] for entry in full.history]


def test_teacher_item_rankings_skip_training_users():
    items, users = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[3.0, 0.0], [2.0, 1.0], [0.0, 5.0]])
    exclude = sp.csr_matrix(
        ([1.0], ([0], [0])), shape=(2, 3), dtype=np.float32
    )  # item 0 was trained on user 0
    assert teacher_item_rankings(items, users, exclude, 2).tolist() == [[1, 2], [2, 1]]


def test_ir_rrd_ranks_each_batch_item_over_its_drawn_users():
    num_users, num_items, dim = 6, 3, 2
    generator = torch.Generator().manual_seed(2)
    teacher = TeacherSignal(
        queries="users",
        top_items=torch.zeros(num_users, 1, dtype=torch.long),
        top_scores=torch.zeros(num_users, 1),
        user_ids=[str(u) for u in range(num_users)],
        item_ids=[str(i) for i in range(num_items)],
        split_hash="0" * 16,
        producer={},
        query_embeddings=torch.randn(num_users, 4, generator=generator),
        item_embeddings=torch.randn(num_items, 4, generator=generator),
    )
    train_matrix = sp.csr_matrix(
        ([1.0, 1.0], ([0, 1], [0, 2])), shape=(num_users, num_items), dtype=np.float32
    )
    context = TermContext(
        num_users, num_items, dim, torch.ones(num_items), torch.device("cpu"), train_matrix, 1, teacher
    )
    term = IRRRD(IRRRDParams(weight=1.0, k=2, l=2, top=3), context)
    assert 0 not in term.top_users[0].tolist()
    assert 1 not in term.top_users[2].tolist()
    term.on_epoch(0)
    users, items = torch.randn(num_users, dim), torch.randn(num_items, dim)
    outputs = BatchOutputs(
        query_ids=torch.tensor([3, 4]),
        positive_ids=torch.tensor([2, 2]),
        negative_ids=torch.tensor([[0], [2]]),
        items=items,
        users=users,
    )
    expected = 0.0
    for item in (0, 2):
        assert not set(term.uninteresting[item].tolist()) & set(term.top_users[item].tolist())
        interesting = (users[term.interesting[item]] @ items[item]).tolist()
        uninteresting = (users[term.uninteresting[item]] @ items[item]).tolist()
        expected += slow_relaxed_loss(interesting, uninteresting)
    assert term(outputs).item() == pytest.approx(expected / 2, rel=1e-5)
