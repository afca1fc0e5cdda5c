"""The registered encoders: an explicit dict from name to class, hyperparameters and graph inputs.

``build_model`` is how a config's ``model`` section becomes an encoder (unknown names and
parameters are errors that list the valid ones); ``model_inputs`` builds, once per split, the
tensors an encoder's ``forward`` takes, so the trainer and the evaluator never branch on model names.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import scipy.sparse as sp
import torch
from torch import Tensor, nn

from recforge.data.graph import bipartite_edge_index, normalized_adjacency
from recforge.errors import ConfigError, UnknownNameError
from recforge.models.gat import GAT
from recforge.models.lightgcn import LightGCN
from recforge.models.mf import MF

InputBuilder = Callable[[sp.csr_matrix, torch.device, torch.dtype], dict[str, Tensor]]


@dataclass(frozen=True)
class IntParameter:
    """An integer hyperparameter with a lower bound (bools are refused: ``True`` is not a size)."""

    least: int

    def check(self, model: str, name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < self.least:
            raise ConfigError(
                f"the '{name}' parameter of model '{model}' must be an int >= {self.least}, got {value!r}"
            )


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of one encoder.

    Attributes:
        cls: the encoder class; called as ``cls(num_users=..., num_items=..., **params)``.
        parameters: every hyperparameter the constructor accepts besides the sizes, with its check.
        inputs: ``(train_csr, device, dtype) -> {argument name: tensor}`` for ``forward(**inputs)``.
    """

    cls: type[nn.Module]
    parameters: Mapping[str, IntParameter]
    inputs: InputBuilder


def _no_inputs(train: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    return {}


def _graph_inputs(train: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    return {"normalized_adjacency": normalized_adjacency(train, dtype=dtype, device=device)}


def _edge_inputs(train: sp.csr_matrix, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
    return {"edge_index": bipartite_edge_index(train, device=device)}  # int64 ids: no dtype to follow


MODELS: dict[str, ModelSpec] = {
    "mf": ModelSpec(MF, {"dim": IntParameter(1)}, _no_inputs),
    "lightgcn": ModelSpec(LightGCN, {"dim": IntParameter(1), "num_layers": IntParameter(0)}, _graph_inputs),
    "gat": ModelSpec(
        GAT,
        {"dim": IntParameter(1), "num_layers": IntParameter(1), "num_heads": IntParameter(1)},
        _edge_inputs,
    ),
}
"""Every encoder a config may name."""


def build_model(name: str, *, num_users: int, num_items: int, **params: Any) -> nn.Module:
    """The encoder registered as ``name``, built with ``params`` (unspecified ones keep their defaults).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the registered names).
        ConfigError: a parameter the encoder does not take, or a value out of its range.
    """
    spec = _spec(name)
    checked: dict[str, int] = {}
    for key, value in params.items():
        if key not in spec.parameters:
            known = ", ".join(sorted(spec.parameters))
            raise ConfigError(f"model '{name}' has no parameter '{key}'; its parameters are: {known}")
        spec.parameters[key].check(name, key, value)
        checked[key] = int(value)  # numpy integers from a reader become plain ints
    for key, value in (("num_users", num_users), ("num_items", num_items)):
        IntParameter(0).check(name, key, value)
    return spec.cls(num_users=int(num_users), num_items=int(num_items), **checked)


def model_inputs(
    name_or_model: str | nn.Module, train_csr: sp.spmatrix | sp.sparray, device: torch.device | str
) -> dict[str, Tensor]:
    """The keyword inputs of the encoder's ``forward``, built from the training matrix.

    MF needs none (``{}``); LightGCN needs ``{"normalized_adjacency": ...}``; GAT needs
    ``{"edge_index": ...}`` (int64 node ids). Build them once per split, never per batch. Given a
    model, floating tensors take its parameters' dtype (float32 for a name) and the matrix must
    have the model's (num_users, num_items) shape.

    Raises:
        UnknownNameError: the name, or the model's class, is not registered.
        ValueError: the matrix's shape differs from the model's sizes.
    """
    dtype = torch.float32
    if isinstance(name_or_model, nn.Module):
        model = name_or_model
        spec = _spec_of(model)
        expected = (model.num_users, model.num_items)
        if tuple(train_csr.shape) != expected:
            raise ValueError(
                f"model_inputs: the training matrix is {train_csr.shape[0]} users × {train_csr.shape[1]} "
                f"items, the model was built for {expected[0]} × {expected[1]}"
            )
        dtype = next(model.parameters()).dtype
    else:
        spec = _spec(name_or_model)
    return spec.inputs(sp.csr_matrix(train_csr), torch.device(device), dtype)


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UnknownNameError("model", name, list(MODELS))
    return MODELS[name]


def _spec_of(model: nn.Module) -> ModelSpec:
    for spec in MODELS.values():
        if type(model) is spec.cls:
            return spec
    classes = [spec.cls.__name__ for spec in MODELS.values()]
    raise UnknownNameError("model class", type(model).__name__, classes)
