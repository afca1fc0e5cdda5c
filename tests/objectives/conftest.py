"""Shared fixture of the objective tests: a :class:`TermContext` for tiny hand-made batches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from recforge.objectives.outputs import TermContext


@pytest.fixture
def make_context() -> Callable[..., TermContext]:
    """``make_context(dim=2, num_items=3, positive_counts=None)``: a CPU context (counts all 1)."""

    def make(dim: int = 2, num_items: int = 3, positive_counts: list[float] | None = None) -> TermContext:
        counts = [1.0] * num_items if positive_counts is None else positive_counts
        return TermContext(
            num_users=4,
            num_items=num_items,
            dim=dim,
            positive_counts=torch.tensor(counts, dtype=torch.float32),
            device=torch.device("cpu"),
        )

    return make
