"""What a training task hands the objective for one batch, and what a term may know of the data.

Every task returns one :class:`BatchOutputs`, whatever the model family: the batch's query rows
(users for graph/CF models, sequence states for sequential ones) with their ids, the positive and
negative items with theirs, the full item table when a term asks for it, the layer-0 ("ego") rows
an L2 term penalises, and named extra views (GSAU's graph pairs, RGT's rationale graphs). A term
declares the names it reads (:attr:`recforge.objectives.term.Term.needs`); a task declares the
names it can fill (``Task.provides``); the config is refused when they do not meet, so a term never
finds a field missing at step 1000.

Field names (the strings of ``needs``/``provides``):

=================  =============================================================================
``query_ids``      (B,) int64: the user of each query row (graph/CF tasks)
``queries``        (B, d): user rows, or sequence states at the batch's target positions
``positive_ids``   (B,) int64: each row's positive item (0-based)
``positives``      (B, d): the positive items' rows
``negative_ids``   (B, n) int64: sampled negative items
``negatives``      (B, n, d): their rows
``items``          (I, d): the whole item table the queries are scored against
``users``          (U, d): the whole user table (graph/CF tasks: the rows ``queries`` are taken from)
``ego``            ``query_ego`` (B, d), ``positive_ego`` (B, d), ``negative_ego`` (B, n, d): layer-0 rows
=================  =============================================================================

Any other name is a view in :attr:`BatchOutputs.views`, read with :meth:`BatchOutputs.view`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

if TYPE_CHECKING:
    from recforge.distill.teacher import TeacherSignal

FIELDS = (
    "query_ids",
    "queries",
    "positive_ids",
    "positives",
    "negative_ids",
    "negatives",
    "items",
    "users",
    "ego",
)
"""The named tensor fields of :class:`BatchOutputs` (``ego`` stands for the three ``*_ego`` rows)."""

ViewType = TypeVar("ViewType")


POSITIONS = "positions"
"""The view name of :class:`QueryPositions`."""


@dataclass(frozen=True)
class QueryPositions:
    """The ``positions`` view of sequential tasks: which training prefix each query row is, as
    ``users`` (N,) and ``steps`` (N,) (the prefix length), int64: what finds a per-prefix teacher
    row (:class:`~recforge.distill.teacher.TeacherSignal` with ``queries="positions"``)."""

    users: Tensor
    steps: Tensor


@dataclass
class BatchOutputs:
    """One batch's computed rows; fields a task does not provide stay ``None``."""

    query_ids: Tensor | None = None
    queries: Tensor | None = None
    positive_ids: Tensor | None = None
    positives: Tensor | None = None
    negative_ids: Tensor | None = None
    negatives: Tensor | None = None
    items: Tensor | None = None
    users: Tensor | None = None
    query_ego: Tensor | None = None
    positive_ego: Tensor | None = None
    negative_ego: Tensor | None = None
    views: dict[str, object] = field(default_factory=dict)
    _item_scores: Tensor | None = field(default=None, init=False, repr=False)

    def item_scores(self) -> Tensor:
        """(B, I) ``queries @ items.T``, with gradient: computed once per batch and shared by every
        term that scores the whole table (cross-entropy, DROS, a distillation term's student
        top-K), since that product and its backward are the largest cost of a sequential step."""
        if self._item_scores is None:
            self._item_scores = self["queries"] @ self["items"].T
        return self._item_scores

    def __getitem__(self, name: str) -> Tensor:
        """The tensor field ``name``; a missing one is a task that broke its ``provides`` promise."""
        value = getattr(self, name, None) if name in _TENSOR_FIELDS else None
        if not isinstance(value, Tensor):
            raise KeyError(f"the task computed no '{name}' for this batch (fields: {list(_TENSOR_FIELDS)})")
        return value

    def view(self, name: str, kind: type[ViewType]) -> ViewType:
        """The extra view ``name``, checked to be a ``kind``."""
        value = self.views.get(name)
        if not isinstance(value, kind):
            raise KeyError(f"the task computed no '{name}' view ({kind.__name__}) for this batch")
        return value


_TENSOR_FIELDS = (
    "query_ids",
    "queries",
    "positive_ids",
    "positives",
    "negative_ids",
    "negatives",
    "items",
    "users",
    "query_ego",
    "positive_ego",
    "negative_ego",
)


@dataclass(frozen=True)
class TermContext:
    """What a term may know of the training data when it is built (never per batch).

    Attributes:
        num_users, num_items: the id space.
        dim: the size of the rows in :class:`BatchOutputs` (a term with heads sizes them by it).
        positive_counts: (I,) float32, how often each item is a training positive of this task
            (interactions for graph/CF tasks, next-item targets for sequential ones): the
            popularity DROS and a log-Q correction weigh by.
        device: where the term's own tensors live.
        train: (U, I) binary CSR of the training fold (what a distillation term must not sample
            as "uninteresting"), or None where the task has no user-item matrix to give.
        seed: the experiment's seed, from which a term derives per-epoch draws (so a resumed run
            draws the same).
        teacher: the experiment's TeacherSignal (``objective.teacher``), checked against the split,
            or None.
        train_lengths: (U,) int64 each user's train sequence length, repeats counted (sequential
            tasks; the binary ``train`` matrix cannot say), or None.
    """

    num_users: int
    num_items: int
    dim: int
    positive_counts: Tensor
    device: torch.device
    train: sp.csr_matrix | None = None
    seed: int = 0
    teacher: TeacherSignal | None = None
    train_lengths: np.ndarray | None = None
