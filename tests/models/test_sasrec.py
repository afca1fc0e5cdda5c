"""SASRec-specific checks; the sequential-encoder contract is in test_sequential_contract.py."""

from __future__ import annotations

import pytest
import torch

from recforge.models.sasrec import SASRec


def small(**overrides) -> SASRec:
    params = {"num_items": 11, "dim": 8, "max_length": 6, "num_layers": 2, "num_heads": 2, "inner_dim": 16}
    return SASRec(**(params | overrides))


def test_repr():
    first_lines = repr(small()).splitlines()[:2]
    assert first_lines == ["SASRec(", "  items=11, dim=8, max_length=6, layers=2, heads=2"]


def test_heads_must_divide_dim():
    with pytest.raises(ValueError, match=r"dim \(8\) must be divisible by num_heads \(3\)"):
        small(num_heads=3)


def test_too_long_sequences_are_refused():
    with pytest.raises(ValueError, match="length 7, longer than max_length=6"):
        small()(torch.ones(2, 7, dtype=torch.long))
