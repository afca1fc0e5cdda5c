"""Encoders of the embedding contract: ``forward(**inputs) -> (users (U, d), items (I, d))``.

Every encoder also has ``initial_embeddings()`` (the layer-0 tables that an L2 term penalises)
and ``reset_parameters()``; scores are dot products of user and item rows.
"""

from recforge.models.lightgcn import LightGCN
from recforge.models.mf import MF
from recforge.models.propagation import SparsePropagation, sparse_propagate, sparse_transpose
from recforge.models.registry import MODELS, ModelSpec, build_model, model_inputs

__all__ = [
    "MF",
    "MODELS",
    "LightGCN",
    "ModelSpec",
    "SparsePropagation",
    "build_model",
    "model_inputs",
    "sparse_propagate",
    "sparse_transpose",
]
