"""RGT's training task: which graph each part of the model sees, step by step.

* Every ``anchor_resample_every`` epochs a new anchor set is drawn and its (n, A) hop weights
  computed once (:mod:`recforge.data.anchors`); the model keeps them as buffers.
* Every ``rationale_every`` steps the transformer scores every training edge (attention summed
  over heads and both directions, on topology-aware embeddings, over the graph plus a few sampled
  non-edges); the top ρ_R·|E| edges under Gumbel noise form the rationale graph G_R, the rest the
  complement G_C. One vectorised top-k: no loop over edges.
* Each step: the recommendation terms score the full-graph LightGCN encoding (what evaluation
  scores); the autoencoder propagates over G_R (the complement is masked) and the position-aware
  transformer decodes along the masked edges to reconstruct them; the views of G_R and G_C feed
  the contrastive, independence and distillation terms of
  :mod:`recforge.objectives.rationale_terms`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from recforge.config import ExperimentConfig, RGTConfig
from recforge.data.anchors import anchor_hop_distances, anchor_weights, bipartite_adjacency, sample_anchors
from recforge.data.graph import normalized_adjacency
from recforge.data.sampling import TrainingBatches, TripletBatch
from recforge.data.split import Split
from recforge.errors import ConfigError
from recforge.models.rgt import RGT, STUDENT_VIEWS
from recforge.objectives.batch_terms import TermParameters, TripletEmbeddings
from recforge.objectives.combine import weighted_sum
from recforge.objectives.rationale_terms import RationaleOutputs, compute_rationale_terms
from recforge.train.task_base import Batches, optimise

SSL_ROWS = 1024
"""At most this many batch nodes (and masked edges) enter the self-supervised terms each step: the
in-batch softmaxes cost O(rows²), and 1024 rows already give each row 1023 negatives."""


class _EpochAwareBatches:
    """Training batches that remember which epoch the current pass is (anchors follow epochs)."""

    def __init__(self, batches: TrainingBatches) -> None:
        self.inner, self.current_epoch = batches, 0

    def set_epoch(self, epoch: int) -> None:
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.inner)

    def __iter__(self) -> Iterator[TripletBatch]:
        self.current_epoch = self.inner.epoch
        return iter(self.inner)


class RationaleTask:
    """(user, positive, negatives) batches through RGT with rationale-aware masking."""

    def __init__(self, model: nn.Module, split: Split, config: ExperimentConfig, device: torch.device):
        if not isinstance(model, RGT) or not isinstance(config.model, RGTConfig):
            raise TypeError(f"RationaleTask trains RGT, not '{config.model.name}'")
        self.model, self.options, self.device = model, config.model, device
        self.weights = config.objective.weights
        self.seed = config.seed
        train = split.csr("train")
        train.sum_duplicates()
        coo = train.tocoo()
        if coo.nnz < 2:
            raise ConfigError(
                "RGT needs at least 2 training interactions to split into rationale and complement, "
                f"got {coo.nnz}"
            )
        self.num_users, self.num_items = split.num_users, split.num_items
        self.edge_users = torch.as_tensor(coo.row, dtype=torch.long, device=device)
        self.edge_items = torch.as_tensor(coo.col, dtype=torch.long, device=device)
        self.dtype = next(model.parameters()).dtype
        self.full_adjacency = normalized_adjacency(train, dtype=self.dtype, device=device)
        self.graph_edges = self._both_directions(self.edge_users, self.edge_items)  # both ways, once
        self.anchor_graph = bipartite_adjacency(train) if model.position is not None else None
        self.anchor_round = -1
        self.anchor_seconds: list[float] = []
        self.epochs = _EpochAwareBatches(
            TrainingBatches(
                split.train,
                num_items=split.num_items,
                batch_size=config.train.batch_size,
                num_negatives=config.train.num_negatives,
                seed=config.seed,
            )
        )
        self.batches: Batches = self.epochs
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.term_parameters = TermParameters(
            temperature=config.objective.temperature,
            alignment_alpha=config.objective.alignment_alpha,
            uniformity_t=config.objective.uniformity_t,
        )
        self.steps = 0  # anchors are drawn at the first step: a reloaded model keeps its own

    # -- graphs ------------------------------------------------------------------------------------

    def _both_directions(self, users: Tensor, items: Tensor) -> Tensor:
        item_nodes = items + self.num_users
        return torch.stack([torch.cat([users, item_nodes]), torch.cat([item_nodes, users])])

    def _with_self_loops(self, edges: Tensor) -> Tensor:
        loops = torch.arange(self.num_users + self.num_items, device=edges.device)
        return torch.cat([edges, torch.stack([loops, loops])], dim=1)

    def _adjacency(self, keep: Tensor) -> Tensor:
        users, items = self.edge_users[keep].cpu().numpy(), self.edge_items[keep].cpu().numpy()
        matrix = sp.csr_matrix(
            (np.ones(len(users), dtype=np.float32), (users, items)), shape=(self.num_users, self.num_items)
        )
        return normalized_adjacency(matrix, dtype=self.dtype, device=self.device)

    def _update_anchors(self, epoch: int) -> None:
        """A new anchor set at the start of every resampling period (a function of the epoch, so a
        resumed run draws the same sets)."""
        if self.anchor_graph is None:
            return
        period = self.options.anchor_resample_every
        anchor_round = 0 if period == 0 else epoch // period
        if anchor_round == self.anchor_round:
            return
        started = time.perf_counter()
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(anchor_round, 31)))
        anchors = sample_anchors(self.anchor_graph.shape[0], self.options.anchors, rng)
        distances = anchor_hop_distances(self.anchor_graph, anchors, self.options.anchor_cutoff)
        self.model.set_anchors(anchors, anchor_weights(distances, self.options.anchor_cutoff))
        self.anchor_seconds.append(time.perf_counter() - started)
        self.anchor_round = anchor_round

    @torch.no_grad()
    def _update_rationale(self) -> None:
        """Score every interaction by attention and split the graph into G_R (top ρ_R·|E| under
        Gumbel noise) and G_C; rebuild the encoder graphs and the decoder's edge list."""
        num_edges = len(self.edge_users)
        extra = int(self.options.extra_pair_ratio * num_edges)
        extra_users = torch.randint(self.num_users, (extra,), generator=self.generator, device=self.device)
        extra_items = torch.randint(self.num_items, (extra,), generator=self.generator, device=self.device)
        extra_edges = self._both_directions(extra_users, extra_items)
        attended = torch.cat([self.graph_edges, extra_edges], dim=1)
        importance = self.model.edge_importance(self._with_self_loops(attended))
        per_interaction = importance[:num_edges] + importance[num_edges : 2 * num_edges]  # u->i plus i->u
        uniform = torch.rand(num_edges, generator=self.generator, device=self.device).clamp_(1e-10, 1 - 1e-7)
        gumbel = -torch.log(-torch.log(uniform))
        scores = per_interaction.clamp_min(1e-12).log() + self.options.gumbel_temperature * gumbel
        kept = min(num_edges - 1, max(1, round(self.options.rationale_ratio * num_edges)))
        rationale = torch.zeros(num_edges, dtype=torch.bool, device=self.device)
        rationale[torch.topk(scores, kept).indices] = True
        complement = ~rationale
        self.rationale_adjacency = self._adjacency(rationale)
        self.complement_adjacency = self._adjacency(complement)
        self.masked_users, self.masked_items = self.edge_users[complement], self.edge_items[complement]
        decoder = torch.cat([self._both_directions(self.masked_users, self.masked_items), extra_edges], dim=1)
        self.decoder_edges = self._with_self_loops(decoder)

    # -- training ----------------------------------------------------------------------------------

    def step(self, batch: TripletBatch, optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
        self._update_anchors(self.epochs.current_epoch)
        if self.steps % self.options.rationale_every == 0:
            self._update_rationale()
        self.steps += 1
        model, masking = self.model, self.options.masked_autoencoding
        users, positives, negatives = (
            t.to(self.device) for t in (batch.users, batch.positives, batch.negatives)
        )

        # the recommendation loss sees what evaluation sees (the full-graph encoding); the masked
        # graph, the positions and the transformer feed the self-supervised terms only, as SGL keeps
        # its augmented views out of the main loss (RESULTS.md: each in the scored path cost LastFM
        # Recall@40)
        final = model.encode(self.full_adjacency)
        final_users, final_items = final.split([self.num_users, self.num_items])
        rationale_view = model.encode(self.rationale_adjacency)
        ego_users, ego_items = model.initial_embeddings()
        triplet = TripletEmbeddings.gather(
            final_users, final_items, ego_users, ego_items, users, positives, negatives
        )
        nodes = torch.unique(torch.cat([users, positives + self.num_users]))
        if len(nodes) > SSL_ROWS:
            nodes = nodes[torch.randperm(len(nodes), generator=self.generator, device=self.device)[:SSL_ROWS]]
        needs_complement = "cir" in self.weights or "distill" in self.weights
        complement_view = model.encode(self.complement_adjacency) if needs_complement else rationale_view
        teachers = {
            "final": final[nodes],
            "rationale": rationale_view[nodes],
            "complement": complement_view[nodes],
        }
        students = {}
        if "distill" in self.weights:
            students = {view: model.student(view, model.embedding[nodes]) for view in STUDENT_VIEWS}
        masked_users = masked_items = masked_ids = None
        if masking and "reconstruction" in self.weights:
            # the autoencoder: encode the graph without the masked edges, decode along them
            count = min(len(users), SSL_ROWS)
            picks = torch.randint(
                len(self.masked_users), (count,), generator=self.generator, device=self.device
            )
            masked_ids = self.masked_items[picks]
            targets = torch.cat([self.masked_users[picks], masked_ids + self.num_users])
            decoded = model.decode(rationale_view, self.decoder_edges, targets)  # only these rows
            masked_users, masked_items = decoded.split(count)
        outputs = RationaleOutputs(
            triplet=triplet,
            masked_users=masked_users,
            masked_items=masked_items,
            masked_item_ids=masked_ids,
            rationale=teachers["rationale"],
            complement=teachers["complement"],
            final=teachers["final"],
            students=students,
            teachers=teachers,
        )
        terms = compute_rationale_terms(tuple(self.weights), outputs, self.term_parameters)
        loss, parts = weighted_sum(terms, self.weights)
        optimise(loss, optimizer)
        return {"loss": loss.detach(), **parts}

    @torch.no_grad()
    def embeddings(self, fold: str) -> tuple[Tensor, Tensor]:
        """The encoder over the full training graph (nothing is masked at inference)."""
        self.model.eval()
        users, items = self.model(self.full_adjacency)
        return users, items
