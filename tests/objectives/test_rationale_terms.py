"""RGT's self-supervised terms (reconstruction, contrast, cir, distill) against values worked out by
hand and independent loops over plain Python lists."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.rationale_terms import (
    COMPLEMENT_VIEWS,
    MASKED_EDGES,
    NODE_EGO,
    RATIONALE_VIEWS,
    Contrast,
    Distillation,
    Independence,
    MaskedEdges,
    NodeRows,
    RationaleViews,
    Reconstruction,
)
from recforge.objectives.term import TemperatureParams, TermParams


def tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def dot(a: list[float], b: list[float]) -> float:
    return sum(p * q for p, q in zip(a, b, strict=True))


def cosine(a: list[float], b: list[float]) -> float:
    return dot(a, b) / math.sqrt(dot(a, a) * dot(b, b))


def masked_outputs(users, items, item_ids) -> BatchOutputs:
    edges = MaskedEdges(users=users, items=items, item_ids=torch.tensor(item_ids))
    return BatchOutputs(views={MASKED_EDGES: edges})


def rationale_outputs(final=None, rationale=None, complement=None, ego=None) -> BatchOutputs:
    views: dict[str, object] = {}
    if final is not None:
        views[RATIONALE_VIEWS] = RationaleViews(final=final, rationale=rationale)
    if complement is not None:
        views[COMPLEMENT_VIEWS] = NodeRows(rows=complement)
    if ego is not None:
        views[NODE_EGO] = NodeRows(rows=ego)
    return BatchOutputs(views=views)


# --- reconstruction ------------------------------------------------------------------------------


def test_reconstruction_by_hand(make_context):
    # decoded users and items are the unit basis: the masked item scores 1, the other 0 (temperature 1)
    outputs = masked_outputs(tensor([[1, 0], [0, 1]]), tensor([[1, 0], [0, 1]]), [3, 4])
    value = Reconstruction(TermParams(weight=1.0), make_context())(outputs)
    assert value.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


def test_reconstruction_uses_raw_dot_products(make_context):
    # scaling the decoded users by 3 scales every logit by 3 (no normalisation, temperature 1)
    outputs = masked_outputs(tensor([[3, 0], [0, 3]]), tensor([[1, 0], [0, 1]]), [3, 4])
    value = Reconstruction(TermParams(weight=1.0), make_context())(outputs)
    assert value.item() == pytest.approx(math.log(1 + math.exp(-3)), rel=1e-5)


def test_reconstruction_masks_copies_of_the_masked_item(make_context):
    # both masked edges lead to item 3: neither row counts the other's copy as a negative
    outputs = masked_outputs(tensor([[1, 0], [0, 1]]), tensor([[1, 0], [0, 1]]), [3, 3])
    value = Reconstruction(TermParams(weight=1.0), make_context())(outputs)
    assert value.item() == pytest.approx(0.0, abs=1e-7)


def loop_reconstruction(users: list[list[float]], items: list[list[float]], ids: list[int]) -> float:
    total = 0.0
    for b, user in enumerate(users):
        candidates = [c for c in range(len(items)) if c == b or ids[c] != ids[b]]
        denominator = sum(math.exp(dot(user, items[c])) for c in candidates)
        total += -math.log(math.exp(dot(user, items[b])) / denominator)
    return total / len(users)


def test_reconstruction_against_a_loop(make_context):
    generator = torch.Generator().manual_seed(0)
    users, items = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    ids = [1, 2, 1, 3, 2]
    value = Reconstruction(TermParams(weight=1.0), make_context(dim=3))(masked_outputs(users, items, ids))
    assert value.item() == pytest.approx(loop_reconstruction(users.tolist(), items.tolist(), ids), rel=1e-5)


# --- contrast ------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.2])
def test_contrast_by_hand(make_context, temperature):
    # after L2 normalisation both views are the unit basis: cosines I, divided by τ
    outputs = rationale_outputs(final=tensor([[5, 0], [0, 0.5]]), rationale=tensor([[2, 0], [0, 3]]))
    value = Contrast(TemperatureParams(weight=1.0, temperature=temperature), make_context())(outputs)
    assert value.item() == pytest.approx(math.log(1 + math.exp(-1 / temperature)), rel=1e-5)


def loop_contrast(final: list[list[float]], rationale: list[list[float]], tau: float) -> float:
    total = 0.0
    for b, row in enumerate(rationale):
        logits = [cosine(row, other) / tau for other in final]
        total += -logits[b] + math.log(sum(math.exp(logit) for logit in logits))
    return total / len(rationale)


@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_contrast_against_a_loop(make_context, temperature):
    generator = torch.Generator().manual_seed(2)
    final, rationale = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    term = Contrast(TemperatureParams(weight=1.0, temperature=temperature), make_context(dim=3))
    value = term(rationale_outputs(final=final, rationale=rationale))
    assert value.item() == pytest.approx(
        loop_contrast(final.tolist(), rationale.tolist(), temperature), rel=1e-5
    )


def test_contrast_default_temperature_is_the_documented_one(make_context):
    term = Contrast(TemperatureParams(weight=1.0), make_context())
    outputs = rationale_outputs(final=tensor([[1, 0], [0, 1]]), rationale=tensor([[1, 0], [0, 1]]))
    assert term(outputs).item() == pytest.approx(math.log(1 + math.exp(-1 / 0.2)), rel=1e-5)


# --- cir (independence) --------------------------------------------------------------------------


def cir(rationale, complement, make_context) -> float:
    final = torch.zeros_like(rationale)  # cir reads only the rationale of RationaleViews
    outputs = rationale_outputs(final=final, rationale=rationale, complement=complement)
    return Independence(TermParams(weight=1.0), make_context(dim=rationale.shape[1]))(outputs).item()


def test_cir_of_orthogonal_views_is_zero(make_context):
    value = cir(tensor([[1, 0], [0, 2]]), tensor([[0, 3], [-4, 0]]), make_context)
    assert value == pytest.approx(0.0, abs=1e-7)


def test_cir_of_parallel_views_is_one_whatever_the_sign_and_scale(make_context):
    value = cir(tensor([[1, 2], [3, -1]]), tensor([[2, 4], [-6, 2]]), make_context)
    assert value == pytest.approx(1.0, rel=1e-6)


def test_cir_is_the_mean_squared_cosine(make_context):
    # row 0 orthogonal (cos 0), row 1 at 45° (cos² 1/2), row 2 opposite (cos² 1)
    value = cir(tensor([[1, 0], [1, 0], [0, 1]]), tensor([[0, 1], [1, 1], [0, -2]]), make_context)
    assert value == pytest.approx((0 + 0.5 + 1) / 3, rel=1e-6)


def test_cir_against_a_loop(make_context):
    generator = torch.Generator().manual_seed(3)
    rationale, complement = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    expected = (
        sum(cosine(r, c) ** 2 for r, c in zip(rationale.tolist(), complement.tolist(), strict=True)) / 6
    )
    assert cir(rationale, complement, make_context) == pytest.approx(expected, rel=1e-5)


# --- distill -------------------------------------------------------------------------------------


def set_head(head: nn.Linear, weight, bias) -> None:
    with torch.no_grad():
        head.weight.copy_(tensor(weight))
        head.bias.copy_(tensor(bias))


def test_distill_heads_are_parameters_of_the_term_sized_by_the_context(make_context):
    term = Distillation(TermParams(weight=1.0), make_context(dim=3))
    shapes = {name: tuple(parameter.shape) for name, parameter in term.named_parameters()}
    assert shapes == {
        f"students.{view}.{kind}": (3, 3) if kind == "weight" else (3,)
        for view in ("final", "rationale", "complement")
        for kind in ("weight", "bias")
    }
    assert all(parameter.requires_grad for parameter in term.parameters())


def test_distill_by_hand(make_context):
    term = Distillation(TermParams(weight=1.0), make_context())
    set_head(term.students["final"], [[1, 0], [0, 1]], [0, 0])  # identity
    set_head(term.students["rationale"], [[0, 0], [0, 0]], [1, 0])  # constant [1, 0]
    set_head(term.students["complement"], [[2, 0], [0, 2]], [0, 0])  # doubles
    outputs = rationale_outputs(
        final=tensor([[1, 0], [0, 1]]),  # predicted exactly: MSE 0
        rationale=tensor([[1, 1], [0, 0]]),  # errors (0, -1), (1, 0): MSE 2/4
        complement=tensor([[0, 0], [0, 0]]),  # errors (2, 0), (0, 2): MSE 8/4
        ego=tensor([[1, 0], [0, 1]]),
    )
    assert term(outputs).item() == pytest.approx((0 + 0.5 + 2) / 3, rel=1e-6)


def loop_mse(head: nn.Linear, ego: list[list[float]], teacher: list[list[float]]) -> float:
    weight, bias = head.weight.tolist(), head.bias.tolist()
    errors = []
    for row, target in zip(ego, teacher, strict=True):
        predicted = [dot(weight[j], row) + bias[j] for j in range(len(bias))]
        errors += [(p - q) ** 2 for p, q in zip(predicted, target, strict=True)]
    return sum(errors) / len(errors)


def test_distill_against_a_loop_over_the_three_views(make_context):
    torch.manual_seed(5)  # the heads' initialisation
    term = Distillation(TermParams(weight=1.0), make_context(dim=3))
    generator = torch.Generator().manual_seed(6)
    final, rationale, complement, ego = (torch.randn(4, 3, generator=generator) for _ in range(4))
    value = term(rationale_outputs(final=final, rationale=rationale, complement=complement, ego=ego))
    teachers = {"final": final, "rationale": rationale, "complement": complement}
    expected = sum(loop_mse(term.students[v], ego.tolist(), teachers[v].tolist()) for v in teachers) / 3
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_distill_trains_the_students_and_never_the_teacher(make_context):
    term = Distillation(TermParams(weight=1.0), make_context(dim=3))
    generator = torch.Generator().manual_seed(7)
    final, rationale, complement = (
        torch.randn(4, 3, generator=generator).requires_grad_(True) for _ in range(3)
    )
    ego = torch.randn(4, 3, generator=generator)
    term(rationale_outputs(final=final, rationale=rationale, complement=complement, ego=ego)).backward()
    assert final.grad is None
    assert rationale.grad is None
    assert complement.grad is None
    for name, parameter in term.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_distill_needs_all_three_views(make_context):
    term = Distillation(TermParams(weight=1.0), make_context())
    outputs = rationale_outputs(final=tensor([[1, 0]]), rationale=tensor([[1, 0]]), ego=tensor([[1, 0]]))
    with pytest.raises(KeyError, match="no 'complement_views' view"):
        term(outputs)
