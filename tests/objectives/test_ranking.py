from __future__ import annotations

import math

import pytest
import torch

from recforge.objectives.ranking import bpr, in_batch_softmax, sampled_softmax, shared_negatives_softmax


def neg_log_sigmoid(margin: float) -> float:
    return -math.log(1 / (1 + math.exp(-margin)))


def test_bpr_by_hand():
    user = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    positive = torch.tensor([[3.0, 1.0], [1.0, 1.0]])
    negative = torch.tensor([[1.0, 5.0], [0.0, 2.0]])
    # margins: u0·(p0 - n0) = 1·2 = 2; u1·(p1 - n1) = 2·(1 - 2) = -2
    expected = (neg_log_sigmoid(2.0) + neg_log_sigmoid(-2.0)) / 2
    assert bpr(user, positive, negative).item() == pytest.approx(expected)


def test_bpr_several_negatives_is_mean_over_negatives():
    user = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[[0.0, 0.0], [3.0, 0.0]]])  # margins 1 and -2
    expected = (neg_log_sigmoid(1.0) + neg_log_sigmoid(-2.0)) / 2
    assert bpr(user, positive, negatives).item() == pytest.approx(expected)
    # one negative as (B, 1, d) or (B, d): the same loss
    one_negative = bpr(user, positive, negatives[:, 0]).item()
    assert bpr(user, positive, negatives[:, :1]).item() == pytest.approx(one_negative)


def test_bpr_finite_for_huge_margins():
    user = torch.tensor([[1.0]], requires_grad=True)
    wrong = bpr(user, torch.tensor([[-1e4]]), torch.tensor([[1e4]]))  # margin -2e4: log σ underflows to -inf
    assert wrong.item() == pytest.approx(2e4)
    wrong.backward()
    assert torch.isfinite(user.grad).all()
    right = bpr(torch.tensor([[1.0]]), torch.tensor([[1e4]]), torch.tensor([[-1e4]]))
    assert right.item() == pytest.approx(0.0, abs=1e-12)


def test_bpr_rejects_zero_negatives():
    message = r"bpr: negatives must be \(B, n, d\) with n >= 1, got shape \(2, 0, 3\)"
    with pytest.raises(ValueError, match=message):
        bpr(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 0, 3))


def test_sampled_softmax_against_explicit_log_softmax():
    generator = torch.Generator().manual_seed(0)
    user, positive = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    negatives = torch.randn(4, 5, 3, generator=generator)
    temperature = 0.5
    expected = 0.0
    for b in range(4):
        logits = [float(user[b] @ positive[b]) / temperature]
        logits += [float(user[b] @ negatives[b, j]) / temperature for j in range(5)]
        expected += -(logits[0] - math.log(sum(math.exp(z) for z in logits)))
    expected /= 4
    got = sampled_softmax(user, positive, negatives, temperature=temperature)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_sampled_softmax_by_hand_and_finite():
    # one negative with the same score as the positive: log 2
    user, item = torch.tensor([[1.0, 1.0]]), torch.tensor([[2.0, 0.0]])
    tie = sampled_softmax(user, item, item.unsqueeze(1), temperature=0.1)
    assert tie.item() == pytest.approx(math.log(2))
    huge = sampled_softmax(user, -1e4 * item, 1e4 * item.unsqueeze(1), temperature=0.01)
    assert torch.isfinite(huge)
    with pytest.raises(ValueError, match="sampled_softmax: negatives must be"):
        sampled_softmax(user, item, item, temperature=1.0)


def test_in_batch_softmax_against_explicit_formula():
    generator = torch.Generator().manual_seed(1)
    user, positive = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    temperature = 0.2
    expected = 0.0
    for b in range(5):
        logits = [float(user[b] @ positive[c]) / temperature for c in range(5)]
        expected += -(logits[b] - math.log(sum(math.exp(z) for z in logits)))
    got = in_batch_softmax(user, positive, temperature=temperature)
    assert got.item() == pytest.approx(expected / 5, rel=1e-5)


def test_in_batch_softmax_masks_duplicate_items():
    generator = torch.Generator().manual_seed(2)
    user, positive = torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator)
    item_ids = torch.tensor([7, 3, 7, 5])
    positive[2] = positive[0]  # rows 0 and 2 share item 7
    temperature = 0.5
    expected = 0.0
    for b in range(4):
        candidates = [c for c in range(4) if c == b or item_ids[c] != item_ids[b]]
        logits = {c: float(user[b] @ positive[c]) / temperature for c in candidates}
        expected += -(logits[b] - math.log(sum(math.exp(z) for z in logits.values())))
    got = in_batch_softmax(user, positive, temperature=temperature, item_ids=item_ids)
    assert got.item() == pytest.approx(expected / 4, rel=1e-5)
    unmasked = in_batch_softmax(user, positive, temperature=temperature)
    assert unmasked.item() > got.item()  # the false negatives only added to the denominators


def test_in_batch_softmax_all_rows_same_item_is_zero_and_finite():
    user = torch.randn(3, 2, requires_grad=True)
    positive = torch.ones(3, 2)
    loss = in_batch_softmax(user, positive, temperature=0.1, item_ids=torch.tensor([4, 4, 4]))
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    loss.backward()
    assert torch.isfinite(user.grad).all()


def test_shared_negatives_softmax_by_hand():
    user = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[2.0, 0.0]])
    negatives = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # scores 0 and 1; positive scores 2
    expected = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.0) + math.exp(1.0)))
    value = shared_negatives_softmax(user, positive, negatives, temperature=1.0)
    assert value.item() == pytest.approx(expected)


def test_shared_negatives_softmax_equals_sampled_softmax_with_the_pool_repeated():
    generator = torch.Generator().manual_seed(3)
    user, positive = torch.randn(5, 4, generator=generator), torch.randn(5, 4, generator=generator)
    pool = torch.randn(7, 4, generator=generator)
    shared = shared_negatives_softmax(user, positive, pool, temperature=0.3)
    per_row = sampled_softmax(user, positive, pool.expand(5, 7, 4), temperature=0.3)
    assert shared.item() == pytest.approx(per_row.item(), rel=1e-6)


def test_shared_negatives_softmax_masks_a_rows_own_positive():
    user = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pool = torch.tensor([[1.0, 0.0], [0.5, 0.5]])  # pool item 10 is row 0's own positive
    masked = shared_negatives_softmax(
        user,
        positive,
        pool,
        temperature=1.0,
        positive_ids=torch.tensor([10, 11]),
        negative_ids=torch.tensor([10, 12]),
    )
    row0 = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.5)))  # item 10 left out
    row1 = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(0.0) + math.exp(0.5)))
    assert masked.item() == pytest.approx((row0 + row1) / 2)


def test_shared_negatives_softmax_rejects_an_empty_pool():
    with pytest.raises(ValueError, match=r"negatives must be \(M, d\) with M >= 1"):
        shared_negatives_softmax(torch.ones(2, 3), torch.ones(2, 3), torch.ones(0, 3), temperature=1.0)
