"""CCA-SSG's loss and GraphMAE's scaled cosine error: by hand, against a slow formula, and their
properties (agreeing views score lower; decorrelated columns cost nothing extra; γ shrinks easy rows)."""

from __future__ import annotations

import math

import pytest
import torch

from recforge.objectives.self_supervised import cca_ssg_loss, scaled_cosine_error, standardise_columns


def slow_cca(first: torch.Tensor, second: torch.Tensor, lam: float) -> float:
    n, d = first.shape

    def standard(column: list[float]) -> list[float]:
        mean = sum(column) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in column) / (n - 1))
        return [(v - mean) / sd for v in column]

    z1 = [standard(first[:, j].tolist()) for j in range(d)]  # columns
    z2 = [standard(second[:, j].tolist()) for j in range(d)]
    total = -sum(sum(a * b for a, b in zip(z1[j], z2[j], strict=True)) / n for j in range(d))
    for z in (z1, z2):
        for i in range(d):
            for j in range(d):
                c = sum(a * b for a, b in zip(z[i], z[j], strict=True)) / n
                total += lam * ((1.0 if i == j else 0.0) - c) ** 2
    return total


def test_cca_ssg_matches_the_slow_formula():
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    second = first + 0.3 * torch.randn(7, 3, generator=generator, dtype=torch.float64)
    assert cca_ssg_loss(first, second, 0.5).item() == pytest.approx(slow_cca(first, second, 0.5), rel=1e-10)


def test_cca_ssg_by_hand_for_two_nodes():
    # two nodes, one column: z = [-1/√2, 1/√2] for any two distinct values (unbiased σ), so
    # z1ᵀz2 / N = ±(1/2): agreeing views -1/2, opposite +1/2; zᵀz / N = 1/2, (1 - 1/2)² = 1/4 per view
    agree = cca_ssg_loss(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [5.0]]), 1.0)
    oppose = cca_ssg_loss(torch.tensor([[0.0], [2.0]]), torch.tensor([[5.0], [1.0]]), 1.0)
    assert agree.item() == pytest.approx(-0.5 + 0.5, abs=1e-6)
    assert oppose.item() == pytest.approx(0.5 + 0.5)


def test_cca_ssg_rewards_agreement_and_punishes_collapse():
    generator = torch.Generator().manual_seed(1)
    base = torch.randn(64, 4, generator=generator)
    noisy = base + torch.randn(64, 4, generator=generator)
    unrelated = torch.randn(64, 4, generator=generator)
    assert cca_ssg_loss(base, noisy, 1e-3) < cca_ssg_loss(base, unrelated, 1e-3)
    collapsed = base[:, :1].repeat(1, 4)  # every column the same direction
    assert cca_ssg_loss(collapsed, collapsed, 1.0) > cca_ssg_loss(base, base, 1.0) + 5
    standard = standardise_columns(base)
    assert torch.allclose(standard.mean(0), torch.zeros(4), atol=1e-6)
    assert torch.allclose(standard.std(0), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError, match="at least 2 nodes"):
        cca_ssg_loss(base[:1], base[:1])
    with pytest.raises(ValueError, match="share one"):
        cca_ssg_loss(base, base[:, :2])


def test_scaled_cosine_error_by_hand():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    x_hat = torch.tensor([[3.0, 0.0], [2.0, 0.0], [-1.0, -1.0]])  # cos 1, 0, -1
    assert scaled_cosine_error(x, x_hat, 2.0).item() == pytest.approx((0 + 1 + 4) / 3)
    assert scaled_cosine_error(x, x_hat, 1.0).item() == pytest.approx((0 + 1 + 2) / 3)
    # γ > 1 shrinks a well-reconstructed row's share: cos 0.9 -> 0.01 at γ = 2 against 0.1 at γ = 1
    close = torch.tensor([[0.9, math.sqrt(1 - 0.81)]])
    assert scaled_cosine_error(torch.tensor([[1.0, 0.0]]), close, 2.0).item() == pytest.approx(0.01, rel=1e-5)
    with pytest.raises(ValueError, match="shapes differ"):
        scaled_cosine_error(x, x_hat[:2])
