"""What the one training loop trains on: a task gives batches, one optimisation step, and the
query and item embeddings to evaluate with (DESIGN idea 1: every model is scored by dot products).

* :class:`TripletTask`: graph/CF encoders (MF, LightGCN) on (user, positive, negatives) triplets;
  a user's query embedding is the same for every fold.
* :class:`SequenceTask`: sequential encoders (SASRec, GRU4Rec) on shifted next-item windows; a
  user's query is the history before the held-out item, so it differs between valid and test.
* :class:`GraphSequenceTask`: GSAU, windows and training pairs together.
* :class:`~recforge.train.rationale_task.RationaleTask`: RGT, triplets with rationale-aware masking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recforge.config import (
    GRAPH_SEQUENCE_MODELS,
    RATIONALE_MODELS,
    SEQUENTIAL_MODELS,
    ExperimentConfig,
    GRU4RecConfig,
    GSAUConfig,
    SASRecConfig,
)
from recforge.data.dataset import Interactions
from recforge.data.graph import normalized_adjacency
from recforge.data.sampling import TrainingBatches, TripletBatch
from recforge.data.sequences import SequenceBatch, SequenceBatches, evaluation_queries, sequence_examples
from recforge.data.split import Split
from recforge.errors import RecforgeError
from recforge.models.gsau import GSAU
from recforge.models.registry import model_inputs
from recforge.objectives.batch_terms import TermParameters, TripletEmbeddings, compute_terms
from recforge.objectives.combine import weighted_sum
from recforge.objectives.graph_sequence_terms import (
    GRAPH_SEQUENCE_TERMS,
    GraphSequenceOutputs,
    GraphSequenceTermParameters,
)
from recforge.objectives.sequence_terms import SEQUENCE_TERMS, NextItemOutputs, SequenceTermParameters
from recforge.objectives.sequential import dros_item_weights
from recforge.train.rationale_task import RationaleTask
from recforge.train.task_base import Batches, Task, optimise


def make_task(model: nn.Module, split: Split, config: ExperimentConfig, device: torch.device) -> Task:
    """The task that trains ``model`` as ``config`` says."""
    if config.model.name in SEQUENTIAL_MODELS:
        return SequenceTask(model, split, config, device)
    if config.model.name in GRAPH_SEQUENCE_MODELS:
        return GraphSequenceTask(model, split, config, device)
    if config.model.name in RATIONALE_MODELS:
        return RationaleTask(model, split, config, device)
    return TripletTask(model, split, config, device)


class TripletTask:
    """(user, positive, negatives) batches through a graph/CF encoder and the triplet terms."""

    def __init__(self, model: nn.Module, split: Split, config: ExperimentConfig, device: torch.device):
        self.model, self.device = model, device
        self.inputs = model_inputs(model, split.csr("train"), device)
        self.batches: Batches = TrainingBatches(
            split.train,
            num_items=split.num_items,
            batch_size=config.train.batch_size,
            num_negatives=config.train.num_negatives,
            seed=config.seed,
        )
        self.weights = config.objective.weights
        self.term_parameters = TermParameters(
            temperature=config.objective.temperature,
            alignment_alpha=config.objective.alignment_alpha,
            uniformity_t=config.objective.uniformity_t,
        )
        # every graph encoder has it (the embedding contract); nn.Module does not tell a type checker
        self.initial_embeddings = cast(Callable[[], tuple[Tensor, Tensor]], model.initial_embeddings)

    def step(self, batch: TripletBatch, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
        """Propagate, gather the batch's rows, add the weighted terms, step; returns them detached."""
        users_all, items_all = self.model(**self.inputs)
        user_ego, item_ego = self.initial_embeddings()
        users, positives, negatives = (
            t.to(self.device) for t in (batch.users, batch.positives, batch.negatives)
        )
        embeddings = TripletEmbeddings.gather(
            users_all, items_all, user_ego, item_ego, users, positives, negatives
        )
        loss, parts = weighted_sum(
            compute_terms(tuple(self.weights), embeddings, self.term_parameters), self.weights
        )
        optimise(loss, optimizer)
        # tensors, not floats: summing them needs no device sync per step on CUDA
        return {"loss": loss.detach(), **parts}

    @torch.no_grad()
    def embeddings(self, fold: str) -> tuple[Tensor, Tensor]:
        self.model.eval()
        users, items = self.model(**self.inputs)
        return users, items


class SequenceTask:
    """Shifted next-item windows through a sequential encoder and the next-item terms."""

    def __init__(self, model: nn.Module, split: Split, config: ExperimentConfig, device: torch.device):
        self.model, self.split, self.device = model, split, device
        if not isinstance(config.model, SASRecConfig | GRU4RecConfig):
            raise TypeError(f"SequenceTask trains sequential encoders, not '{config.model.name}'")
        self.max_length = config.model.max_length
        self.weights = config.objective.weights
        examples = sequence_examples(split.train, split.num_users, self.max_length)
        num_negatives = config.train.num_negatives if "bce" in self.weights else 0
        self.batches: Batches = SequenceBatches(
            examples,
            split.num_items,
            batch_size=config.train.batch_size,
            num_negatives=num_negatives,
            seed=config.seed,
        )
        self.item_weights: Tensor | None = None
        if "dros" in self.weights:
            # popularity of each item as a training target, the nominal distribution of DROS
            counts = np.bincount(examples.targets[examples.targets > 0] - 1, minlength=split.num_items)
            self.item_weights = dros_item_weights(
                torch.as_tensor(counts, dtype=torch.float32, device=device),
                exponent=config.objective.dros_exponent,
            )
        self.term_parameters = SequenceTermParameters(dros_beta=config.objective.dros_beta)
        self.item_table = cast(Callable[[], Tensor], model.item_embeddings)
        self.query = cast(Callable[[Tensor], Tensor], model.query_embeddings)

    def step(self, batch: SequenceBatch, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
        """States at the non-padding positions only: on short-sequence data (Amazon: ~9 items in
        windows of 50) most positions are padding, and a full softmax over them would be waste."""
        inputs, targets, negatives = (
            t.to(self.device) for t in (batch.inputs, batch.targets, batch.negatives)
        )
        hidden = self.model(inputs)
        is_target = targets > 0
        outputs = NextItemOutputs(
            hidden=hidden[is_target],
            targets=targets[is_target] - 1,  # sequence ids are shifted by one (0 = padding)
            negatives=negatives[is_target] - 1,
            items=self.item_table(),
            item_weights=self.item_weights,
        )
        terms = {name: SEQUENCE_TERMS[name](outputs, self.term_parameters) for name in self.weights}
        loss, parts = weighted_sum(terms, self.weights)
        optimise(loss, optimizer)
        return {"loss": loss.detach(), **parts}

    @torch.no_grad()
    def embeddings(self, fold: str) -> tuple[Tensor, Tensor]:
        self.model.eval()
        items = self.item_table()
        return sequence_queries(self.query, self.split, fold, self.max_length, items), items


def sequence_queries(
    query: Callable[[Tensor], Tensor],
    split: Split,
    fold: str,
    max_length: int,
    items: Tensor,
    batch_size: int = 1024,
) -> Tensor:
    """Each evaluated user's query: the encoder's state after the history before ``fold``'s item
    (for test, the valid item is part of it). Users without an item in ``fold`` get zeros; the
    evaluator never scores them."""
    users, sequences = evaluation_queries(split, fold, max_length)
    queries = torch.zeros(split.num_users, items.shape[1], dtype=items.dtype, device=items.device)
    user_rows = torch.as_tensor(users, device=items.device)
    for start in range(0, len(users), batch_size):
        block = torch.as_tensor(sequences[start : start + batch_size], device=items.device)
        queries[user_rows[start : start + batch_size]] = query(block)
    return queries


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
    """GSAU: each step propagates the graph once, encodes a batch of windows, and adds the graph
    and sequence terms of :mod:`recforge.objectives.graph_sequence_terms`."""

    def __init__(self, model: nn.Module, split: Split, config: ExperimentConfig, device: torch.device):
        if not isinstance(model, GSAU) or not isinstance(config.model, GSAUConfig):
            raise TypeError(f"GraphSequenceTask trains GSAU, not '{config.model.name}'")
        self.model, self.split, self.device = model, split, device
        self.max_length, self.score_with = config.model.max_length, config.model.score_with
        self.weights = config.objective.weights
        self.adjacency = normalized_adjacency(
            split.csr("train"), dtype=next(model.parameters()).dtype, device=device
        )
        windows = SequenceBatches(
            sequence_examples(split.train, split.num_users, self.max_length),
            split.num_items,
            batch_size=config.train.batch_size,
            seed=config.seed,
        )
        self.batches: Batches = JointBatches(windows, split.train, seed=config.seed)
        self.term_parameters = GraphSequenceTermParameters(
            alignment_alpha=config.objective.alignment_alpha, uniformity_t=config.objective.uniformity_t
        )

    def step(
        self, batch: tuple[SequenceBatch, PairBatch], optimizer: torch.optim.Optimizer
    ) -> dict[str, Tensor]:
        windows, pairs = batch
        inputs, targets = windows.inputs.to(self.device), windows.targets.to(self.device)
        user_ids, item_ids = pairs.users.to(self.device), pairs.items.to(self.device)
        hidden = self.model(inputs)
        is_target = targets > 0
        users_all, items_all = self.model.graph_embeddings(self.adjacency)
        outputs = GraphSequenceOutputs(
            graph_users=users_all[user_ids],
            graph_items=items_all[item_ids],
            user_ids=user_ids,
            item_ids=item_ids,
            hidden=hidden[is_target],
            targets=targets[is_target] - 1,  # sequence ids are shifted by one (0 = padding)
            items=self.model.item_embeddings(),
        )
        terms = {name: GRAPH_SEQUENCE_TERMS[name](outputs, self.term_parameters) for name in self.weights}
        loss, parts = weighted_sum(terms, self.weights)
        optimise(loss, optimizer)
        return {"loss": loss.detach(), **parts}

    @torch.no_grad()
    def embeddings(self, fold: str) -> tuple[Tensor, Tensor]:
        """Queries and items as ``score_with`` says; ``both`` concatenates the unit-normalised
        sequence and graph embeddings, so a dot product is the sum of the two cosines."""
        self.model.eval()
        items = self.model.item_embeddings()
        if self.score_with == "sequence":
            return sequence_queries(
                self.model.query_embeddings, self.split, fold, self.max_length, items
            ), items
        graph_users, graph_items = self.model.graph_embeddings(self.adjacency)
        graph_users, graph_items = F.normalize(graph_users, dim=-1), F.normalize(graph_items, dim=-1)
        if self.score_with == "graph":
            return graph_users, graph_items
        queries = sequence_queries(self.model.query_embeddings, self.split, fold, self.max_length, items)
        return (
            torch.cat([F.normalize(queries, dim=-1), graph_users], dim=1),
            torch.cat([F.normalize(items, dim=-1), graph_items], dim=1),
        )
