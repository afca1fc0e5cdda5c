"""Inference from a run directory alone: no raw data, no cache, no training task.

:func:`load_recommender` rebuilds a scorer from four files a finished run leaves behind:
``config.yaml`` (which recipe, which hyperparameters), ``model.safetensors`` (the best weights),
``split.npz`` (the interactions each user is known by, and the training graph) and
``id_maps.json`` (raw ids and item titles). The dataset files may be gone.

Ids in and out are the dataset's raw ids (as strings). What a user has "seen" is every interaction
the run knows of them (train, valid and test): a deployed model recommends what is new to them.
Sequential models answer a user with the encoder's state after that whole known history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recforge.checkpoint import (
    WEIGHTS_FILE,
    CheckpointInfo,
    load_tensors,
    load_weights,
    read_checkpoint_info,
    tensor_shape,
)
from recforge.config import ExperimentConfig, load_config
from recforge.data.sequences import to_sequence_ids
from recforge.data.split import Split
from recforge.device import resolve_device
from recforge.errors import CheckpointError, RecforgeError, UnknownIdError
from recforge.evaluation.evaluator import EvaluationResult, Evaluator
from recforge.evaluation.ranking import SparseRows, mask_seen_, top_k
from recforge.models.item_tables import attach_teacher_offset, fold_item_table
from recforge.models.scoring import FilterScorer, Scorer, evaluate_fold
from recforge.recipes import filter_recipe_of, graph_inputs, recipe_of

RUN_FILES = ("config.yaml", WEIGHTS_FILE, "split.npz", "id_maps.json")
OFFSET_KEY = "model.item_embedding.frozen"
"""The teacher item rows a ``model.teacher_offset`` run saves with its weights."""


@dataclass(frozen=True)
class Recommendation:
    """One ranked item: its raw id, its score (a dot product), and its title where known."""

    item: str
    score: float
    title: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"item": self.item, "score": self.score, "title": self.title}


class Recommender:
    """A trained model with its id maps, answering in raw ids.

    Built by :func:`load_recommender`; the embedding tables are computed once, on first use.
    """

    def __init__(
        self,
        *,
        run_dir: Path,
        config: ExperimentConfig,
        info: CheckpointInfo,
        split: Split,
        model: nn.Module | None,
        scorer: Scorer,
        user_ids: Sequence[str],
        item_ids: Sequence[str],
        item_titles: Sequence[str] | None,
    ) -> None:
        self.run_dir, self.config, self.info, self.split = run_dir, config, info, split
        self.model, self.scorer = model, scorer
        self.user_ids, self.item_ids, self.item_titles = list(user_ids), list(item_ids), item_titles
        self._user_index = {raw: dense for dense, raw in enumerate(self.user_ids)}
        self._item_index = {raw: dense for dense, raw in enumerate(self.item_ids)}

    def __repr__(self) -> str:
        return (
            f"Recommender(model={self.config.model.name}, users={self.split.num_users}, "
            f"items={self.split.num_items}, run_dir={str(self.run_dir)!r})"
        )

    @property
    def model_name(self) -> str:
        return self.config.model.name

    @property
    def reads_histories(self) -> bool:
        """Whether :meth:`recommend_for_history` works for this model."""
        return self.scorer.reads_histories

    # -- tables ------------------------------------------------------------------------------------

    @cached_property
    def _tables(self) -> tuple[Tensor, Tensor]:
        return self.scorer.embeddings(self.split, None)

    def item_embeddings(self) -> Tensor:
        """(I, d) the item table, detached (row i is dense item i, raw id ``item_ids[i]``)."""
        return self._tables[1]

    def user_embeddings(self) -> Tensor:
        """(U, d) each user's query after everything the run knows of them, detached."""
        return self._tables[0]

    def embeddings(self, fold: str) -> tuple[Tensor, Tensor]:
        """``(queries, items)`` for scoring ``fold`` (``valid`` or ``test``) as training did."""
        return self.scorer.embeddings(self.split, fold)

    @cached_property
    def seen(self) -> sp.csr_matrix:
        """(U, I) binary: every interaction of the run's split, all folds (and each user itself on a
        friend graph, :attr:`Split.excludes_self`)."""
        known = (self.split.csr("train") + self.split.csr("valid") + self.split.csr("test")).tocsr()
        return self.split.seen_with_self(known)

    # -- ids ---------------------------------------------------------------------------------------

    def knows_user(self, raw_user_id: object) -> bool:
        return str(raw_user_id) in self._user_index

    def user_index(self, raw_user_id: object) -> int:
        """The dense id of a raw user id; an unknown id is an :class:`UnknownIdError`."""
        dense = self._user_index.get(str(raw_user_id))
        if dense is None:
            raise UnknownIdError("user", str(raw_user_id), self.run_dir)
        return dense

    def item_index(self, raw_item_id: object) -> int:
        dense = self._item_index.get(str(raw_item_id))
        if dense is None:
            raise UnknownIdError("item", str(raw_item_id), self.run_dir)
        return dense

    def title(self, item: int) -> str | None:
        if self.item_titles is None:
            return None
        return self.item_titles[item] or None

    # -- answers -----------------------------------------------------------------------------------

    def recommend(
        self, raw_user_ids: Iterable[object], k: int = 10, *, exclude_seen: bool = True
    ) -> list[list[Recommendation]]:
        """The top ``k`` items for each user, best first; ``exclude_seen`` leaves out every item the
        run knows the user interacted with (fewer than ``k`` come back only if too few are left)."""
        _check_k(k)
        users = torch.as_tensor([self.user_index(raw) for raw in raw_user_ids], dtype=torch.long)
        if isinstance(self.scorer, FilterScorer):  # scores of the whole known history, not a table
            scores = self.scorer.filter.history_scores(self.seen[users.numpy()])
        else:
            queries = self.user_embeddings()[users.to(self.user_embeddings().device)]
            scores = queries @ self.item_embeddings().T
        return self._ranked(scores, k, self.seen[users.numpy()] if exclude_seen else None)

    def recommend_for_history(
        self, raw_item_ids: Sequence[object], k: int = 10, *, exclude_seen: bool = True
    ) -> list[Recommendation]:
        """The next ``k`` items after an item history (oldest first), for models that read
        histories (sequential models, GSAU ranking by sequence); ``exclude_seen`` leaves out the
        history's own items. The last ``max_length`` items are what the encoder sees."""
        _check_k(k)
        if not raw_item_ids:
            raise RecforgeError("recommend_for_history: the history is empty; give at least one item")
        items = np.array([self.item_index(raw) for raw in raw_item_ids], dtype=np.int64)
        max_length = int(getattr(self.config.model, "max_length", 1))
        window = np.zeros((1, max_length), dtype=np.int64)  # left-padded, 0 = padding
        recent = to_sequence_ids(items[-max_length:])
        window[0, max_length - len(recent) :] = recent
        device = self.item_embeddings().device
        query = self.scorer.history_queries(torch.as_tensor(window, device=device))  # or says why not
        exclude = None
        if exclude_seen:
            exclude = sp.csr_matrix(
                (np.ones(len(items), dtype=np.float32), (np.zeros(len(items), dtype=np.int64), items)),
                shape=(1, self.split.num_items),
            )
        return self._ranked(query @ self.item_embeddings().T, k, exclude)[0]

    def similar_items(self, raw_item_id: object, k: int = 10) -> list[Recommendation]:
        """The ``k`` items whose embeddings have the highest cosine with this one's (itself left
        out); the score is the cosine."""
        _check_k(k)
        item = self.item_index(raw_item_id)
        table = F.normalize(self.item_embeddings(), dim=-1)
        itself = sp.csr_matrix(([1.0], ([0], [item])), shape=(1, self.split.num_items))
        return self._ranked(table[item : item + 1] @ table.T, k, itself)[0]

    def _ranked(self, scores: Tensor, k: int, exclude: sp.csr_matrix | None) -> list[list[Recommendation]]:
        """The top ``k`` of each row of ``scores`` (B, I), a fresh tensor masked here in place."""
        with torch.no_grad():
            if exclude is not None:
                mask_seen_(scores, *SparseRows.from_csr(exclude, scores.device).block(0, len(scores)))
            values, ranked = top_k(scores, k)
        answers = []
        for row_values, row_items in zip(values.tolist(), ranked.tolist(), strict=True):
            answers.append(
                [
                    Recommendation(self.item_ids[item], float(value), self.title(item))
                    for value, item in zip(row_values, row_items, strict=True)
                    if item >= 0  # -1: nothing unseen left for this slot
                ]
            )
        return answers


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise RecforgeError(f"k must be a positive integer, got {k!r}")


def load_recommender(
    run_dir: str | Path, *, device: str = "auto", overrides: tuple[str, ...] = ()
) -> Recommender:
    """Rebuild the best model of ``run_dir`` from its own files (see the module docstring).

    ``overrides`` change settings that do not alter the model (``evaluation.ks=[5,10]``).

    Raises:
        CheckpointError: a file is missing, or the weights belong to another split or model.
    """
    run_dir = Path(run_dir)
    for name in RUN_FILES:
        if not (run_dir / name).is_file():
            raise CheckpointError(f"{run_dir}: not a finished run directory ({name} is missing)")
    config = load_config(run_dir / "config.yaml", overrides)
    split = Split.load(run_dir / "split.npz")
    info = read_checkpoint_info(run_dir / WEIGHTS_FILE)
    if split.content_hash != info.split_hash:
        raise CheckpointError(
            f"{run_dir / 'split.npz'}: split hash {split.content_hash} differs from the checkpoint's "
            f"{info.split_hash}"
        )
    user_ids, item_ids, titles = _read_id_maps(run_dir / "id_maps.json", split)
    expected = CheckpointInfo(
        model=config.model.name,
        num_users=split.num_users,
        num_items=split.num_items,
        split_hash=split.content_hash,
        dataset=info.dataset,
        epoch=info.epoch,
    )
    model: nn.Module | None = None
    scorer: Scorer
    if config.is_filter:  # a fitted filter: its saved state over the split's training matrix
        fitted = filter_recipe_of(config.model.name).build(
            config.filter_model, split.csr("train"), seed=config.seed, num_threads=config.train.num_threads
        )
        try:
            fitted.restore(load_tensors(run_dir / WEIGHTS_FILE, "model", expected))
        except RecforgeError as error:
            raise CheckpointError(f"{run_dir / WEIGHTS_FILE}: {error}") from error
        scorer = FilterScorer(fitted)
    else:
        model, scorer = _load_model(run_dir, config, split, expected, resolve_device(device))
    return Recommender(
        run_dir=run_dir,
        config=config,
        info=info,
        split=split,
        model=model,
        scorer=scorer,
        user_ids=user_ids,
        item_ids=item_ids,
        item_titles=titles,
    )


def _load_model(
    run_dir: Path, config: ExperimentConfig, split: Split, expected: CheckpointInfo, device: torch.device
) -> tuple[nn.Module, Scorer]:
    recipe = recipe_of(config.model.name)
    settings = config.trained_model
    features = _saved_features(run_dir / WEIGHTS_FILE, expected) if recipe.reads_node_features else None
    model = recipe.build(settings, split.num_users, split.num_items, features=features).to(device)
    offset = getattr(settings, "teacher_offset", None)
    if offset is not None:  # sized from the saved teacher rows, then folded: served as a plain table
        shape = tensor_shape(run_dir / WEIGHTS_FILE, OFFSET_KEY)
        attach_teacher_offset(model, torch.zeros(shape, device=device), offset)
    load_weights({"model": model}, run_dir / WEIGHTS_FILE, expected)
    if offset is not None:
        fold_item_table(model)
    model.eval()
    graph = graph_inputs(recipe, model, split.csr("train"), device)
    return model, recipe.scorer(model, config.trained_model, graph)


def _saved_features(path: Path, expected: CheckpointInfo) -> sp.csr_matrix:
    """The node features a friend-graph model saved with its weights (CSR buffers)."""
    tensors = load_tensors(path, "model", expected)
    try:
        parts = ("indptr", "indices", "values")
        indptr, indices, values = (tensors[f"feature_{part}"].numpy() for part in parts)
    except KeyError as error:
        raise CheckpointError(f"{path}: the model's node features are missing ({error})") from error
    num_features = int(tensors["encoder.input.weight"].shape[1])
    return sp.csr_matrix((values, indices, indptr), shape=(len(indptr) - 1, num_features))


def _read_id_maps(path: Path, split: Split) -> tuple[list[str], list[str], list[str] | None]:
    try:
        maps = json.loads(path.read_text())
        users = [str(raw) for raw in maps["users"]]
        items = [str(raw) for raw in maps["items"]]
        titles = maps.get("item_titles")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path}: not a recforge id map ({error})") from error
    if len(users) != split.num_users or len(items) != split.num_items:
        raise CheckpointError(
            f"{path}: maps {len(users)} users and {len(items)} items, the split has "
            f"{split.num_users} and {split.num_items}"
        )
    if titles is not None and len(titles) != len(items):
        raise CheckpointError(f"{path}: {len(titles)} item titles for {len(items)} items")
    return users, items, None if titles is None else [str(title) for title in titles]


def evaluate_run(
    recommender: Recommender, folds: tuple[str, ...] = ("valid", "test")
) -> dict[str, EvaluationResult]:
    """Score the run's best weights on the named folds with the run's own evaluation settings."""
    evaluation = recommender.config.evaluation
    evaluator = Evaluator(
        recommender.split,
        ks=tuple(evaluation.ks),
        metrics=tuple(evaluation.metrics),
        batch_size=evaluation.batch_size,
        activity_slices=tuple(evaluation.activity_slices),
        sampled_negatives=evaluation.sampled_negatives,
        sampled_seed=evaluation.sampled_seed,
    )
    return {fold: evaluate_fold(recommender.scorer, evaluator, fold) for fold in folds}
