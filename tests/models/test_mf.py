from __future__ import annotations

import torch

from recforge.models.mf import MF


def test_repr():
    assert repr(MF(num_users=5, num_items=7, dim=8)) == "MF(users=5, items=7, dim=8)"


def test_forward_returns_the_tables():
    model = MF(num_users=5, num_items=7, dim=8)
    users, items = model()
    assert users.shape == (5, 8)
    assert items.shape == (7, 8)
    assert users is model.user_embedding
    assert items is model.item_embedding
    initial_users, initial_items = model.initial_embeddings()
    assert torch.equal(initial_users, users)
    assert torch.equal(initial_items, items)


def test_initialisation_is_normal_with_std_0_1():
    torch.manual_seed(0)
    model = MF(num_users=2000, num_items=3000, dim=64)
    for table in (model.user_embedding, model.item_embedding):
        assert abs(table.mean().item()) < 0.002
        assert abs(table.std().item() - 0.1) < 0.002


def test_gradient_reaches_both_tables():
    model = MF(num_users=3, num_items=4, dim=2)
    users, items = model()
    (users[0] @ items[1]).backward()
    assert model.user_embedding.grad is not None
    assert model.item_embedding.grad is not None
    assert model.user_embedding.grad[1:].abs().sum() == 0  # only user 0 was scored
