"""The contract between the one training loop and what it trains (a *task*), shared by every task
module: a task owns its batches, takes one optimisation step per batch, and gives the query and
item embeddings the evaluator scores by dot products (DESIGN idea 1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor


class Batches(Protocol):
    def set_epoch(self, epoch: int) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...


class Task(Protocol):
    batches: Batches

    def step(self, batch: Any, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]: ...

    def embeddings(self, fold: str) -> tuple[Tensor, Tensor]: ...


def optimise(loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
    """One step: clear the gradients (to None: no zero-fill), backpropagate, update."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
