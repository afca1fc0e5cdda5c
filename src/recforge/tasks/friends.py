"""SSMTL's training task on a friend graph: a batch of training friendships (u, v), the sampled
k-hop subgraph around both ends, and the views each configured term reads.

* retrieval (``queries``/``positives``/``positive_ids``): the encodings of u and v over the sampled
  subgraph, for the in-batch softmax (``in_batch_softmax``: the other rows' friends are the
  negatives, copies of one's own friend excluded);
* ``cca_views`` (CCA-SSG): the batch's distinct seed nodes encoded twice, each time with a share of
  the subgraph's edges dropped (``edge_drop``) and a share of the feature columns zeroed
  (``feature_drop``), as CCA-SSG augments;
* ``masked_features`` (GraphMAE): a share (``mask_rate``) of the distinct seed nodes have their
  input replaced by the mask token; the decoder reconstructs their feature rows.

Only the views a term asks for are computed (each is one more encoder pass). Every draw (the
subgraph, the augmentations, the mask) comes from a generator seeded by (seed, epoch, batch), so a
resumed run draws the same. The message-passing graph is the training adjacency only: a held-out
friendship never carries a message.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from recforge.config_base import ModelSettings
from recforge.data.neighbor_sampling import sample_subgraph
from recforge.data.sampling import TrainingBatches, TripletBatch
from recforge.errors import ConfigError
from recforge.models.feature_gat import FeatureGATConfig, FriendGAT
from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.self_supervised import CCA_VIEWS, MASKED_FEATURES, CCAViews, MaskedFeatures
from recforge.tasks.base import Batches, TaskSetup, check_needs, term_context

FRIEND_OUTPUTS = frozenset({"queries", "positives", "positive_ids", CCA_VIEWS, MASKED_FEATURES})


class FriendTask:
    """Training friendships through the feature GAT on sampled subgraphs (module docstring)."""

    @classmethod
    def provides(cls, model: ModelSettings) -> frozenset[str]:
        return FRIEND_OUTPUTS

    def __init__(self, setup: TaskSetup) -> None:
        check_needs("FriendTask", setup.needs, FRIEND_OUTPUTS)
        settings = setup.config.trained_model
        if not isinstance(setup.model, FriendGAT) or not isinstance(settings, FeatureGATConfig):
            raise ConfigError("FriendTask trains the feature_gat model only")
        self.model, self.settings, self.device, self.needs = setup.model, settings, setup.device, setup.needs
        split = setup.split
        train = split.csr("train")
        self.indptr, self.indices = train.indptr.astype(np.int64), train.indices.astype(np.int64)
        self.batches: Batches = TrainingBatches(
            split.train,
            split.num_items,
            batch_size=setup.config.train.batch_size,
            num_negatives=0,
            seed=setup.config.seed,
        )
        self.context = term_context(setup, split.train.items)
        self.seed, self.epoch, self.batch_index = setup.config.seed, 0, 0

    def on_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)
        self.epoch, self.batch_index = epoch, 0

    def outputs(self, batch: TripletBatch) -> BatchOutputs:
        rng = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(self.epoch, self.batch_index, 29))
        )
        self.batch_index += 1
        users, friends = batch.users.numpy(), batch.positives.numpy()
        sub = sample_subgraph(
            self.indptr, self.indices, np.concatenate([users, friends]), self.settings.fanouts, rng
        )
        nodes = torch.from_numpy(sub.nodes).to(self.device)
        edges = torch.from_numpy(sub.edge_index).to(self.device)
        seeds = torch.from_numpy(sub.seed_index).to(self.device)
        encoded = self.model.encode(nodes, edges)
        size = len(users)
        outputs = BatchOutputs(
            queries=encoded[seeds[:size]],
            positives=encoded[seeds[size:]],
            positive_ids=torch.from_numpy(friends).to(self.device),
        )
        distinct = len(np.unique(sub.seed_index))  # the distinct seeds are the first local ids
        if CCA_VIEWS in self.needs:
            outputs.views[CCA_VIEWS] = CCAViews(
                *(self._augmented(nodes, sub.edge_index, rng)[:distinct] for _ in range(2))
            )
        if MASKED_FEATURES in self.needs:
            outputs.views[MASKED_FEATURES] = self._masked(nodes, edges, distinct, rng)
        return outputs

    def _augmented(self, nodes: Tensor, edge_index: np.ndarray, rng: np.random.Generator) -> Tensor:
        kept_edges = edge_index[:, rng.random(edge_index.shape[1]) >= self.settings.edge_drop]
        keep_columns = torch.from_numpy(rng.random(self.model.num_features) >= self.settings.feature_drop)
        return self.model.encode(
            nodes, torch.from_numpy(kept_edges).to(self.device), feature_keep=keep_columns.to(self.device)
        )

    def _masked(
        self, nodes: Tensor, edges: Tensor, distinct: int, rng: np.random.Generator
    ) -> MaskedFeatures:
        count = max(1, round(self.settings.mask_rate * distinct))
        chosen = rng.choice(distinct, size=count, replace=False)
        masked = torch.zeros(len(nodes), dtype=torch.bool, device=self.device)
        masked[torch.from_numpy(chosen).to(self.device)] = True
        encoded = self.model.encode(nodes, edges, masked=masked)
        reconstructed = self.model.encoder.reconstruct(encoded[masked])
        return MaskedFeatures(self.model.feature_rows(nodes[masked]).to_dense(), reconstructed)

    def state_dict(self) -> dict[str, Tensor]:
        return {}  # every draw is a function of (seed, epoch, batch); dropout uses torch's saved RNG

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None


__all__ = ["FRIEND_OUTPUTS", "FriendTask"]
