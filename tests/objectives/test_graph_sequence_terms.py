"""GSAU's terms (graph_alignment, graph_uniformity, sequence_uniformity) and the derangement they
draw, against values worked out by hand and an independent loop."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from recforge.objectives.graph_sequence_terms import (
    GRAPH_PAIRS,
    GraphAlignment,
    GraphPairs,
    GraphUniformity,
    SequenceUniformity,
    other_rows,
)
from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.term import AlignmentParams, UniformityParams


def tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def graph_outputs(users, items, user_ids, item_ids) -> BatchOutputs:
    pairs = GraphPairs(
        users=tensor(users),
        items=tensor(items),
        user_ids=torch.tensor(user_ids),
        item_ids=torch.tensor(item_ids),
    )
    return BatchOutputs(views={GRAPH_PAIRS: pairs})


def sequence_outputs(queries, positive_ids, items) -> BatchOutputs:
    return BatchOutputs(queries=tensor(queries), positive_ids=torch.tensor(positive_ids), items=tensor(items))


def squared_distance_on_sphere(a: list[float], b: list[float]) -> float:
    norm_a, norm_b = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
    return sum((p / norm_a - q / norm_b) ** 2 for p, q in zip(a, b, strict=True))


def loop_uniformity(rows: list[list[float]], t: float) -> float:
    pairs = list(itertools.combinations(rows, 2))
    return math.log(sum(math.exp(-t * squared_distance_on_sphere(a, b)) for a, b in pairs) / len(pairs))


# --- other_rows ----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [2, 3, 10, 257])
def test_other_rows_is_a_derangement(count):
    torch.manual_seed(count)
    partner = other_rows(count)
    assert sorted(partner.tolist()) == list(range(count))  # a permutation: each row is used once
    assert (partner != torch.arange(count)).all()  # and never paired with itself


def test_other_rows_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        other_rows(1)


# --- graph_alignment -----------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_graph_alignment_by_hand(make_context, alpha):
    # pair 0: [1, 0] vs [0, 1] on the sphere (distance √2); pair 1: [2, 0] vs [-1, 0] (distance 2)
    outputs = graph_outputs([[1, 0], [2, 0]], [[0, 4], [-1, 0]], [0, 1], [5, 6])
    value = GraphAlignment(AlignmentParams(weight=1.0, alpha=alpha), make_context())(outputs)
    assert value.item() == pytest.approx((math.sqrt(2) ** alpha + 2**alpha) / 2, rel=1e-6)


def test_graph_alignment_reads_the_graph_pairs_not_the_sequence_rows(make_context):
    outputs = graph_outputs([[1, 0]], [[1, 0]], [0], [5])
    outputs.queries, outputs.positives = tensor([[1, 0]]), tensor([[-1, 0]])  # would give 4
    value = GraphAlignment(AlignmentParams(weight=1.0, alpha=2.0), make_context())(outputs)
    assert value.item() == pytest.approx(0.0, abs=1e-7)


def test_graph_terms_need_the_graph_pairs_view(make_context):
    with pytest.raises(KeyError, match="no 'graph_pairs' view"):
        GraphAlignment(AlignmentParams(weight=1.0), make_context())(BatchOutputs())


# --- graph_uniformity ----------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_graph_uniformity_sums_distinct_users_and_distinct_items(make_context, t):
    # users 0, 1 (user 0 twice, same row) orthogonal: -2t; items 5, 6 opposite: -4t; summed, not averaged
    outputs = graph_outputs([[1, 0], [0, 1], [1, 0]], [[1, 0], [-1, 0], [1, 0]], [0, 1, 0], [5, 6, 5])
    value = GraphUniformity(UniformityParams(weight=1.0, t=t), make_context())(outputs)
    assert value.item() == pytest.approx(-6 * t, rel=1e-6)


def test_graph_uniformity_against_a_loop_over_distinct_rows(make_context):
    generator = torch.Generator().manual_seed(0)
    users, items = torch.randn(6, 3, generator=generator), torch.randn(6, 3, generator=generator)
    user_ids, item_ids = [0, 1, 1, 2, 3, 3], [5, 5, 6, 7, 8, 9]
    users[2], items[1] = users[1], items[0]  # a repeated id has the same row, as in a real batch
    outputs = BatchOutputs(
        views={GRAPH_PAIRS: GraphPairs(users, items, torch.tensor(user_ids), torch.tensor(item_ids))}
    )
    value = GraphUniformity(UniformityParams(weight=1.0, t=1.5), make_context(dim=3))(outputs)
    distinct_users = [users[i].tolist() for i in (0, 1, 3, 4)]
    distinct_items = [items[i].tolist() for i in (0, 2, 3, 4, 5)]
    expected = loop_uniformity(distinct_users, 1.5) + loop_uniformity(distinct_items, 1.5)
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_graph_uniformity_of_one_distinct_row_is_zero_without_gradient(make_context):
    users = tensor([[1.0, 2.0], [1.0, 2.0]]).requires_grad_(True)
    pairs = GraphPairs(users, tensor([[3, 4], [3, 4]]), torch.tensor([0, 0]), torch.tensor([5, 5]))
    value = GraphUniformity(UniformityParams(weight=1.0), make_context())(
        BatchOutputs(views={GRAPH_PAIRS: pairs})
    )
    assert value.item() == 0.0
    value.backward()
    assert users.grad is not None
    assert torch.equal(users.grad, torch.zeros_like(users))


# --- sequence_uniformity -------------------------------------------------------------------------


@pytest.mark.parametrize("t", [1.0, 2.0])
def test_sequence_uniformity_by_hand(make_context, t):
    # two rows: the only derangement swaps them, so the value is deterministic.
    # states orthogonal: -2t; targets e0 = [1, 0], e1 = [-1, 0] opposite: -4t;
    # state 0 vs target 1: squared distance 4, state 1 vs target 0: squared distance 2
    outputs = sequence_outputs([[1, 0], [0, 1]], [0, 1], [[1, 0], [-1, 0], [0, 1]])
    value = SequenceUniformity(UniformityParams(weight=1.0, t=t), make_context())(outputs)
    paired = math.log((math.exp(-4 * t) + math.exp(-2 * t)) / 2)
    assert value.item() == pytest.approx(-2 * t - 4 * t + paired, rel=1e-6)


def test_sequence_uniformity_counts_a_repeated_target_once(make_context):
    # both rows target item 0: the targets' own uniformity has no pair (0); the paired part remains:
    # state 0 vs e0 at distance 0, state 1 vs e0 at squared distance 2
    t = 1.0
    outputs = sequence_outputs([[1, 0], [0, 1]], [0, 0], [[1, 0], [-1, 0], [0, 1]])
    value = SequenceUniformity(UniformityParams(weight=1.0, t=t), make_context())(outputs)
    assert value.item() == pytest.approx(-2 * t + math.log((1 + math.exp(-2 * t)) / 2), rel=1e-6)


def test_sequence_uniformity_against_a_loop(make_context):
    generator = torch.Generator().manual_seed(1)
    hidden, items = torch.randn(5, 4, generator=generator), torch.randn(4, 4, generator=generator)
    targets, t = [0, 2, 2, 3, 1], 2.0
    outputs = BatchOutputs(queries=hidden, positive_ids=torch.tensor(targets), items=items)
    torch.manual_seed(4)
    value = SequenceUniformity(UniformityParams(weight=1.0, t=t), make_context(dim=4, num_items=4))(outputs)
    torch.manual_seed(4)  # the derangement the term drew
    partner = other_rows(len(targets)).tolist()
    states, target_rows = hidden.tolist(), [items[i].tolist() for i in targets]
    paired = [math.exp(-t * squared_distance_on_sphere(states[b], target_rows[partner[b]])) for b in range(5)]
    expected = (
        loop_uniformity(states, t)
        + loop_uniformity([items[i].tolist() for i in (0, 1, 2, 3)], t)  # distinct targets
        + math.log(sum(paired) / len(paired))
    )
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_sequence_uniformity_step_spreads_states_and_items(make_context):
    # one gradient step on the term must lower it: states and items spread out on the sphere
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(5, 4, generator=generator).requires_grad_(True)
    items = torch.randn(4, 4, generator=generator).requires_grad_(True)
    term = SequenceUniformity(UniformityParams(weight=1.0), make_context(dim=4, num_items=4))
    optimizer = torch.optim.SGD([hidden, items], lr=0.05)
    values = []
    for _ in range(2):
        torch.manual_seed(0)  # the same derangement at both steps
        value = term(BatchOutputs(queries=hidden, positive_ids=torch.tensor([0, 2, 2, 3, 1]), items=items))
        values.append(value.item())
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    assert values[1] < values[0]


def test_sequence_uniformity_of_one_row_is_zero_without_gradient(make_context):
    hidden = tensor([[1.0, 2.0]]).requires_grad_(True)
    outputs = BatchOutputs(
        queries=hidden, positive_ids=torch.tensor([0]), items=tensor([[1, 0], [0, 1], [1, 1]])
    )
    value = SequenceUniformity(UniformityParams(weight=1.0), make_context())(outputs)
    assert value.item() == 0.0
    value.backward()
    assert hidden.grad is not None
    assert torch.equal(hidden.grad, torch.zeros_like(hidden))
