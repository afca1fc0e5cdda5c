"""The base of every validated settings section: unknown keys are errors, values are frozen.

Lives apart from :mod:`recforge.config` so that a model file can define its own config class
(``LightGCNConfig`` beside ``LightGCN``) without importing the experiment schema, which is itself
assembled from the recipe book of those classes.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails


class Strict(BaseModel):
    """A settings section: ``extra="forbid"`` (a misspelt key is an error), frozen after validation,
    numbers finite (``.inf``/``.nan`` are refused), and no silent coercion between kinds: ``dim:
    true`` is not 1, ``dim: 2.0`` is not 2, ``shared_embeddings: "yes"`` is not true."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _same_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        problems = []
        for name, value in data.items():
            field = cls.model_fields.get(name)
            problem = None if field is None else _kind_problem(_scalar_kinds(field.annotation), value)
            if problem:
                problems.append(
                    InitErrorDetails(
                        type="value_error", loc=(name,), input=value, ctx={"error": ValueError(problem)}
                    )
                )
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return data


class ModelSettings(Strict):
    """The ``model`` section of one encoder: its ``name`` (the recipe-book key) and hyperparameters.

    Every subclass narrows ``name`` to a ``Literal`` so that pydantic can pick the class by name.
    """

    name: str
    dim: int

    def encoder_arguments(self) -> dict[str, object]:
        """The hyperparameters as keyword arguments of the encoder (``name`` left out)."""
        return self.model_dump(exclude={"name"})


class FilterSettings(Strict):
    """The ``model`` section of a training-free filter (GF-CF, BSPM, EASE): ``name`` and the
    closed form's hyperparameters. No ``dim``, no objective, no training loop: the filter is
    fitted once from the training matrix (:mod:`recforge.train.fit_filter`)."""

    name: str

    def filter_arguments(self) -> dict[str, object]:
        """The hyperparameters as keyword arguments of the filter class (``name`` left out)."""
        return self.model_dump(exclude={"name"})


def _scalar_kinds(annotation: Any) -> set[Any]:
    """The scalar types a field annotation admits (``int | None`` -> {int, NoneType}); Literal
    values count as their types, paths as ``"path"``, containers as nothing (their items are
    checked by pydantic)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_scalar_kinds(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return {type(arg) for arg in get_args(annotation)}
    if origin is not None:  # Annotated is unwrapped by pydantic; list, dict, tuple: not scalars
        return set()
    if isinstance(annotation, type) and annotation.__name__.endswith("Path"):
        return {"path"}
    return {annotation}


def _kind_problem(kinds: set[Any], value: Any) -> str | None:
    """Why ``value`` is not of the scalar ``kinds`` a field admits, where pydantic would coerce it."""
    numeric = bool(kinds & {int, float})
    if isinstance(value, bool):
        return f"must be a number, not the boolean {value}" if numeric and bool not in kinds else None
    if isinstance(value, float) and int in kinds and float not in kinds:
        return f"must be a whole number, got {value}"
    if isinstance(value, str) and str not in kinds and "path" not in kinds and (numeric or bool in kinds):
        return f"must be a {'number' if numeric else 'boolean'}, not the text {value!r}"
    if bool in kinds and not kinds - {bool, type(None)} and value is not None:
        return f"must be true or false, got {value!r}"
    return None
