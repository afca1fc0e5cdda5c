r"""Topology distillation (Kang et al., "Topology Distillation for Recommender System", KDD 2021):
the student matches the teacher's *relations* among the batch's entities, not their coordinates,
so a 10-d student is not asked to copy a 200-d space point by point.

The batch's entities are its distinct users and its distinct (positive and negative) items, users
and items together; relations are cosine similarities (the paper's choice).

* **FTD** (full topology): :math:`\sum_{a,b} (\cos(t_a, t_b) - \cos(s_a, s_b))^2` over every pair.
* **HTD** (hierarchical): an assignment network on the teacher's embedding puts each entity in one
  of G groups per side (users' groups apart from items'); entity-level topology is matched only
  within groups, and group-level topology between each group's prototype (the mean of its
  members) and every entity. The assignment network is trained as DE's selection is (K MLPs map
  the student onto the teacher, Gumbel-softmax at temperature 0.1, the squared error added to the
  term), so groups follow what the student can express.

Like the other distillation terms, the sums are divided by the batch size B. Where the reference
differs: it keeps only same-group pairs whose teacher similarity is positive (a mask trick; here
every same-group pair counts), and it computes the prototypes without gradient (here the student's
prototypes carry it, so the group level trains the student too). The reference's ``utils.sim`` is
not in its repository; cosine is the paper's stated relation.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from recforge.distill.latent import Experts
from recforge.distill.teacher import teacher_tables
from recforge.errors import ConfigError
from recforge.objectives.contrastive import first_occurrences
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.term import Term, TermParams

NEEDS = frozenset({"query_ids", "queries", "positive_ids", "positives", "negative_ids", "negatives"})


def cosine_matrix(a: Tensor, b: Tensor) -> Tensor:
    """(N, M) cosine similarities of the rows of ``a`` (N, d) and ``b`` (M, d)."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


class _TeacherTopology(Term[TermParams]):
    """Shared by FTD and HTD: the batch's distinct entities, student rows beside teacher rows."""

    needs = NEEDS
    teacher_needs = frozenset({"query_embeddings", "item_embeddings"})
    teacher_users: Tensor
    teacher_items: Tensor

    def __init__(self, params: TermParams, context: TermContext) -> None:
        super().__init__(params, context)
        users, items = teacher_tables(context, "topology distillation")
        self.register_buffer("teacher_users", users, persistent=False)
        self.register_buffer("teacher_items", items, persistent=False)

    def entities(self, outputs: BatchOutputs) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Distinct users and items: ids, student rows, teacher rows, each side apart."""
        user_ids, user_rows = outputs["query_ids"], outputs["queries"]
        first = first_occurrences(user_ids)
        negatives = outputs["negatives"]
        item_ids = torch.cat([outputs["positive_ids"], outputs["negative_ids"].reshape(-1)])
        item_rows = torch.cat([outputs["positives"], negatives.reshape(-1, negatives.shape[-1])])
        first_item = first_occurrences(item_ids)
        users, items = user_ids[first], item_ids[first_item]
        return (
            users,
            user_rows[first],
            self.teacher_users[users],
            items,
            item_rows[first_item],
            self.teacher_items[items],
        )


class FTD(_TeacherTopology):
    """Full topology distillation (module docstring)."""

    summary = "TD (full): match the teacher's cosine similarities among the batch's users and items"

    def forward(self, outputs: BatchOutputs) -> Tensor:
        _, student_users, teacher_users, _, student_items, teacher_items = self.entities(outputs)
        student = torch.cat([student_users, student_items])
        teacher = _same_width(teacher_users, teacher_items)
        difference = cosine_matrix(teacher, teacher) - cosine_matrix(student, student)
        return difference.pow(2).sum() / len(outputs["query_ids"])


class HTDParams(TermParams):
    groups: Annotated[int, Field(gt=0, description="groups per side (G)")] = 30
    temperature: Annotated[
        float, Field(gt=0, allow_inf_nan=False, description="Gumbel T of the assignment")
    ] = 0.1


class HTD(_TeacherTopology):
    """Hierarchical topology distillation (module docstring)."""

    Params = HTDParams
    summary = "TD (hierarchical): within-group and prototype-entity relations, groups from the teacher"

    def __init__(self, params: TermParams, context: TermContext) -> None:
        super().__init__(params, context)
        assert isinstance(params, HTDParams)
        self.user_groups = Experts(context.dim, self.teacher_users.shape[1], params.groups)
        self.item_groups = Experts(context.dim, self.teacher_items.shape[1], params.groups)

    def forward(self, outputs: BatchOutputs) -> Tensor:
        params = self.params
        assert isinstance(params, HTDParams)
        _, student_users, teacher_users, _, student_items, teacher_items = self.entities(outputs)
        assignment = self.user_groups(student_users, teacher_users, params.temperature).sum()
        assignment = assignment + self.item_groups(student_items, teacher_items, params.temperature).sum()
        with torch.no_grad():  # each entity's group: the assignment network's choice on the teacher
            groups = torch.cat(
                [
                    self.user_groups.selection(teacher_users).argmax(1),
                    self.item_groups.selection(teacher_items).argmax(1) + params.groups,
                ]
            )
        student = torch.cat([student_users, student_items])
        teacher = _same_width(teacher_users, teacher_items)
        entity_level = within_group_topology(teacher, student, groups)
        members = F.one_hot(groups).T.float()[groups.unique()]  # (G', N)
        members = members / members.sum(1, keepdim=True)
        group_level = cosine_matrix(members @ teacher, teacher) - cosine_matrix(members @ student, student)
        return (entity_level + group_level.pow(2).sum() + assignment) / len(outputs["query_ids"])


def within_group_topology(teacher: Tensor, student: Tensor, groups: Tensor) -> Tensor:
    r""":math:`\sum_{a,b:\,g_a = g_b} (\cos(t_a, t_b) - \cos(s_a, s_b))^2`, one group's block at a time:
    :math:`\sum_g n_g^2` pairs instead of the :math:`N^2` of a masked full matrix (30× fewer at 30
    balanced groups a side). The loop runs over the batch's groups, at most 2G."""
    order = torch.argsort(groups, stable=True)
    counts = torch.bincount(groups)
    sizes = counts[counts > 0].tolist()
    teacher_blocks = F.normalize(teacher[order], dim=-1).split(sizes)
    student_blocks = F.normalize(student[order], dim=-1).split(sizes)
    return torch.stack(
        [(t @ t.T - s @ s.T).pow(2).sum() for t, s in zip(teacher_blocks, student_blocks, strict=True)]
    ).sum()


def _same_width(users: Tensor, items: Tensor) -> Tensor:
    if users.shape[1] != items.shape[1]:
        raise ConfigError(
            f"topology distillation: teacher user ({users.shape[1]}) and item ({items.shape[1]}) "
            "embeddings must share one space"
        )
    return torch.cat([users, items])
