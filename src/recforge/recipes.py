"""The recipe book: one line per model name says how to build, train and score it.

A recipe is the model's config class (its ``model:`` section), the encoder builder, the graph
tensors its ``forward`` reads, the training task, and the scorer that ranks with it. The config
schema, the trainer, ``recforge evaluate`` and
:func:`~recforge.retrieval.recommender.load_recommender` all read this table, so adding a model is
one model file (the encoder and its config class), one line here, and its configs.

Training-free filters (GF-CF, BSPM, EASE) have a second, shorter table, :data:`FILTERS`: a config
class and the filter class. ``recforge train`` fits them once instead of running epochs
(:mod:`recforge.train.fit_filter`); everything downstream reads them through
:class:`~recforge.models.scoring.FilterScorer`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from recforge.config_base import FilterSettings, ModelSettings
from recforge.data.graph import bipartite_edge_index, normalized_adjacency
from recforge.errors import ConfigError, UnknownNameError
from recforge.models.feature_gat import FeatureGATConfig, FriendGAT
from recforge.models.filters import BSPM, EASE, GFCF, BSPMConfig, EASEConfig, GFCFConfig, GraphFilter
from recforge.models.gat import GAT, GATConfig
from recforge.models.gru4rec import GRU4Rec, GRU4RecConfig
from recforge.models.gsau import GSAU, GSAUConfig
from recforge.models.lightgcn import LightGCN, LightGCNConfig
from recforge.models.link_heuristics import (
    CommonNeighbours,
    CommonNeighboursConfig,
    Popularity,
    PopularityConfig,
)
from recforge.models.mf import MF, MFConfig
from recforge.models.rgt import RGT, RGTConfig
from recforge.models.sasrec import SASRec, SASRecConfig
from recforge.models.scoring import EmbeddingScorer, GraphSequenceScorer, Scorer, SequenceScorer
from recforge.models.text_sasrec import TextSASRec, TextSASRecConfig
from recforge.tasks.friends import FriendTask
from recforge.tasks.graph_sequence import GraphSequenceTask
from recforge.tasks.rationale import RationaleTask
from recforge.tasks.sequence import SequenceTask
from recforge.tasks.triplet import TripletTask

GraphBuilder = Callable[[sp.csr_matrix, torch.device, torch.dtype], dict[str, Tensor]]
"""``(train matrix, device, float dtype) -> {forward argument: tensor}``, built once per split."""


def no_graph(train: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    return {}


def adjacency_graph(train: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    """:math:`D^{-1/2} A D^{-1/2}` of the bipartite training graph, as LightGCN propagates it."""
    return {"normalized_adjacency": normalized_adjacency(train, dtype=dtype, device=device)}


def edge_graph(train: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    """Both directions of every training edge, as int64 node ids (no dtype to follow)."""
    return {"edge_index": bipartite_edge_index(train, device=device)}


def friend_edges(train: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    """The training friendships of a user-user graph as a PyG ``edge_index`` (both directions are
    stored entries of the symmetric matrix already), node ids = user ids."""
    coo = sp.coo_matrix(train)
    edges = np.stack([coo.col, coo.row]).astype(np.int64)  # message from the friend to the user
    return {"edge_index": torch.from_numpy(edges).to(device)}


def embedding_scorer(model: nn.Module, settings: ModelSettings, graph: dict[str, Tensor]) -> Scorer:
    return EmbeddingScorer(model, graph)


def sequence_scorer(model: nn.Module, settings: ModelSettings, graph: dict[str, Tensor]) -> Scorer:
    assert isinstance(settings, SASRecConfig | GRU4RecConfig | TextSASRecConfig)  # the recipe pairs them
    return SequenceScorer(model, settings.max_length)


def graph_sequence_scorer(model: nn.Module, settings: ModelSettings, graph: dict[str, Tensor]) -> Scorer:
    assert isinstance(settings, GSAUConfig)  # the recipe pairs them
    return GraphSequenceScorer(model, graph["normalized_adjacency"], settings.max_length, settings.score_with)


TaskClass = (
    type[TripletTask] | type[SequenceTask] | type[GraphSequenceTask] | type[RationaleTask] | type[FriendTask]
)


@dataclass(frozen=True)
class Recipe:
    """How one model is built, trained and scored.

    Attributes:
        config: the class of its ``model:`` section (``name`` is a ``Literal`` of the recipe's key).
        encoder: the encoder class, called as ``encoder(num_users=, num_items=, **arguments)``
            (sequential encoders take no user count), arguments from
            :meth:`ModelSettings.encoder_arguments`.
        graph: the graph tensors ``forward`` (or the task) reads, from the training matrix.
        task: the training task; its ``provides(settings)`` is checked against the terms' needs.
        scorer: ``(model, settings, graph) -> Scorer``, how the trained encoder ranks.
        takes_users: whether the encoder has a user table (sequential encoders do not).
        reads_titles: whether the encoder is given the items' title embeddings before training
            (``set_item_text``; the text teacher).
        reads_node_features: whether the encoder is built with the dataset's node features
            (``features=``, a CSR matrix: the friend-graph GAT); it keeps them with its weights.
    """

    config: type[ModelSettings]
    encoder: type[nn.Module]
    graph: GraphBuilder
    task: TaskClass
    scorer: Callable[[nn.Module, ModelSettings, dict[str, Tensor]], Scorer]
    takes_users: bool = True
    reads_titles: bool = False
    reads_node_features: bool = False

    def build(
        self,
        settings: ModelSettings,
        num_users: int,
        num_items: int,
        *,
        features: sp.csr_matrix | None = None,
    ) -> nn.Module:
        """The encoder ``settings`` describe, over ``num_users`` × ``num_items`` (with the node
        ``features`` for a recipe that reads them)."""
        arguments: dict[str, Any] = settings.encoder_arguments()
        if self.reads_node_features:
            if features is None:
                raise ConfigError(
                    f"model '{settings.name}' reads node features, and the data has none "
                    "(the friend graphs twitch-* and lastfm-social have them)"
                )
            arguments["features"] = features
        if self.takes_users:
            arguments["num_users"] = num_users
        return self.encoder(num_items=num_items, **arguments)


RECIPES: dict[str, Recipe] = {
    "mf": Recipe(MFConfig, MF, no_graph, TripletTask, embedding_scorer),
    "lightgcn": Recipe(LightGCNConfig, LightGCN, adjacency_graph, TripletTask, embedding_scorer),
    "gat": Recipe(GATConfig, GAT, edge_graph, TripletTask, embedding_scorer),
    "rgt": Recipe(RGTConfig, RGT, adjacency_graph, RationaleTask, embedding_scorer),
    "sasrec": Recipe(SASRecConfig, SASRec, no_graph, SequenceTask, sequence_scorer, takes_users=False),
    "gru4rec": Recipe(GRU4RecConfig, GRU4Rec, no_graph, SequenceTask, sequence_scorer, takes_users=False),
    "text_sasrec": Recipe(
        TextSASRecConfig,
        TextSASRec,
        no_graph,
        SequenceTask,
        sequence_scorer,
        takes_users=False,
        reads_titles=True,
    ),
    "gsau": Recipe(GSAUConfig, GSAU, adjacency_graph, GraphSequenceTask, graph_sequence_scorer),
    "feature_gat": Recipe(
        FeatureGATConfig, FriendGAT, friend_edges, FriendTask, embedding_scorer, reads_node_features=True
    ),
}
"""Every trained model a config may name (the filters are in FILTERS)."""


@dataclass(frozen=True)
class FilterRecipe:
    """How one training-free filter is built: its ``model:`` config class and the filter class,
    called as ``filter(train_matrix, seed=, num_threads=, **settings.filter_arguments())`` (``seed``
    only for the filters that draw: GF-CF's and BSPM's randomised SVDs)."""

    config: type[FilterSettings]
    filter: type[GraphFilter]

    def build(
        self, settings: FilterSettings, train: sp.spmatrix | sp.sparray, *, seed: int, num_threads: int | None
    ) -> GraphFilter:
        arguments: dict[str, Any] = {**settings.filter_arguments(), "num_threads": num_threads}
        if "seed" in inspect.signature(self.filter).parameters:  # the randomised SVDs take one
            arguments["seed"] = seed
        return self.filter(train, **arguments)


FILTERS: dict[str, FilterRecipe] = {
    "gfcf": FilterRecipe(GFCFConfig, GFCF),
    "bspm": FilterRecipe(BSPMConfig, BSPM),
    "ease": FilterRecipe(EASEConfig, EASE),
    "popularity": FilterRecipe(PopularityConfig, Popularity),
    "common_neighbours": FilterRecipe(CommonNeighboursConfig, CommonNeighbours),
}
"""Every training-free filter a config may name."""


def recipe_of(name: str) -> Recipe:
    if name not in RECIPES:
        raise UnknownNameError("model", name, list(RECIPES))
    return RECIPES[name]


def filter_recipe_of(name: str) -> FilterRecipe:
    if name not in FILTERS:
        raise UnknownNameError("filter", name, list(FILTERS))
    return FILTERS[name]


def graph_inputs(
    recipe: Recipe, model: nn.Module, train: sp.spmatrix | sp.sparray, device: torch.device
) -> dict[str, Tensor]:
    """The recipe's graph tensors for ``model`` (floats in the model's parameter dtype)."""
    dtype = next(model.parameters()).dtype
    return recipe.graph(sp.csr_matrix(train), device, dtype)
