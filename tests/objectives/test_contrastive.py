from __future__ import annotations

import itertools
import math

import pytest
import torch

from recforge.objectives.contrastive import alignment, first_occurrences, paired_uniformity, uniformity


def unit(row: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in row))
    return [v / norm for v in row]


def naive_alignment(x: torch.Tensor, y: torch.Tensor, alpha: float) -> float:
    total = 0.0
    for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True):
        a, b = unit(row_x), unit(row_y)
        total += math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b, strict=True))) ** alpha
    return total / len(x)


def naive_uniformity(x: torch.Tensor, t: float) -> float:
    rows = [unit(row) for row in x.tolist()]
    potentials = [
        math.exp(-t * sum((p - q) ** 2 for p, q in zip(rows[i], rows[j], strict=True)))
        for i, j in itertools.combinations(range(len(rows)), 2)
    ]
    return math.log(sum(potentials) / len(potentials))


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_alignment_against_loop(alpha):
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    assert alignment(x, y, alpha=alpha).item() == pytest.approx(naive_alignment(x, y, alpha), rel=1e-5)


def test_alignment_by_hand():
    x = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    y = torch.tensor([[5.0, 0.0], [1.0, 0.0]])  # same direction (0); orthogonal (distance² = 2)
    assert alignment(x, y).item() == pytest.approx(1.0)  # (0 + 2) / 2


def test_alignment_gradient_finite_for_identical_rows():
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    loss = alignment(x, x.detach().clone())
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("t", [0.5, 2.0])
def test_uniformity_against_loop(t):
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    assert uniformity(x, t=t).item() == pytest.approx(naive_uniformity(x, t), rel=1e-5)


def test_uniformity_by_hand():
    # two opposite unit vectors: distance² = 4, one pair -> log exp(-2·4) = -8
    x = torch.tensor([[1.0, 0.0], [-3.0, 0.0]])
    assert uniformity(x, t=2.0).item() == pytest.approx(-8.0)


def test_uniformity_finite_where_exp_underflows():
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    # pairs at distance² 4, 2, 2: log((e^-400 + 2 e^-200) / 3), every exp underflowing float32 to 0
    loss = uniformity(x, t=100.0)
    assert loss.item() == pytest.approx(-200.0 + math.log(2 / 3), rel=1e-6)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_uniformity_duplicate_rows_have_finite_gradient():
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], requires_grad=True)
    uniformity(x).backward()
    assert torch.isfinite(x.grad).all()


def test_uniformity_needs_two_rows():
    with pytest.raises(ValueError, match="uniformity: needs at least 2 rows to form a pair, got 1"):
        uniformity(torch.ones(1, 3))


def test_paired_uniformity_by_hand():
    # pairs: same direction (distance² 0) and opposite (distance² 4): log((1 + e^-8) / 2) at t = 2
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    y = torch.tensor([[3.0, 0.0], [0.0, -1.0]])
    assert paired_uniformity(x, y, t=2.0).item() == pytest.approx(math.log((1 + math.exp(-8)) / 2), rel=1e-6)


def test_paired_uniformity_against_loop():
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    expected = math.log(
        sum(math.exp(-1.5 * naive_alignment(a[None], b[None], 2.0)) for a, b in zip(x, y, strict=True)) / 5
    )
    assert paired_uniformity(x, y, t=1.5).item() == pytest.approx(expected, rel=1e-5)


def test_first_occurrences_pick_the_first_row_of_each_id():
    ids = torch.tensor([7, 3, 7, 9, 3, 3])
    assert first_occurrences(ids).tolist() == [1, 0, 3]  # ids 3, 7, 9 in sorted order
