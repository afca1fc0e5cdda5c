"""The next-item terms over the whole item table (``ce``, ``dros``), against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.sequence_terms import DROS, CrossEntropy, DROSParams
from recforge.objectives.term import TermParams


def tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_cross_entropy_by_hand(make_context):
    # items e0 = [1, 0], e1 = [0, 1], e2 = [0, 0]; row 0 scores (1, 0, 0) for target 0,
    # row 1 scores (0, 1, 0) for target 2
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positive_ids=torch.tensor([0, 2]),
        items=tensor([[1, 0], [0, 1], [0, 0]]),
    )
    value = CrossEntropy(TermParams(weight=1.0), make_context())(outputs)
    expected = (math.log(1 + 2 * math.exp(-1)) + math.log(2 + math.e)) / 2
    assert value.item() == pytest.approx(expected, rel=1e-6)


def dros_outputs() -> BatchOutputs:
    # items e0 = [1, 0], e1 = [0, 1], e2 = [1, 1]; scores: row 0 (1, 0, 1), row 1 (0, 2, 2)
    return BatchOutputs(
        queries=tensor([[1, 0], [0, 2]]),
        positive_ids=torch.tensor([0, 1]),
        items=tensor([[1, 0], [0, 1], [1, 1]]),
    )


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_dros_by_hand(make_context, beta):
    # counts (0, 2, 1) -> add-one (1, 3, 2) / 6 -> with γ = 1 the weights are (1/6, 1/2, 1/3)
    term = DROS(DROSParams(weight=1.0, beta=beta, exponent=1.0), make_context(positive_counts=[0, 2, 1]))
    # row 0, target 0: exponents w0·(1-1)² = 0, w1·0² = 0, w2·1² = 1/3, all over β
    row0 = math.log(2 + math.exp(1 / (3 * beta)))
    # row 1, target 1: exponents w0·0² = 0, w1·(2-1)² = 1/2, w2·2² = 4/3, all over β
    row1 = math.log(1 + math.exp(1 / (2 * beta)) + math.exp(4 / (3 * beta)))
    assert term(dros_outputs()).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_dros_with_exponent_zero_weighs_every_item_one(make_context):
    # γ = 0: every weight is 1 whatever the counts
    term = DROS(DROSParams(weight=1.0, beta=1.0, exponent=0.0), make_context(positive_counts=[0, 9, 4]))
    row0 = math.log(2 + math.e)  # exponents 0, 0, 1
    row1 = math.log(1 + math.e + math.exp(4))  # exponents 0, 1, 4
    assert term(dros_outputs()).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


class CountMatmuls(torch.overrides.TorchFunctionMode):
    """Counts the matrix products a block of code asks torch for."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func in (torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm):
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_ce_and_dros_share_one_score_matrix_and_keep_their_gradients(make_context):
    queries = tensor([[1, 0], [0, 2]]).requires_grad_()
    items = tensor([[1, 0], [0, 1], [1, 1]]).requires_grad_()
    outputs = BatchOutputs(queries=queries, positive_ids=torch.tensor([0, 1]), items=items)
    ce = CrossEntropy(TermParams(weight=1.0), make_context())
    dros = DROS(DROSParams(weight=1.0), make_context(positive_counts=[0, 2, 1]))
    with CountMatmuls() as counter:
        shared = ce(outputs) + dros(outputs)
    assert counter.count == 1
    grads = torch.autograd.grad(shared, (queries, items))
    # each term on its own batch: the same total and the same gradients
    apart = ce(BatchOutputs(queries=queries, positive_ids=outputs.positive_ids, items=items))
    apart = apart + dros(BatchOutputs(queries=queries, positive_ids=outputs.positive_ids, items=items))
    assert shared.item() == pytest.approx(apart.item(), rel=1e-6)
    for got, expected in zip(grads, torch.autograd.grad(apart, (queries, items)), strict=True):
        torch.testing.assert_close(got, expected)
