"""Turn a validated config into the data of one experiment: the cleaned dataset and its split.

``recforge train``, ``recforge evaluate`` and ``recforge quickstart`` all go through here, so the
same config always yields the same data and split (the encoder comes from :mod:`recforge.recipes`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from recforge.config import ExperimentConfig, SplitConfig
from recforge.config_base import ModelSettings
from recforge.data.dataset import Dataset
from recforge.data.filtering import deduplicate, k_core
from recforge.data.registry import load_dataset
from recforge.data.split import Split
from recforge.data.splitting import load_or_create_split
from recforge.errors import ConfigError
from recforge.evaluation.evaluator import Evaluator
from recforge.models.item_tables import attach_teacher_offset
from recforge.models.scoring import Scorer
from recforge.objectives.objective import Objective, needs_of
from recforge.recipes import graph_inputs, recipe_of
from recforge.tasks.base import Task, TaskSetup

if TYPE_CHECKING:
    from recforge.distill.teacher import TeacherSignal


@dataclass
class PreparedData:
    """The dataset after filtering, the split, and what was done to get there (for the results)."""

    dataset: Dataset
    split: Split
    notes: list[str]

    def id_maps(self) -> dict[str, Any]:
        """Raw ids (and item titles, where the data has them): what inference needs of the dataset."""
        dataset = self.dataset
        maps: dict[str, Any] = {"users": dataset.user_ids.tolist(), "items": dataset.item_ids.tolist()}
        if self.dataset.item_titles is not None:
            maps["item_titles"] = [str(title) for title in self.dataset.item_titles]
        return maps

    def node_features(self) -> sp.csr_matrix | None:
        """The per-user feature matrix a friend graph carries (``user_features["features"]``)."""
        features = self.dataset.user_features.get("features")
        return None if features is None else sp.csr_matrix(features)


def require_folds(config: ExperimentConfig, data: PreparedData) -> None:
    """A run needs valid (selection) and test (the result) interactions; say which is empty."""
    for fold, needed_by in (("valid", "early stopping reads"), ("test", "the result is scored on")):
        if len(data.split.fold(fold)) == 0:
            raise ConfigError(
                f"data.split: the '{config.data.split.protocol}' split of '{data.dataset.name}' has no "
                f"{fold} interactions, and {needed_by} the {fold} fold "
                "(check the data's files and data.split)"
            )


def make_evaluator(config: ExperimentConfig, split: Split) -> Evaluator:
    """The evaluator ``config.evaluation`` describes, over ``split``."""
    evaluation = config.evaluation
    return Evaluator(
        split,
        ks=tuple(evaluation.ks),
        metrics=tuple(evaluation.metrics),
        batch_size=evaluation.batch_size,
        activity_slices=tuple(evaluation.activity_slices),
        sampled_negatives=evaluation.sampled_negatives,
        sampled_seed=evaluation.sampled_seed,
    )


def split_parameters(split: SplitConfig, seed: int) -> dict[str, object]:
    """The keyword arguments each split protocol takes, from the config section."""
    if split.protocol == "given":
        return {"valid_ratio": split.valid_ratio, "seed": seed}
    if split.protocol == "random":
        return {"ratios": split.ratios, "seed": seed}
    if split.protocol == "temporal":
        return {"ratios": split.ratios}
    if split.protocol == "links":
        return {"ratios": split.ratios, "seed": seed, "new_users": split.new_users,
                "new_user_keep": split.new_user_keep}
    return {}


def prepare_data(config: ExperimentConfig, split_path: Path) -> PreparedData:
    """Read, clean and split the data as the config says; the split is saved to (or reloaded from)
    ``split_path`` so later runs and ``recforge evaluate`` see exactly the same folds."""
    data = config.data
    options: dict[str, object] = dict(data.options)
    if data.format:
        options["format"] = data.format
    dataset = load_dataset(data.name, root=data.root, **options)
    notes = list(dataset.notes)
    if data.filter.deduplicate:
        dataset, report = deduplicate(dataset)
        notes.append(str(report))
    if data.filter.min_user_interactions or data.filter.min_item_interactions:
        dataset, report = k_core(
            dataset,
            min_user_interactions=data.filter.min_user_interactions,
            min_item_interactions=data.filter.min_item_interactions,
        )
        notes.append(str(report))
    if data.split.protocol == "links":  # users and items are one set of people: one numbering
        from recforge.data.social import align_friend_ids

        dataset = align_friend_ids(dataset)
    params = split_parameters(data.split, config.split_seed)
    split = load_or_create_split(dataset, data.split.protocol, split_path, **params)
    notes.extend(cold_start_notes(split))
    return PreparedData(dataset=dataset, split=split, notes=notes)


def cold_start_notes(split: Split) -> list[str]:
    """Say how many held-out users and items never occur in training: they stay in the id space
    and are scored with embeddings no training step reached, which a user should know."""
    notes = []
    for kind, ids_of in (("items", lambda part: part.items), ("users", lambda part: part.users)):
        trained = np.unique(ids_of(split.train))
        held_out = np.unique(np.concatenate([ids_of(split.valid), ids_of(split.test)]))
        unseen = np.setdiff1d(held_out, trained, assume_unique=True)
        if len(unseen):
            notes.append(
                f"{len(unseen)} {kind} of the valid/test folds never occur in train; they are kept and "
                "scored with untrained embeddings (cold start)"
            )
    return notes


@dataclass
class Assembly:
    """The pieces the recipe book builds for one experiment, wired together."""

    model: nn.Module
    graph: dict[str, Tensor]
    task: Task
    objective: Objective
    scorer: Scorer
    notes: list[str]


def assemble(
    config: ExperimentConfig,
    split: Split,
    device: torch.device,
    *,
    item_ids: list[str] | None = None,
    item_titles: np.ndarray | None = None,
    node_features: sp.csr_matrix | None = None,
) -> Assembly:
    """Encoder, graph tensors, task, objective and scorer of ``config`` over ``split``.

    The order is part of reproducibility: the encoder draws its weights from torch's RNG first,
    then a teacher offset's projector (``model.teacher_offset``), then the objective its own (RGT's
    distillation heads). A teacher (``objective.teacher``) is loaded and checked against the split,
    the catalogue (``item_ids``) and what the terms and the offset read. A recipe that reads item
    text (the text teacher) gets ``item_titles`` encoded (cached by content)."""
    recipe = recipe_of(config.model.name)
    settings = config.trained_model
    teacher = None if config.objective.teacher is None else _load_teacher(config, split, item_ids)
    model = recipe.build(settings, split.num_users, split.num_items, features=node_features).to(device)
    notes: list[str] = []
    if recipe.reads_titles:
        notes += _load_item_text(model, settings, item_ids, item_titles)
    offset = getattr(settings, "teacher_offset", None)
    if offset is not None:
        assert teacher is not None  # the config check
        assert teacher.item_embeddings is not None  # the needs check of load_teacher
        attach_teacher_offset(model, teacher.item_embeddings, offset)
    graph = graph_inputs(recipe, model, split.csr("train"), device)
    task = recipe.task(TaskSetup(model, split, config, device, needs_of(config.objective.terms), graph))
    context = task.context if teacher is None else replace(task.context, teacher=teacher)
    objective = Objective(config.objective.terms, context).to(device)
    return Assembly(model, graph, task, objective, recipe.scorer(model, settings, graph), notes)


def _load_item_text(
    model: nn.Module, settings: ModelSettings, item_ids: list[str] | None, titles: np.ndarray | None
) -> list[str]:
    from recforge.data.text import encode_item_texts

    if titles is None or item_ids is None:
        raise ConfigError(
            f"model '{settings.name}' reads item titles, and this dataset has none (ml-1m and ml-100k "
            "have them, as do RecBole atomic files whose .item file has a title field)"
        )
    encoder = str(getattr(settings, "text_encoder", ""))
    encoded = encode_item_texts([str(t) for t in titles], item_ids, encoder=encoder)
    model.set_item_text(encoded.embeddings)  # type: ignore[operator]
    return encoded.notes


def _load_teacher(config: ExperimentConfig, split: Split, item_ids: list[str] | None) -> TeacherSignal:
    from recforge.distill.teacher import load_teacher
    from recforge.objectives.registry import TERMS

    terms = config.objective.terms
    needs = set().union(*(TERMS[name].teacher_needs for name in terms)) - {"top_items", "top_scores"}
    if getattr(config.trained_model, "teacher_offset", None) is not None:
        needs.add("item_embeddings")
    min_k = max([TERMS[name].teacher_k(params) for name, params in terms.items()] + [1])
    assert config.objective.teacher is not None
    return load_teacher(
        config.objective.teacher, split=split, item_ids=item_ids, min_k=min_k, needs=sorted(needs)
    )


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
