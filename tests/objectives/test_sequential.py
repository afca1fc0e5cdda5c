from __future__ import annotations

import math

import pytest
import torch

from recforge.objectives.sequential import (
    dros,
    dros_item_weights,
    next_item_bce,
    next_item_cross_entropy,
)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    items = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    targets = torch.tensor([0, 5, 2, 5])
    return hidden, targets, items


def test_cross_entropy_is_explicit_log_softmax(batch):
    hidden, targets, items = batch
    expected = 0.0
    for row, target in zip(hidden.tolist(), targets.tolist(), strict=True):
        scores = [sum(h * e for h, e in zip(row, item, strict=True)) for item in items.tolist()]
        expected -= scores[target] - math.log(sum(math.exp(score) for score in scores))
    got = next_item_cross_entropy(hidden @ items.T, targets)
    assert got.item() == pytest.approx(expected / len(targets))


def test_bce_is_explicit_log_sigmoid_formula(batch):
    hidden, targets, items = batch
    positive = items[targets]
    negatives = torch.stack([items[[1, 2]], items[[3, 4]], items[[0, 1]], items[[2, 2]]])  # (4, 2, 3)
    expected = 0.0
    for n in range(len(hidden)):
        expected -= math.log(1 / (1 + math.exp(-(hidden[n] @ positive[n]).item())))
        for negative in negatives[n]:
            expected -= math.log(1 - 1 / (1 + math.exp(-(hidden[n] @ negative).item())))
    assert next_item_bce(hidden, positive, negatives).item() == pytest.approx(expected / len(hidden))


def test_bce_is_finite_for_large_scores():
    hidden = torch.tensor([[100.0]])
    loss = next_item_bce(hidden, torch.tensor([[-100.0]]), torch.tensor([[[100.0]]]))
    assert loss.item() == pytest.approx(2 * 10_000.0)


def test_bce_refuses_missing_negatives():
    with pytest.raises(ValueError, match=r"negatives must be \(N, k, d\) with k >= 1, got shape \(2, 0, 3\)"):
        next_item_bce(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 0, 3))


def test_dros_item_weights_by_hand():
    weights = dros_item_weights(torch.tensor([3, 0, 1]), exponent=0.5)
    expected = [math.sqrt(4 / 7), math.sqrt(1 / 7), math.sqrt(2 / 7)]
    assert weights.tolist() == pytest.approx(expected)


def reference_dros(hidden, targets, items, weights, beta):  # one row, one item at a time
    total = 0.0
    for row, target in zip(hidden.tolist(), targets.tolist(), strict=True):
        inner = 0.0
        for item, (embedding, weight) in enumerate(zip(items.tolist(), weights.tolist(), strict=True)):
            score = sum(h * e for h, e in zip(row, embedding, strict=True))
            squared_error = (score - 1) ** 2 if item == target else score**2
            inner += math.exp(weight * squared_error / beta)
        total += math.log(inner)
    return total / len(targets)


@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_dros_matches_the_explicit_formula(batch, beta):
    hidden, targets, items = batch
    weights = dros_item_weights(torch.tensor([5, 0, 2, 9, 1, 3]), exponent=0.05).double()
    got = dros(hidden @ items.T, targets, weights, beta=beta)
    assert got.item() == pytest.approx(reference_dros(hidden, targets, items, weights, beta))


def test_dros_gradient_flows_and_is_finite_for_large_scores(batch):
    hidden, targets, items = batch
    hidden = (hidden * 100).requires_grad_()
    loss = dros(hidden @ items.T, targets, torch.ones(6, dtype=torch.float64), beta=1.0)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(hidden.grad).all()
