from __future__ import annotations

import pytest
import torch

from recforge.objectives.regularization import l2_ego


def test_by_hand():
    users = torch.tensor([[1.0, 2.0], [0.0, 1.0]])  # squared norm 6
    positives = torch.tensor([[3.0, 0.0], [0.0, 0.0]])  # 9
    negatives = torch.tensor([[[1.0, 1.0]], [[0.0, 2.0]]])  # (B, n, d): 6
    assert l2_ego(users, positives, negatives, batch_size=2).item() == pytest.approx(0.5 * 21 / 2)


def test_gradient_is_rows_over_batch_size():
    users = torch.tensor([[1.0, -2.0]], requires_grad=True)
    l2_ego(users, batch_size=4).backward()
    torch.testing.assert_close(users.grad, users.detach() / 4)


def test_needs_a_tensor():
    with pytest.raises(ValueError, match="l2_ego: needs at least one tensor"):
        l2_ego(batch_size=1)
