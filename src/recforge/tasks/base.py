"""The contract between the one training loop and what it trains (a *task*).

A task owns its batches and turns one batch into :class:`~recforge.objectives.outputs.BatchOutputs`
(``task.outputs(batch)``); the objective turns those into the loss and the trainer takes one
optimiser step. A task computes only the outputs the configured terms need (``setup.needs``), and
says, before anything is built, which names it can provide (``provides``), so a config asking a
term of a model that cannot feed it is refused at load time.

Lifecycle: ``on_epoch(epoch)`` before each pass; ``state_dict()`` / ``load_state_dict()`` carry
whatever the task draws or counts besides the model (generators, step counters, resampled graphs),
saved with the resume state so that a resumed run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from recforge.data.split import Split
from recforge.errors import ConfigError
from recforge.objectives.outputs import BatchOutputs, TermContext

if TYPE_CHECKING:
    from recforge.config import ExperimentConfig


class Batches(Protocol):
    def set_epoch(self, epoch: int) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Any]: ...


@dataclass(frozen=True)
class TaskSetup:
    """Everything a task is built from.

    Attributes:
        model: the encoder, already on ``device``.
        split: the train/valid/test split (tasks read its train fold).
        config: the validated experiment.
        device: where batches go.
        needs: the output names the configured terms read (compute nothing else).
        graph: the encoder's graph inputs (``forward(**graph)``), built once by the recipe.
    """

    model: nn.Module
    split: Split
    config: ExperimentConfig
    device: torch.device
    needs: frozenset[str]
    graph: dict[str, Tensor]


class Task(Protocol):
    batches: Batches
    context: TermContext

    def on_epoch(self, epoch: int) -> None: ...

    def outputs(self, batch: Any) -> BatchOutputs: ...

    def state_dict(self) -> dict[str, Tensor]: ...

    def load_state_dict(self, state: dict[str, Tensor]) -> None: ...


def check_needs(task: str, needs: frozenset[str], provides: frozenset[str]) -> None:
    """A backstop for code that builds tasks by hand: the config check normally catches this."""
    missing = sorted(needs - provides)
    if missing:
        raise ConfigError(f"{task} cannot provide {missing}; it provides {sorted(provides)}")


def term_context(setup: TaskSetup, positives: Any) -> TermContext:
    """What the terms of ``setup``'s objective may know: sizes, the training matrix, the seed, and
    the popularity of ``positives`` (the item ids the task trains as positives, 0-based)."""
    split, config = setup.split, setup.config
    return TermContext(
        num_users=split.num_users,
        num_items=split.num_items,
        dim=config.trained_model.dim,
        positive_counts=positive_counts(positives, split.num_items, setup.device),
        device=setup.device,
        train=split.csr("train"),
        seed=config.seed,
    )


def positive_counts(items: Any, num_items: int, device: torch.device) -> Tensor:
    """(I,) float32 how often each item id in ``items`` occurs (0-based ids)."""
    counts = np.bincount(np.asarray(items, dtype=np.int64), minlength=num_items)
    return torch.as_tensor(counts, dtype=torch.float32, device=device)
