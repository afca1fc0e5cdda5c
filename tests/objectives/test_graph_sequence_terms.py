"""GSAU's terms: each is the documented combination of DirectAU's alignment and uniformity."""

from __future__ import annotations

import pytest
import torch

from recforge.objectives.contrastive import alignment, paired_uniformity, uniformity
from recforge.objectives.graph_sequence_terms import (
    GRAPH_SEQUENCE_TERMS,
    GraphSequenceOutputs,
    GraphSequenceTermParameters,
    other_rows,
)
from recforge.objectives.sequential import next_item_cross_entropy

PARAMS = GraphSequenceTermParameters(alignment_alpha=2.0, uniformity_t=2.0)


def outputs(seed: int = 0) -> GraphSequenceOutputs:
    generator = torch.Generator().manual_seed(seed)
    return GraphSequenceOutputs(
        graph_users=torch.randn(6, 4, generator=generator),
        graph_items=torch.randn(6, 4, generator=generator),
        user_ids=torch.tensor([0, 1, 1, 2, 3, 3]),
        item_ids=torch.tensor([5, 5, 6, 7, 8, 9]),
        hidden=torch.randn(5, 4, generator=generator),
        targets=torch.tensor([0, 2, 2, 3, 1]),
        items=torch.randn(4, 4, generator=generator),
    )


@pytest.mark.parametrize("count", [2, 3, 10, 257])
def test_other_rows_is_a_derangement(count):
    torch.manual_seed(count)
    partner = other_rows(count)
    assert sorted(partner.tolist()) == list(range(count))  # a permutation: each row is used once
    assert (partner != torch.arange(count)).all()  # and never paired with itself


def test_other_rows_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows"):
        other_rows(1)


def test_graph_terms_are_directau_on_distinct_rows():
    o = outputs()
    assert GRAPH_SEQUENCE_TERMS["graph_alignment"](o, PARAMS).item() == pytest.approx(
        alignment(o.graph_users, o.graph_items).item()
    )
    distinct_users = o.graph_users[[0, 1, 3, 4]]  # users 0, 1, 2, 3 at their first rows
    distinct_items = o.graph_items[[0, 2, 3, 4, 5]]  # items 5, 6, 7, 8, 9
    expected = uniformity(distinct_users) + uniformity(distinct_items)
    assert GRAPH_SEQUENCE_TERMS["graph_uniformity"](o, PARAMS).item() == pytest.approx(
        expected.item(), rel=1e-6
    )


def test_sequence_terms():
    o = outputs()
    assert GRAPH_SEQUENCE_TERMS["sequence_ce"](o, PARAMS).item() == pytest.approx(
        next_item_cross_entropy(o.hidden, o.targets, o.items).item()
    )
    assert GRAPH_SEQUENCE_TERMS["sequence_alignment"](o, PARAMS).item() == pytest.approx(
        alignment(o.hidden, o.items[o.targets]).item()
    )
    torch.manual_seed(4)
    value = GRAPH_SEQUENCE_TERMS["sequence_uniformity"](o, PARAMS)
    torch.manual_seed(4)  # the same derangement as inside the term
    targets = o.items[o.targets]
    expected = (
        uniformity(o.hidden)
        + uniformity(o.items[[0, 1, 2, 3]])  # distinct targets 0, 1, 2, 3
        + paired_uniformity(o.hidden, targets[other_rows(len(targets))])
    )
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_uniformity_pushes_a_state_away_from_other_positions_targets():
    # one gradient step on the sequence uniformity must lower it: states and items spread out
    o = outputs(1)
    hidden = o.hidden.clone().requires_grad_(True)
    items = o.items.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([hidden, items], lr=0.05)
    values = []
    for _ in range(2):
        torch.manual_seed(0)
        term = GRAPH_SEQUENCE_TERMS["sequence_uniformity"](
            GraphSequenceOutputs(
                o.graph_users, o.graph_items, o.user_ids, o.item_ids, hidden, o.targets, items
            ),
            PARAMS,
        )
        values.append(term.item())
        optimizer.zero_grad()
        term.backward()
        optimizer.step()
    assert values[1] < values[0]


def test_a_batch_with_one_distinct_row_adds_no_gradient():
    o = outputs()
    single = GraphSequenceOutputs(
        graph_users=o.graph_users[:1].requires_grad_(True),
        graph_items=o.graph_items[:1],
        user_ids=o.user_ids[:1],
        item_ids=o.item_ids[:1],
        hidden=o.hidden[:1],
        targets=o.targets[:1],
        items=o.items,
    )
    value = GRAPH_SEQUENCE_TERMS["graph_uniformity"](single, PARAMS)
    assert value.item() == 0.0
    value.backward()
    assert single.graph_users.grad is not None
    assert (single.graph_users.grad == 0).all()
    assert GRAPH_SEQUENCE_TERMS["sequence_uniformity"](single, PARAMS).item() == 0.0
