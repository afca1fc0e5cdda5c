"""Encoders of the embedding contract: queries and items in one space, scored by dot products.

Graph encoders (MF, LightGCN, GAT): ``forward(**inputs) -> (users (U, d), items (I, d))``, plus
``initial_embeddings()`` (the layer-0 tables that an L2 term penalises). Sequential encoders
(SASRec, GRU4Rec): ``query_embeddings(sequences (B, L)) -> (B, d)`` and ``item_embeddings() -> (I, d)``.
Every encoder has ``reset_parameters()``. How each is built, trained and scored is its line in
:data:`recforge.recipes.RECIPES`; how its tables are ranked is :mod:`recforge.models.scoring`.
"""

from recforge.models.gat import GAT
from recforge.models.gru4rec import GRU4Rec
from recforge.models.lightgcn import LightGCN
from recforge.models.mf import MF
from recforge.models.propagation import SparsePropagation, sparse_propagate, sparse_transpose
from recforge.models.sasrec import SASRec

__all__ = [
    "GAT",
    "MF",
    "GRU4Rec",
    "LightGCN",
    "SASRec",
    "SparsePropagation",
    "sparse_propagate",
    "sparse_transpose",
]
