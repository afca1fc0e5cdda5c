"""Graph/CF encoders (MF, LightGCN, GAT) on (user, positive, negatives) triplets.

Each step propagates the whole graph once (``model(**graph)``) and gathers the batch's rows; the
item table itself is available to terms that score against every item.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from torch import Tensor

from recforge.config_base import ModelSettings
from recforge.data.sampling import TrainingBatches, TripletBatch
from recforge.objectives.outputs import BatchOutputs
from recforge.tasks.base import Batches, TaskSetup, check_needs, term_context

TRIPLET_OUTPUTS = frozenset(
    {
        "query_ids",
        "queries",
        "positive_ids",
        "positives",
        "negative_ids",
        "negatives",
        "items",
        "users",
        "ego",
    }
)


class TripletTask:
    """(user, positive, negatives) batches through a graph/CF encoder."""

    @classmethod
    def provides(cls, model: ModelSettings) -> frozenset[str]:
        return TRIPLET_OUTPUTS

    def __init__(self, setup: TaskSetup) -> None:
        check_needs("TripletTask", setup.needs, TRIPLET_OUTPUTS)
        split, config = setup.split, setup.config
        self.model, self.device, self.graph, self.needs = setup.model, setup.device, setup.graph, setup.needs
        self.batches: Batches = TrainingBatches(
            split.train,
            num_items=split.num_items,
            batch_size=config.train.batch_size,
            num_negatives=config.train.num_negatives,
            seed=config.seed,
        )
        self.context = term_context(setup, split.train.items)
        # every graph encoder has it (the embedding contract); nn.Module does not tell a type checker
        self.initial_embeddings = cast(Callable[[], tuple[Tensor, Tensor]], self.model.initial_embeddings)

    def on_epoch(self, epoch: int) -> None:
        self.batches.set_epoch(epoch)

    def outputs(self, batch: TripletBatch) -> BatchOutputs:
        users_all, items_all = self.model(**self.graph)
        users, positives, negatives = (
            t.to(self.device) for t in (batch.users, batch.positives, batch.negatives)
        )
        return triplet_outputs(
            users_all, items_all, self.initial_embeddings, users, positives, negatives, self.needs
        )

    def state_dict(self) -> dict[str, Tensor]:
        return {}  # batches depend on (seed, epoch) only

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        return None


def triplet_outputs(
    users_all: Tensor,
    items_all: Tensor,
    initial_embeddings: Callable[[], tuple[Tensor, Tensor]],
    users: Tensor,
    positives: Tensor,
    negatives: Tensor,
    needs: frozenset[str],
) -> BatchOutputs:
    """The batch's rows of the propagated tables, and of the layer-0 tables when ``ego`` is needed."""
    user, positive, negative = users_all[users], items_all[positives], items_all[negatives]
    outputs = BatchOutputs(
        query_ids=users,
        queries=user,
        positive_ids=positives,
        positives=positive,
        negative_ids=negatives,
        negatives=negative,
        items=items_all,
        users=users_all,
    )
    if "ego" in needs:
        ego_users, ego_items = initial_embeddings()
        if ego_users is users_all and ego_items is items_all:  # MF: output and ego tables are one
            outputs.query_ego, outputs.positive_ego, outputs.negative_ego = user, positive, negative
        else:  # each gather's backward zero-fills a whole table: gather each row set once
            outputs.query_ego = ego_users[users]
            outputs.positive_ego = ego_items[positives]
            outputs.negative_ego = ego_items[negatives]
    return outputs
