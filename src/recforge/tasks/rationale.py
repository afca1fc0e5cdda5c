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

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from recforge.config_base import ModelSettings
from recforge.data.anchors import anchor_hop_distances, anchor_weights, bipartite_adjacency, sample_anchors
from recforge.data.graph import normalized_adjacency
from recforge.data.sampling import TrainingBatches, TripletBatch
from recforge.errors import ConfigError
from recforge.models.rgt import RGT, RGTConfig
from recforge.objectives.outputs import BatchOutputs
from recforge.objectives.rationale_terms import (
    COMPLEMENT_VIEWS,
    MASKED_EDGES,
    NODE_EGO,
    RATIONALE_VIEWS,
    MaskedEdges,
    NodeRows,
    RationaleViews,
)
from recforge.tasks.base import Batches, TaskSetup, check_needs, term_context
from recforge.tasks.triplet import TRIPLET_OUTPUTS, triplet_outputs

SSL_ROWS = 1024
"""At most this many batch nodes (and masked edges) enter the self-supervised terms each step: the
in-batch softmaxes cost O(rows²), and 1024 rows already give each row 1023 negatives."""


class RationaleTask:
    """(user, positive, negatives) batches through RGT with rationale-aware masking."""

    @classmethod
    def provides(cls, model: ModelSettings) -> frozenset[str]:
        views = {RATIONALE_VIEWS, COMPLEMENT_VIEWS, NODE_EGO}
        if isinstance(model, RGTConfig) and model.masked_autoencoding:
            views.add(MASKED_EDGES)  # without the autoencoder nothing is decoded
        return TRIPLET_OUTPUTS | views

    def __init__(self, setup: TaskSetup) -> None:
        model, split, config, device = setup.model, setup.split, setup.config, setup.device
        if not isinstance(model, RGT) or not isinstance(config.model, RGTConfig):
            raise TypeError(f"RationaleTask trains RGT, not '{config.model.name}'")
        check_needs("RationaleTask", setup.needs, self.provides(config.model))
        self.model, self.options, self.device, self.needs = model, config.model, device, setup.needs
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
        self.full_adjacency = setup.graph["normalized_adjacency"]
        self.graph_edges = self._both_directions(self.edge_users, self.edge_items)  # both ways, once
        self.anchor_graph = bipartite_adjacency(train) if model.position is not None else None
        self.anchor_round = -1
        self.anchor_seconds: list[float] = []
        self.batches: Batches = TrainingBatches(
            split.train,
            num_items=split.num_items,
            batch_size=config.train.batch_size,
            num_negatives=config.train.num_negatives,
            seed=config.seed,
        )
        self.context = term_context(setup, split.train.items)
        self.generator = torch.Generator(device=device).manual_seed(config.seed)
        self.steps = 0
        self.rationale: Tensor | None = None  # the current split of the edges, drawn at step 0
        self.extra_users = self.extra_items = torch.zeros(0, dtype=torch.long, device=device)

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)
        self._update_anchors(epoch)

    def state_dict(self) -> dict[str, Tensor]:
        """The generator, the step counter, the anchor round and the current rationale split (the
        anchors themselves are model buffers, saved with the weights)."""
        state = {
            "generator": self.generator.get_state(),
            "counters": torch.tensor([self.steps, self.anchor_round], dtype=torch.long),
            "extra_users": self.extra_users.cpu(),
            "extra_items": self.extra_items.cpu(),
        }
        if self.rationale is not None:
            state["rationale"] = self.rationale.cpu()
        return state

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.steps, self.anchor_round = (int(value) for value in state["counters"])
        if "rationale" in state:
            self._install_rationale(
                state["rationale"].to(self.device),
                state["extra_users"].to(self.device),
                state["extra_items"].to(self.device),
            )

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
        Gumbel noise) and G_C."""
        num_edges = len(self.edge_users)
        extra = int(self.options.extra_pair_ratio * num_edges)
        extra_users = torch.randint(self.num_users, (extra,), generator=self.generator, device=self.device)
        extra_items = torch.randint(self.num_items, (extra,), generator=self.generator, device=self.device)
        attended = torch.cat([self.graph_edges, self._both_directions(extra_users, extra_items)], dim=1)
        importance = self.model.edge_importance(self._with_self_loops(attended))
        per_interaction = importance[:num_edges] + importance[num_edges : 2 * num_edges]  # u->i plus i->u
        uniform = torch.rand(num_edges, generator=self.generator, device=self.device).clamp_(1e-10, 1 - 1e-7)
        gumbel = -torch.log(-torch.log(uniform))
        scores = per_interaction.clamp_min(1e-12).log() + self.options.gumbel_temperature * gumbel
        kept = min(num_edges - 1, max(1, round(self.options.rationale_ratio * num_edges)))
        rationale = torch.zeros(num_edges, dtype=torch.bool, device=self.device)
        rationale[torch.topk(scores, kept).indices] = True
        self._install_rationale(rationale, extra_users, extra_items)

    def _install_rationale(self, rationale: Tensor, extra_users: Tensor, extra_items: Tensor) -> None:
        """Rebuild the encoder graphs of G_R and G_C and the decoder's edge list (the masked edges
        both ways, the sampled extra pairs, self-loops) from one split of the edges."""
        self.rationale, self.extra_users, self.extra_items = rationale, extra_users, extra_items
        complement = ~rationale
        self.rationale_adjacency = self._adjacency(rationale)
        self.complement_adjacency = self._adjacency(complement)
        self.masked_users, self.masked_items = self.edge_users[complement], self.edge_items[complement]
        decoder = torch.cat(
            [
                self._both_directions(self.masked_users, self.masked_items),
                self._both_directions(extra_users, extra_items),
            ],
            dim=1,
        )
        self.decoder_edges = self._with_self_loops(decoder)

    # -- training ----------------------------------------------------------------------------------

    def outputs(self, batch: TripletBatch) -> BatchOutputs:
        if self.steps % self.options.rationale_every == 0:
            self._update_rationale()
        self.steps += 1
        model, needs = self.model, self.needs
        users, positives, negatives = (
            t.to(self.device) for t in (batch.users, batch.positives, batch.negatives)
        )

        # the recommendation terms see what evaluation sees (the full-graph encoding); the masked
        # graph, the positions and the transformer feed the self-supervised terms only, as SGL keeps
        # its augmented views out of the main loss (RESULTS.md: each in the scored path cost LastFM
        # Recall@40)
        final = model.encode(self.full_adjacency)
        final_users, final_items = final.split([self.num_users, self.num_items])
        rationale_view = model.encode(self.rationale_adjacency)
        outputs = triplet_outputs(
            final_users, final_items, model.initial_embeddings, users, positives, negatives, needs
        )
        nodes = torch.unique(torch.cat([users, positives + self.num_users]))
        if len(nodes) > SSL_ROWS:
            nodes = nodes[torch.randperm(len(nodes), generator=self.generator, device=self.device)[:SSL_ROWS]]
        outputs.views[RATIONALE_VIEWS] = RationaleViews(final=final[nodes], rationale=rationale_view[nodes])
        if COMPLEMENT_VIEWS in needs:
            outputs.views[COMPLEMENT_VIEWS] = NodeRows(model.encode(self.complement_adjacency)[nodes])
        if NODE_EGO in needs:
            outputs.views[NODE_EGO] = NodeRows(model.embedding[nodes])
        if MASKED_EDGES in needs:
            # the autoencoder: encode the graph without the masked edges, decode along them
            count = min(len(users), SSL_ROWS)
            picks = torch.randint(
                len(self.masked_users), (count,), generator=self.generator, device=self.device
            )
            masked_ids = self.masked_items[picks]
            targets = torch.cat([self.masked_users[picks], masked_ids + self.num_users])
            decoded = model.decode(rationale_view, self.decoder_edges, targets)  # only these rows
            masked_users, masked_items = decoded.split(count)
            outputs.views[MASKED_EDGES] = MaskedEdges(
                users=masked_users, items=masked_items, item_ids=masked_ids
            )
        return outputs
