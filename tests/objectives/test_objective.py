"""The objective module (weighted sum of configured terms), ``needs_of`` and the TERMS registry."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest
import torch

from recforge.objectives.graph_sequence_terms import GRAPH_PAIRS, GraphPairs
from recforge.objectives.objective import Objective, needs_of
from recforge.objectives.outputs import FIELDS, POSITIONS, BatchOutputs, QueryPositions
from recforge.objectives.rationale_terms import (
    COMPLEMENT_VIEWS,
    MASKED_EDGES,
    NODE_EGO,
    RATIONALE_VIEWS,
    MaskedEdges,
    NodeRows,
    RationaleViews,
)
from recforge.objectives.registry import TERMS
from recforge.objectives.self_supervised import CCA_VIEWS, MASKED_FEATURES, CCAViews, MaskedFeatures
from recforge.objectives.sequence_terms import DROSParams
from recforge.objectives.sequential import dros_item_weights
from recforge.objectives.term import AlignmentParams, TermParams, UniformityParams

VIEWS = {GRAPH_PAIRS, MASKED_EDGES, RATIONALE_VIEWS, COMPLEMENT_VIEWS, NODE_EGO, POSITIONS}
VIEWS |= {CCA_VIEWS, MASKED_FEATURES}


def tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def aligned_outputs(queries: torch.Tensor | None = None) -> BatchOutputs:
    """alignment (α = 2) is 1: each query is orthogonal to its positive; uniformity (t = 2) is -4:
    the two users are orthogonal (squared distance 2) and both positives are item 5 (no pair)."""
    return BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]) if queries is None else queries,
        query_ids=torch.tensor([0, 1]),
        positives=tensor([[0, 1], [0, 1]]),
        positive_ids=torch.tensor([5, 5]),
    )


# --- the weighted sum ----------------------------------------------------------------------------


def test_total_is_the_weighted_sum_and_parts_are_unweighted_and_detached(make_context):
    terms = {"alignment": AlignmentParams(weight=0.5), "uniformity": UniformityParams(weight=2.0)}
    objective = Objective(terms, make_context())
    queries = tensor([[1, 0], [0, 1]]).requires_grad_(True)
    total, parts = objective(aligned_outputs(queries))
    assert total.item() == pytest.approx(0.5 * 1.0 + 2.0 * -4.0, rel=1e-6)
    assert {name: part.item() for name, part in parts.items()} == {
        "alignment": pytest.approx(1.0, rel=1e-6),
        "uniformity": pytest.approx(-4.0, rel=1e-6),
    }
    assert total.requires_grad
    assert not any(part.requires_grad for part in parts.values())


def test_parts_follow_the_config_order(make_context):
    params = {"alignment": AlignmentParams(weight=1.0), "uniformity": UniformityParams(weight=1.0)}
    for order in (["alignment", "uniformity"], ["uniformity", "alignment"]):
        objective = Objective({name: params[name] for name in order}, make_context())
        assert list(objective.terms) == order
        assert list(objective(aligned_outputs())[1]) == order


def test_a_zero_weight_keeps_the_part_but_adds_nothing(make_context):
    terms = {"alignment": AlignmentParams(weight=1.0), "uniformity": UniformityParams(weight=0.0)}
    total, parts = Objective(terms, make_context())(aligned_outputs())
    assert total.item() == pytest.approx(1.0, rel=1e-6)
    assert parts["uniformity"].item() == pytest.approx(-4.0, rel=1e-6)


def test_term_parameters_reach_the_gradient_through_the_weight(make_context):
    # d(w · alignment)/d(queries) is w times d(alignment)/d(queries)
    grads = []
    for weight in (1.0, 3.0):
        queries = tensor([[1, 0], [1, 1]]).requires_grad_(True)
        total, _ = Objective({"alignment": AlignmentParams(weight=weight)}, make_context())(
            aligned_outputs(queries)
        )
        total.backward()
        grads.append(queries.grad)
    torch.testing.assert_close(grads[1], 3.0 * grads[0])


def test_an_objective_needs_a_term(make_context):
    with pytest.raises(ValueError, match="at least one term"):
        Objective({}, make_context())


# --- terms with state ----------------------------------------------------------------------------


def test_distill_heads_are_parameters_of_the_objective(make_context):
    objective = Objective(
        {"bpr": TermParams(weight=1.0), "distill": TermParams(weight=0.1)}, make_context(dim=3)
    )
    heads = list(objective.terms["distill"].parameters())
    assert len(heads) == 6  # weight and bias of three Linear(3, 3)
    assert {id(p) for p in objective.parameters()} == {id(p) for p in heads}
    assert set(objective.state_dict()) == {
        f"terms.distill.students.{view}.{kind}"
        for view in ("final", "rationale", "complement")
        for kind in ("weight", "bias")
    }


def test_distill_heads_round_trip_through_the_state_dict(make_context):
    terms = {"distill": TermParams(weight=1.0)}
    torch.manual_seed(0)
    saved = Objective(terms, make_context(dim=3))
    torch.manual_seed(1)
    restored = Objective(terms, make_context(dim=3))
    first = saved.terms["distill"].students["final"].weight
    assert not torch.equal(first, restored.terms["distill"].students["final"].weight)
    restored.load_state_dict(saved.state_dict())
    for key, value in saved.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value, rtol=0, atol=0)
    generator = torch.Generator().manual_seed(2)
    final, rationale, complement, ego = (torch.randn(4, 3, generator=generator) for _ in range(4))
    outputs = BatchOutputs(
        views={
            RATIONALE_VIEWS: RationaleViews(final=final, rationale=rationale),
            COMPLEMENT_VIEWS: NodeRows(rows=complement),
            NODE_EGO: NodeRows(rows=ego),
        }
    )
    assert restored(outputs)[0].item() == saved(outputs)[0].item()


def test_dros_item_weights_are_a_non_persistent_buffer_from_the_positive_counts(make_context):
    counts = [3.0, 0.0, 1.0, 7.0]
    objective = Objective(
        {"dros": DROSParams(weight=1.0, exponent=0.5)}, make_context(num_items=4, positive_counts=counts)
    )
    buffers = dict(objective.named_buffers())
    expected = dros_item_weights(torch.tensor(counts), exponent=0.5)
    torch.testing.assert_close(buffers["terms.dros.item_weights"], expected)
    # the weights are (c + 1) / Σ(c + 1) = (4, 1, 2, 8) / 15, to the power 0.5
    assert buffers["terms.dros.item_weights"].tolist() == pytest.approx(
        [math.sqrt(c / 15) for c in (4, 1, 2, 8)], rel=1e-6
    )
    assert "terms.dros.item_weights" not in objective.state_dict()
    assert objective.state_dict() == {}
    objective.load_state_dict({})  # strict: nothing missing, nothing unexpected


# --- needs ---------------------------------------------------------------------------------------


def test_needs_of_is_the_union_of_the_terms_needs():
    terms = {
        "bpr": TermParams(weight=1.0),
        "uniformity": UniformityParams(weight=1.0),
        "l2": TermParams(weight=1.0),
    }
    assert needs_of(terms) == {"queries", "positives", "negatives", "query_ids", "positive_ids", "ego"}


def test_needs_of_rationale_terms_names_their_views():
    terms = {"cir": TermParams(weight=1.0), "distill": TermParams(weight=1.0)}
    assert needs_of(terms) == {RATIONALE_VIEWS, COMPLEMENT_VIEWS, NODE_EGO}


def test_objective_needs_equal_needs_of_its_config(make_context):
    terms = {"ce": TermParams(weight=1.0), "alignment": AlignmentParams(weight=1.0)}
    objective = Objective(terms, make_context())
    assert objective.needs == needs_of(terms) == {"queries", "positive_ids", "items", "positives"}


def test_needs_of_an_unknown_term_is_an_error():
    with pytest.raises(KeyError, match="no_such_term"):
        needs_of({"no_such_term": TermParams(weight=1.0)})


# --- the registry --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TERMS))
def test_every_term_declares_needs_and_a_summary(name):
    term = TERMS[name]
    assert term.needs
    assert term.needs <= set(FIELDS) | VIEWS, term.needs - set(FIELDS) - VIEWS
    assert isinstance(term.summary, str)
    assert term.summary.strip()


@pytest.mark.parametrize("name", sorted(TERMS))
def test_every_terms_params_requires_a_weight(name):
    with pytest.raises(pydantic.ValidationError, match="weight"):
        TERMS[name].Params()
    assert TERMS[name].Params(weight=0.5).weight == 0.5


@pytest.mark.parametrize("name", sorted(TERMS))
def test_every_terms_params_forbids_unknown_keys(name):
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        TERMS[name].Params(weight=1.0, wieght=1.0)


@pytest.mark.parametrize("weight", [-1.0, math.inf, math.nan])
def test_a_weight_must_be_finite_and_non_negative(weight):
    with pytest.raises(pydantic.ValidationError, match="weight"):
        TermParams(weight=weight)


@pytest.mark.parametrize(
    ("name", "key"),
    [("softmax", "temperature"), ("alignment", "alpha"), ("uniformity", "t"), ("dros", "beta")],
)
def test_term_parameters_must_be_positive(name, key):
    with pytest.raises(pydantic.ValidationError, match=key):
        TERMS[name].Params(weight=1.0, **{key: 0.0})


# --- every term runs on exactly what it needs ----------------------------------------------------


def full_outputs(dim: int) -> BatchOutputs:
    """Every field and view, for 3 rows with 2 negatives each, 5 items and 4 self-supervised nodes."""
    generator = torch.Generator().manual_seed(0)

    def rows(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dim, generator=generator)

    items = rows(5)
    positive_ids, negative_ids = torch.tensor([0, 2, 2]), torch.tensor([[1, 3], [4, 0], [1, 4]])
    return BatchOutputs(
        query_ids=torch.tensor([0, 1, 1]),
        queries=rows(3),
        positive_ids=positive_ids,
        positives=items[positive_ids],
        negative_ids=negative_ids,
        negatives=items[negative_ids],
        items=items,
        users=rows(4),
        query_ego=rows(3),
        positive_ego=rows(3),
        negative_ego=rows(3, 2),
        views={
            GRAPH_PAIRS: GraphPairs(rows(4), rows(4), torch.tensor([0, 1, 1, 2]), torch.tensor([3, 3, 4, 0])),
            MASKED_EDGES: MaskedEdges(users=rows(4), items=rows(4), item_ids=torch.tensor([1, 2, 1, 0])),
            RATIONALE_VIEWS: RationaleViews(final=rows(4), rationale=rows(4)),
            COMPLEMENT_VIEWS: NodeRows(rows=rows(4)),
            NODE_EGO: NodeRows(rows=rows(4)),
            POSITIONS: QueryPositions(users=torch.tensor([0, 1, 2]), steps=torch.tensor([1, 1, 2])),
            CCA_VIEWS: CCAViews(first=rows(4), second=rows(4)),
            MASKED_FEATURES: MaskedFeatures(features=rows(2), reconstructed=rows(2)),
        },
    )


def only(outputs: BatchOutputs, needs: frozenset[str]) -> BatchOutputs:
    kept = BatchOutputs()
    for need in needs:
        if need == "ego":
            kept.query_ego, kept.positive_ego, kept.negative_ego = (
                outputs.query_ego,
                outputs.positive_ego,
                outputs.negative_ego,
            )
        elif need in FIELDS:
            setattr(kept, need, getattr(outputs, need))
        else:
            kept.views[need] = outputs.views[need]
    return kept


@pytest.mark.parametrize("name", sorted(TERMS))
def test_every_term_computes_a_finite_scalar_from_its_needs_alone(name, make_context):
    torch.manual_seed(0)
    context, settings = make_context(dim=4, num_items=5), {}
    if TERMS[name].teacher_needs:  # a teacher for the 4 users, lists of 2 of the 5 items
        import dataclasses

        import scipy.sparse as sp

        from recforge.distill.teacher import TeacherSignal

        teacher = TeacherSignal(
            queries="users",
            top_items=torch.tensor([[0, 1], [2, 3], [4, 0], [1, 2]]),
            top_scores=torch.zeros(4, 2),
            user_ids=[f"u{u}" for u in range(4)],
            item_ids=[f"i{i}" for i in range(5)],
            split_hash="0" * 16,
            producer={},
            item_embeddings=torch.randn(5, 6),
            query_embeddings=torch.randn(4, 6),
        )
        context = dataclasses.replace(context, teacher=teacher, train=sp.csr_matrix((4, 5), dtype="float32"))
        if name == "importance_rd":  # per-prefix lists: users with 2, 2, 3 and 1 training items
            prefixes = dataclasses.replace(
                teacher,
                queries="positions",
                query_users=torch.tensor([0, 1, 2, 2]),
                query_steps=torch.tensor([1, 1, 1, 2]),
                confidence=torch.rand(4, 2),
            )
            context = dataclasses.replace(context, teacher=prefixes, train_lengths=np.array([2, 2, 3, 1]))
        small = {"k": 2, "l": 1, "top": 2}
        settings = {"rrd": small, "ir_rrd": small, "importance_rd": {"k": 2}}.get(name, {})
    term = TERMS[name](TERMS[name].Params(weight=1.0, **settings), context)
    term.on_epoch(0)
    value = term(only(full_outputs(4), TERMS[name].needs))
    assert value.shape == ()
    assert torch.isfinite(value)
