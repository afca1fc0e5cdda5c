"""GRU4Rec-specific checks; the sequential-encoder contract is in test_sequential_contract.py."""

from __future__ import annotations

from recforge.models.gru4rec import GRU4Rec


def test_repr():
    first_lines = repr(GRU4Rec(num_items=11, dim=8, hidden_dim=12, num_layers=2)).splitlines()[:2]
    assert first_lines == ["GRU4Rec(", "  items=11, dim=8, hidden_dim=12, layers=2"]
