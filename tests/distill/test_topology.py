"""Topology distillation: FTD by a slow loop, its invariances, and HTD's groups."""

from __future__ import annotations

import math

import pytest
import torch

from recforge.distill.teacher import TeacherSignal
from recforge.distill.topology import FTD, HTD, HTDParams
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.term import TermParams


def teacher(users: torch.Tensor, items: torch.Tensor) -> TeacherSignal:
    return TeacherSignal(
        queries="users",
        top_items=torch.zeros(len(users), 1, dtype=torch.long),
        top_scores=torch.zeros(len(users), 1),
        user_ids=[str(u) for u in range(len(users))],
        item_ids=[str(i) for i in range(len(items))],
        split_hash="0" * 16,
        producer={},
        query_embeddings=users,
        item_embeddings=items,
    )


def batch(user_rows: torch.Tensor, item_rows: torch.Tensor) -> BatchOutputs:
    # users 0, 1, 0 (a repeat) with positives 2, 0, 2 and one negative each: 1, 1, 3
    query_ids, positive_ids, negative_ids = (
        torch.tensor([0, 1, 0]),
        torch.tensor([2, 0, 2]),
        torch.tensor([[1], [1], [3]]),
    )
    return BatchOutputs(
        query_ids=query_ids,
        queries=user_rows[query_ids],
        positive_ids=positive_ids,
        positives=item_rows[positive_ids],
        negative_ids=negative_ids,
        negatives=item_rows[negative_ids],
    )


def context(signal: TeacherSignal, dim: int) -> TermContext:
    return TermContext(2, 4, dim, torch.ones(4), torch.device("cpu"), teacher=signal)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_ftd_matches_a_slow_pairwise_loop():
    generator = torch.Generator().manual_seed(0)
    t_users, t_items = torch.randn(2, 5, generator=generator), torch.randn(4, 5, generator=generator)
    s_users, s_items = torch.randn(2, 3, generator=generator), torch.randn(4, 3, generator=generator)
    term = FTD(TermParams(weight=1.0), context(teacher(t_users, t_items), dim=3))
    # entities: users 0, 1 and items in first-occurrence order of [2, 0, 2, 1, 1, 3] -> sorted ids 0, 1, 2, 3
    teacher_rows = [t_users[0], t_users[1], *t_items]
    student_rows = [s_users[0], s_users[1], *s_items]
    expected = sum(
        (cosine(ta.tolist(), tb.tolist()) - cosine(sa.tolist(), sb.tolist())) ** 2
        for ta, sa in zip(teacher_rows, student_rows, strict=True)
        for tb, sb in zip(teacher_rows, student_rows, strict=True)
    )
    assert term(batch(s_users, s_items)).item() == pytest.approx(expected / 3, rel=1e-5)


def test_ftd_is_zero_for_a_rotated_and_scaled_teacher():
    generator = torch.Generator().manual_seed(1)
    t_users, t_items = torch.randn(2, 4, generator=generator), torch.randn(4, 4, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=generator))
    term = FTD(TermParams(weight=1.0), context(teacher(t_users, t_items), dim=4))
    assert term(batch(3 * t_users @ rotation, 3 * t_items @ rotation)).item() == pytest.approx(0.0, abs=1e-9)


def test_htd_with_one_group_is_ftd_plus_prototype_terms():
    generator = torch.Generator().manual_seed(2)
    t_users, t_items = torch.randn(2, 4, generator=generator), torch.randn(4, 4, generator=generator)
    s_users, s_items = torch.randn(2, 4, generator=generator), torch.randn(4, 4, generator=generator)
    signal = teacher(t_users, t_items)
    htd = HTD(HTDParams(weight=1.0, groups=1), context(signal, dim=4))
    ftd = FTD(TermParams(weight=1.0), context(signal, dim=4))
    outputs = batch(s_users, s_items)
    # one group per side: users together, items together; entity level = FTD within each side
    value = htd(outputs).item()
    assert math.isfinite(value)
    assert value >= 0
    assert value != pytest.approx(ftd(outputs).item())  # cross-side pairs are left to the group level
    assert {name.split(".")[0] for name, _ in htd.named_parameters()} == {"user_groups", "item_groups"}


def test_htd_matches_a_slow_formula_over_its_groups():
    generator = torch.Generator().manual_seed(3)
    t_users, t_items = torch.randn(2, 5, generator=generator), torch.randn(4, 5, generator=generator)
    s_users, s_items = torch.randn(2, 3, generator=generator), torch.randn(4, 3, generator=generator)
    torch.manual_seed(0)
    htd = HTD(HTDParams(weight=1.0, groups=2), context(teacher(t_users, t_items), dim=3))
    torch.manual_seed(1)
    value = htd(batch(s_users, s_items)).item()
    torch.manual_seed(1)  # the assignment networks' Gumbel draws, replayed in the forward's order
    assignment = htd.user_groups(s_users, t_users, 0.1).sum() + htd.item_groups(s_items, t_items, 0.1).sum()
    with torch.no_grad():
        groups = [*htd.user_groups.selection(t_users).argmax(1).tolist()]
        groups += [g + 2 for g in htd.item_groups.selection(t_items).argmax(1).tolist()]
    teacher_rows = [row.tolist() for row in (*t_users, *t_items)]
    student_rows = [row.tolist() for row in (*s_users, *s_items)]
    entities = range(len(groups))
    entity_level = sum(
        (cosine(teacher_rows[a], teacher_rows[b]) - cosine(student_rows[a], student_rows[b])) ** 2
        for a in entities
        for b in entities
        if groups[a] == groups[b]
    )

    def prototype(rows: list[list[float]], group: int) -> list[float]:
        members = [rows[a] for a in entities if groups[a] == group]
        return [sum(column) / len(members) for column in zip(*members, strict=True)]

    group_level = sum(
        (
            cosine(prototype(teacher_rows, group), teacher_rows[a])
            - cosine(prototype(student_rows, group), student_rows[a])
        )
        ** 2
        for group in set(groups)
        for a in entities
    )
    assert len(set(groups)) > 2  # some side has two groups: the within-group restriction is exercised
    expected = (entity_level + group_level + assignment.item()) / 3
    assert value == pytest.approx(expected, rel=1e-5)
