import pytest
import torch

from recforge.objectives.batch_terms import TERMS, TermParameters, TripletEmbeddings, compute_terms
from recforge.objectives.contrastive import uniformity
from recforge.objectives.ranking import bpr


def batch(user_ids, positive_ids, dim=4, negatives=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    users, items = torch.randn(10, dim, generator=generator), torch.randn(12, dim, generator=generator)
    user_ids, positive_ids = torch.tensor(user_ids), torch.tensor(positive_ids)
    negative_ids = torch.randint(0, 12, (len(user_ids), negatives), generator=generator)
    return TripletEmbeddings(
        user=users[user_ids], positive=items[positive_ids], negatives=items[negative_ids],
        user_ego=users[user_ids], positive_ego=items[positive_ids], negatives_ego=items[negative_ids],
        user_ids=user_ids, positive_ids=positive_ids, negative_ids=negative_ids,
    )


def test_every_term_is_a_finite_scalar():
    b = batch([0, 1, 2, 2], [3, 4, 5, 6])
    values = compute_terms(tuple(TERMS), b, TermParameters())
    assert set(values) == set(TERMS)
    for name, value in values.items():
        assert value.shape == (), name
        assert torch.isfinite(value), name


def test_bpr_term_is_the_bpr_function():
    b = batch([0, 1], [3, 4])
    assert compute_terms(["bpr"], b, TermParameters())["bpr"] == pytest.approx(
        bpr(b.user, b.positive, b.negatives).item()
    )


def test_uniformity_counts_each_entity_once():
    repeated = batch([0, 0, 1], [3, 3, 4])
    value = compute_terms(["uniformity"], repeated, TermParameters())["uniformity"]
    users, items = repeated.user[[0, 2]], repeated.positive[[0, 2]]
    expected = (uniformity(users, t=2.0) + uniformity(items, t=2.0)) / 2
    assert value.item() == pytest.approx(expected.item())


def test_uniformity_of_a_one_row_batch_is_zero_not_an_error():
    value = compute_terms(["uniformity"], batch([0], [3]), TermParameters())["uniformity"]
    assert value.item() == 0.0
