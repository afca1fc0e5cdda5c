"""Sequential encoders (SASRec, GRU4Rec) on shifted next-item windows.

A batch's query rows are the encoder's states at the windows' non-padding positions, each
positive the item that follows. On short-sequence data (Amazon: ~9 items in windows of 50) most
positions are padding, and a full softmax over them would be waste, so only target positions are
kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import cast

import numpy as np
from torch import Tensor

from recforge.config_base import ModelSettings
from recforge.data.sequences import SequenceBatch, SequenceBatches, sequence_examples
from recforge.errors import ConfigError
from recforge.objectives.outputs import POSITIONS, BatchOutputs, QueryPositions
from recforge.tasks.base import Batches, TaskSetup, check_needs, term_context

SEQUENCE_OUTPUTS = frozenset(
    {"queries", "positive_ids", "positives", "negative_ids", "negatives", "items", POSITIONS}
)


def max_length_of(model: ModelSettings) -> int:
    max_length = getattr(model, "max_length", None)
    if not isinstance(max_length, int):
        raise ConfigError(f"model '{model.name}' has no max_length: it is not a sequential model")
    return max_length


class SequenceTask:
    """Shifted next-item windows through a sequential encoder."""

    @classmethod
    def provides(cls, model: ModelSettings) -> frozenset[str]:
        return SEQUENCE_OUTPUTS

    def __init__(self, setup: TaskSetup) -> None:
        check_needs("SequenceTask", setup.needs, SEQUENCE_OUTPUTS)
        split, config = setup.split, setup.config
        self.model, self.device, self.needs = setup.model, setup.device, setup.needs
        self.max_length = max_length_of(config.trained_model)
        examples = sequence_examples(split.train, split.num_users, self.max_length)
        wants_negatives = bool({"negatives", "negative_ids"} & setup.needs)
        self.batches: Batches = SequenceBatches(
            examples,
            split.num_items,
            batch_size=config.train.batch_size,
            num_negatives=config.train.num_negatives if wants_negatives else 0,
            seed=config.seed,
        )
        targets = examples.targets[examples.targets > 0] - 1  # sequence ids are shifted by one
        lengths = np.diff(split.train.sequences(split.num_users)[0])
        self.context = replace(term_context(setup, targets), train_lengths=lengths)
        self.item_table = cast(Callable[[], Tensor], self.model.item_embeddings)

    def on_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def outputs(self, batch: SequenceBatch) -> BatchOutputs:
        inputs, targets, negatives = (
            t.to(self.device) for t in (batch.inputs, batch.targets, batch.negatives)
        )
        outputs = next_item_outputs(self.model(inputs), targets, negatives, self.item_table, self.needs)
        if POSITIONS in self.needs:  # which training prefix each query row is (per-prefix teachers)
            is_target = targets > 0
            users = batch.users.to(self.device).unsqueeze(1).expand_as(targets)
            steps = batch.steps.to(self.device)[is_target]
            outputs.views[POSITIONS] = QueryPositions(users[is_target], steps)
        return outputs

    def state_dict(self) -> dict[str, Tensor]:
        return {}  # batches depend on (seed, epoch) only; dropout draws from torch's saved RNG

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None


def next_item_outputs(
    hidden: Tensor,
    targets: Tensor,
    negatives: Tensor,
    item_table: Callable[[], Tensor],
    needs: frozenset[str],
) -> BatchOutputs:
    """Outputs at the target (non-padding) positions of (B, L) states ``hidden``, ids made 0-based.

    The item table is read after the states are gathered, in the order the earlier task did.
    """
    is_target = targets > 0
    queries = hidden[is_target]
    positive_ids = targets[is_target] - 1  # sequence ids are shifted by one (0 = padding)
    wants_negatives = bool({"negatives", "negative_ids"} & needs)
    negative_ids = negatives[is_target] - 1 if wants_negatives else None
    items = item_table()
    outputs = BatchOutputs(queries=queries, positive_ids=positive_ids, negative_ids=negative_ids, items=items)
    if "positives" in needs:
        outputs.positives = items[positive_ids]
    if negative_ids is not None:
        outputs.negatives = items[negative_ids]
    return outputs


__all__ = ["SEQUENCE_OUTPUTS", "SequenceTask", "max_length_of", "next_item_outputs"]
