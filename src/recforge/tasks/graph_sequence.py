"""GSAU: each step encodes a batch of sequence windows and propagates the graph once, so the
sequence terms (``ce``, ``alignment``, ``sequence_uniformity``) and the graph terms
(``graph_alignment``, ``graph_uniformity``) of :mod:`recforge.objectives.graph_sequence_terms`
train one shared item table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from recforge.config_base import ModelSettings
from recforge.data.dataset import Interactions
from recforge.data.sequences import SequenceBatch, SequenceBatches, sequence_examples
from recforge.errors import RecforgeError
from recforge.models.gsau import GSAU
from recforge.objectives.graph_sequence_terms import GRAPH_PAIRS, GraphPairs
from recforge.objectives.outputs import BatchOutputs
from recforge.tasks.base import Batches, TaskSetup, check_needs, term_context
from recforge.tasks.sequence import max_length_of

GRAPH_SEQUENCE_OUTPUTS = frozenset({"queries", "positive_ids", "positives", "items", GRAPH_PAIRS})


@dataclass(frozen=True)
class PairBatch:
    """Training (user, item) pairs, (P,) each, 0-based."""

    users: Tensor
    items: Tensor


class JointBatches:
    """Sequence windows zipped with the training (user, item) pairs: a pass visits every window
    once and every training pair once, the pairs shuffled and cut into as many near-equal batches
    as there are window batches. The pair order depends on ``(seed, epoch)`` only."""

    def __init__(self, windows: SequenceBatches, train: Interactions, *, seed: int) -> None:
        if len(train) < len(windows):
            raise RecforgeError(
                f"JointBatches: {len(train)} training pairs cannot fill {len(windows)} window batches"
            )
        self.windows, self.seed = windows, seed
        self.users = torch.as_tensor(train.users, dtype=torch.long)
        self.items = torch.as_tensor(train.items, dtype=torch.long)

    def set_epoch(self, epoch: int) -> None:
        self.windows.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.windows)

    def __iter__(self) -> Iterator[tuple[SequenceBatch, PairBatch]]:
        epoch = self.windows.epoch  # read before the window pass advances it
        if not len(self.windows):
            return iter(())
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(epoch, 1)))
        chunks = np.array_split(rng.permutation(len(self.users)), len(self.windows))
        pairs = (PairBatch(self.users[chunk], self.items[chunk]) for chunk in map(torch.from_numpy, chunks))
        return zip(self.windows, pairs, strict=True)


class GraphSequenceTask:
    """GSAU on joint batches: sequence positions as queries, training pairs as the graph view."""

    @classmethod
    def provides(cls, model: ModelSettings) -> frozenset[str]:
        return GRAPH_SEQUENCE_OUTPUTS

    def __init__(self, setup: TaskSetup) -> None:
        check_needs("GraphSequenceTask", setup.needs, GRAPH_SEQUENCE_OUTPUTS)
        if not isinstance(setup.model, GSAU):
            raise TypeError(f"GraphSequenceTask trains GSAU, not {type(setup.model).__name__}")
        split, config = setup.split, setup.config
        self.model, self.device, self.needs = setup.model, setup.device, setup.needs
        self.adjacency = setup.graph["normalized_adjacency"]
        examples = sequence_examples(split.train, split.num_users, max_length_of(config.trained_model))
        windows = SequenceBatches(
            examples, split.num_items, batch_size=config.train.batch_size, seed=config.seed
        )
        self.batches: Batches = JointBatches(windows, split.train, seed=config.seed)
        targets = examples.targets[examples.targets > 0] - 1
        self.context = term_context(setup, targets)

    def on_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def outputs(self, batch: tuple[SequenceBatch, PairBatch]) -> BatchOutputs:
        windows, pairs = batch
        inputs, targets = windows.inputs.to(self.device), windows.targets.to(self.device)
        user_ids, item_ids = pairs.users.to(self.device), pairs.items.to(self.device)
        hidden = self.model(inputs)
        is_target = targets > 0
        users_all, items_all = self.model.graph_embeddings(self.adjacency)
        graph_pairs = GraphPairs(
            users=users_all[user_ids], items=items_all[item_ids], user_ids=user_ids, item_ids=item_ids
        )
        queries = hidden[is_target]
        positive_ids = targets[is_target] - 1  # sequence ids are shifted by one (0 = padding)
        items = self.model.item_embeddings()
        outputs = BatchOutputs(
            queries=queries, positive_ids=positive_ids, items=items, views={GRAPH_PAIRS: graph_pairs}
        )
        if "positives" in self.needs:
            outputs.positives = items[positive_ids]
        return outputs

    def state_dict(self) -> dict[str, Tensor]:
        return {}  # batches depend on (seed, epoch) only; dropout and L_SU draw from torch's saved RNG

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None
