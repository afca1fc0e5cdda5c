"""The base of every validated settings section: unknown keys are errors, values are frozen.

Lives apart from :mod:`recforge.config` so that a model file can define its own config class
(``LightGCNConfig`` beside ``LightGCN``) without importing the experiment schema, which is itself
assembled from the recipe book of those classes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A settings section: ``extra="forbid"`` (a misspelt key is an error), frozen after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSettings(Strict):
    """The ``model`` section of one encoder: its ``name`` (the recipe-book key) and hyperparameters.

    Every subclass narrows ``name`` to a ``Literal`` so that pydantic can pick the class by name.
    """

    name: str
    dim: int

    def encoder_arguments(self) -> dict[str, object]:
        """The hyperparameters as keyword arguments of the encoder (``name`` left out)."""
        return self.model_dump(exclude={"name"})
