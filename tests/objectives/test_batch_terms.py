"""The recommendation terms over query rows and their items, against values worked out by hand.

Every batch here has 1-3 rows in d = 2, chosen so that each dot product (or distance on the unit
sphere) is 0, ±1 or ±2 and the expected loss is a closed form of ``exp``/``log``.
"""

from __future__ import annotations

import math

import pytest
import torch

from recforge.objectives.batch_terms import (
    BPR,
    L2,
    Alignment,
    BinaryCrossEntropy,
    InBatchSoftmax,
    InBatchSoftmaxParams,
    SampledSoftmax,
    SharedSoftmax,
    Uniformity,
)
from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.term import AlignmentParams, TemperatureParams, TermParams, UniformityParams


def tensor(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def softplus(x: float) -> float:
    """-log σ(-x) = log(1 + e^x)."""
    return math.log1p(math.exp(x))


# --- BPR -----------------------------------------------------------------------------------------


def test_bpr_by_hand(make_context):
    # margins u·p - u·n: row 0 (2 - 0, 2 - 1), row 1 (1 - 0, 1 - (-1)); loss: mean of log(1 + e^-m)
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positives=tensor([[2, 0], [0, 1]]),
        negatives=tensor([[[0, 1], [1, 0]], [[1, 0], [0, -1]]]),
    )
    value = BPR(TermParams(weight=1.0), make_context())(outputs)
    expected = (softplus(-2) + softplus(-1) + softplus(-1) + softplus(-2)) / 4
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_bpr_grows_when_a_negative_outscores_the_positive(make_context):
    term = BPR(TermParams(weight=1.0), make_context())
    queries, positives = tensor([[1, 0]]), tensor([[1, 0]])
    low = term(BatchOutputs(queries=queries, positives=positives, negatives=tensor([[[-1, 0]]])))
    high = term(BatchOutputs(queries=queries, positives=positives, negatives=tensor([[[3, 0]]])))
    assert low.item() == pytest.approx(softplus(-2), rel=1e-6)
    assert high.item() == pytest.approx(softplus(2), rel=1e-6)


# --- sampled softmax -----------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.2])
def test_sampled_softmax_by_hand(make_context, temperature):
    # row 0 logits (1 | 0, -1), row 1 logits (2 | 0, -2), all divided by τ; positive first
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 2]]),
        positives=tensor([[1, 0], [0, 1]]),
        negatives=tensor([[[0, 1], [-1, 0]], [[1, 0], [0, -1]]]),
    )
    term = SampledSoftmax(TemperatureParams(weight=1.0, temperature=temperature), make_context())
    tau = temperature
    row0 = math.log(1 + math.exp(-1 / tau) + math.exp(-2 / tau))
    row1 = math.log(1 + math.exp(-2 / tau) + math.exp(-4 / tau))
    assert term(outputs).item() == pytest.approx((row0 + row1) / 2, rel=1e-5)


def test_sampled_softmax_uses_only_a_rows_own_negatives(make_context):
    # row 1's negative would beat row 0's positive by far; row 0 must not see it
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positives=tensor([[1, 0], [0, 1]]),
        negatives=tensor([[[0, 1]], [[10, 0]]]),
    )
    value = SampledSoftmax(TemperatureParams(weight=1.0, temperature=1.0), make_context())(outputs)
    # each row: logits (1 | 0) -> log(1 + e^-1); row 0 against [10, 0] would score 10
    assert value.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)


# --- shared-negatives softmax --------------------------------------------------------------------


def shared_outputs(negative_ids) -> BatchOutputs:
    # pool: item 1 = [0, 1], item 2 = [1, 1]; row 0's positive is item 0, row 1's is item 1
    return BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positives=tensor([[1, 0], [0, 1]]),
        positive_ids=torch.tensor([0, 1]),
        negatives=tensor([[[0, 1]], [[1, 1]]]),
        negative_ids=torch.tensor(negative_ids),
    )


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_shared_softmax_pools_the_batch_negatives_and_masks_a_rows_own_positive(make_context, temperature):
    term = SharedSoftmax(TemperatureParams(weight=1.0, temperature=temperature), make_context())
    tau = temperature
    # row 0 (positive 0): logits 1 | pool 0, 1  ->  log(2 + e^{-1/τ})
    # row 1 (positive 1): logits 1 | pool item 1 masked, item 2 scores 1  ->  log 2
    expected = (math.log(2 + math.exp(-1 / tau)) + math.log(2)) / 2
    assert term(shared_outputs([[1], [2]])).item() == pytest.approx(expected, rel=1e-6)


def test_shared_softmax_keeps_a_pool_item_that_is_another_rows_positive(make_context):
    # same rows, but the pool item [0, 1] is now item 3: row 1 scores it as a real negative
    term = SharedSoftmax(TemperatureParams(weight=1.0, temperature=1.0), make_context(num_items=4))
    expected = (math.log(2 + math.exp(-1)) + math.log(3)) / 2
    assert term(shared_outputs([[3], [2]])).item() == pytest.approx(expected, rel=1e-6)


# --- in-batch softmax ----------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [1.0, 0.25])
def test_in_batch_softmax_by_hand(make_context, temperature):
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positives=tensor([[1, 0], [0, 1]]),
        positive_ids=torch.tensor([3, 4]),
    )
    params = InBatchSoftmaxParams(weight=1.0, temperature=temperature)
    term = InBatchSoftmax(params, make_context(num_items=5))
    # logits I/τ: each row's positive 1/τ against the other row's 0
    assert term(outputs).item() == pytest.approx(math.log(1 + math.exp(-1 / temperature)), rel=1e-5)


def test_in_batch_softmax_masks_copies_of_a_rows_own_item(make_context):
    # both rows have item 3: the other row's copy is no negative, each row faces only its positive
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positives=tensor([[1, 0], [0, 1]]),
        positive_ids=torch.tensor([3, 3]),
    )
    term = InBatchSoftmax(InBatchSoftmaxParams(weight=1.0, temperature=1.0), make_context(num_items=5))
    value = term(outputs)
    assert value.item() == pytest.approx(0.0, abs=1e-7)


def test_log_q_correction_lowers_popular_candidates_by_hand(make_context):
    # items 0 and 1 are positives 3 and 1 times: q = 3/4, 1/4; logits I (τ = 1) minus log q per column
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positives=tensor([[1, 0], [0, 1]]),
        positive_ids=torch.tensor([0, 1]),
    )
    params = InBatchSoftmaxParams(weight=1.0, temperature=1.0, log_q_correction=True)
    value = InBatchSoftmax(params, make_context(num_items=2, positive_counts=[3.0, 1.0]))(outputs)
    lq0, lq1 = math.log(0.75), math.log(0.25)
    row0 = -(1 - lq0) + math.log(math.exp(1 - lq0) + math.exp(0 - lq1))
    row1 = -(1 - lq1) + math.log(math.exp(0 - lq0) + math.exp(1 - lq1))
    assert value.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    plain = InBatchSoftmax(InBatchSoftmaxParams(weight=1.0, temperature=1.0), make_context(num_items=2))
    assert plain(outputs).item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    # equal popularity shifts every logit alike: the correction changes nothing
    even = InBatchSoftmax(params, make_context(num_items=2, positive_counts=[2.0, 2.0]))(outputs)
    assert even.item() == pytest.approx(plain(outputs).item(), rel=1e-6)


def test_in_batch_softmax_with_three_rows_masks_only_the_duplicate(make_context):
    # rows 0 and 2 share item 3; row 1 has item 4. All logits are 0 except the diagonal (1).
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1], [1, 0]]),
        positives=tensor([[1, 0], [0, 1], [1, 0]]),
        positive_ids=torch.tensor([3, 4, 3]),
    )
    term = InBatchSoftmax(InBatchSoftmaxParams(weight=1.0, temperature=1.0), make_context(num_items=5))
    value = term(outputs)
    # row 0: {self 1, row 1: 0}; row 1: {self 1, rows 0 and 2: 0}; row 2: {self 1, row 1: 0}
    expected = (2 * math.log(1 + math.exp(-1)) + math.log(1 + 2 * math.exp(-1))) / 3
    assert value.item() == pytest.approx(expected, rel=1e-6)


# --- binary cross-entropy ------------------------------------------------------------------------


def test_bce_sums_over_negatives_and_averages_over_rows(make_context):
    # row 0: positive score 2, negatives 1 and 0; row 1: positive score -1, negatives 1 and 0
    outputs = BatchOutputs(
        queries=tensor([[1, 0], [0, 1]]),
        positives=tensor([[2, 0], [0, -1]]),
        negatives=tensor([[[1, 0], [0, 1]], [[0, 1], [1, 0]]]),
    )
    value = BinaryCrossEntropy(TermParams(weight=1.0), make_context())(outputs)
    # -log σ(s) = softplus(-s) for the positive, -log σ(-s) = softplus(s) for each negative
    row0 = softplus(-2) + softplus(1) + softplus(0)
    row1 = softplus(1) + softplus(1) + softplus(0)
    assert value.item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


# --- alignment -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 2.0, 4.0])
def test_alignment_by_hand(make_context, alpha):
    # on the sphere: row 0 is [1, 0] vs [0, 1] (distance √2), row 1 is [0, 1] vs [0, 1] (distance 0)
    outputs = BatchOutputs(queries=tensor([[1, 0], [0, 3]]), positives=tensor([[0, 2], [0, 1]]))
    value = Alignment(AlignmentParams(weight=1.0, alpha=alpha), make_context())(outputs)
    assert value.item() == pytest.approx(math.sqrt(2) ** alpha / 2, rel=1e-6)


def test_alignment_of_opposite_rows_is_two_to_the_alpha(make_context):
    outputs = BatchOutputs(queries=tensor([[1, 0]]), positives=tensor([[-5, 0]]))
    value = Alignment(AlignmentParams(weight=1.0, alpha=3.0), make_context())(outputs)
    assert value.item() == pytest.approx(8.0, rel=1e-6)


# --- uniformity ----------------------------------------------------------------------------------


def uniformity_outputs(queries, query_ids, positives, positive_ids) -> BatchOutputs:
    return BatchOutputs(
        queries=tensor(queries),
        query_ids=torch.tensor(query_ids),
        positives=tensor(positives),
        positive_ids=torch.tensor(positive_ids),
    )


@pytest.mark.parametrize("t", [1.0, 2.0, 0.5])
def test_uniformity_by_hand(make_context, t):
    # queries orthogonal (squared distance 2): log e^{-2t} = -2t;
    # positives opposite (squared distance 4): -4t; the term is their mean, -3t
    outputs = uniformity_outputs([[1, 0], [0, 2]], [0, 1], [[1, 0], [-3, 0]], [5, 6])
    value = Uniformity(UniformityParams(weight=1.0, t=t), make_context())(outputs)
    assert value.item() == pytest.approx(-3 * t, rel=1e-6)


def test_uniformity_counts_a_repeated_id_once(make_context):
    term = Uniformity(UniformityParams(weight=1.0, t=2.0), make_context())
    once = uniformity_outputs([[1, 0], [0, 1]], [0, 1], [[1, 0], [-1, 0]], [5, 6])
    # user 0 and item 5 appear twice, with their same rows
    twice = uniformity_outputs([[1, 0], [0, 1], [1, 0]], [0, 1, 0], [[1, 0], [-1, 0], [1, 0]], [5, 6, 5])
    assert term(twice).item() == pytest.approx(term(once).item(), rel=1e-6)
    assert term(once).item() == pytest.approx(-6.0, rel=1e-6)


def test_uniformity_counts_ids_not_rows(make_context):
    # a third user (id 2) whose row equals user 0's is a distinct entity: its zero-distance pair counts
    outputs = uniformity_outputs([[1, 0], [0, 1], [1, 0]], [0, 1, 2], [[1, 0], [-1, 0]], [5, 6])
    t = 1.0
    value = Uniformity(UniformityParams(weight=1.0, t=t), make_context())(outputs)
    queries = math.log((2 * math.exp(-2 * t) + 1) / 3)  # pairs at squared distance 2, 2 and 0
    assert value.item() == pytest.approx((queries + -4 * t) / 2, rel=1e-6)


def test_uniformity_leaves_out_a_side_with_one_distinct_row(make_context):
    # all queries are user 0: only the positives' side (-4t) is averaged, not (0 + -4t) / 2
    outputs = uniformity_outputs([[1, 0], [1, 0]], [0, 0], [[1, 0], [-1, 0]], [5, 6])
    value = Uniformity(UniformityParams(weight=1.0, t=1.5), make_context())(outputs)
    assert value.item() == pytest.approx(-6.0, rel=1e-6)


def test_uniformity_of_one_distinct_row_per_side_is_zero_and_keeps_the_graph(make_context):
    queries = tensor([[1.0, 2.0]]).requires_grad_(True)
    outputs = BatchOutputs(
        queries=queries,
        query_ids=torch.tensor([0]),
        positives=tensor([[3, 4]]),
        positive_ids=torch.tensor([5]),
    )
    value = Uniformity(UniformityParams(weight=1.0, t=2.0), make_context())(outputs)
    assert value.item() == 0.0
    value.backward()
    assert queries.grad is not None
    assert torch.equal(queries.grad, torch.zeros_like(queries))


# --- L2 ------------------------------------------------------------------------------------------


def test_l2_is_half_the_squared_norm_of_the_ego_rows_per_query(make_context):
    outputs = BatchOutputs(
        query_ego=tensor([[1, 0], [0, 2]]),  # 1 + 4
        positive_ego=tensor([[1, 1], [0, 0]]),  # 2
        negative_ego=tensor([[[3, 0]], [[0, 0]]]),  # 9
    )
    value = L2(TermParams(weight=1.0), make_context())(outputs)
    assert value.item() == pytest.approx(0.5 * 16 / 2)


def test_l2_divides_by_the_queries_not_the_negatives(make_context):
    # two negatives per query: the sum doubles, the divisor stays B = 1
    outputs = BatchOutputs(
        query_ego=tensor([[1, 0]]), positive_ego=tensor([[0, 0]]), negative_ego=tensor([[[0, 2], [2, 0]]])
    )
    assert L2(TermParams(weight=1.0), make_context())(outputs).item() == pytest.approx(0.5 * 9)


# --- reading the outputs -------------------------------------------------------------------------


def test_a_term_reading_a_field_the_task_left_empty_names_it(make_context):
    outputs = BatchOutputs(queries=tensor([[1, 0]]), positives=tensor([[1, 0]]))
    with pytest.raises(KeyError, match="computed no 'negatives'"):
        BPR(TermParams(weight=1.0), make_context())(outputs)
