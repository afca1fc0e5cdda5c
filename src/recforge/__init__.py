"""recforge: build accurate recommenders and distill them into fast ones.

The public API, re-exported here so user code needs one import::

    import recforge
    dataset = recforge.load_dataset("ml-100k")
    config = recforge.load_config("configs/ml-100k/lightgcn.yaml", ["model.dim=128"])
    result = recforge.train(config)
    recommender = recforge.load_recommender(result.run_dir)   # needs the run directory only
    recommender.recommend(["196"], k=10)
Names are imported lazily (on first use), so ``import recforge`` and ``recforge --help`` stay
fast and do not pay for torch until a model is touched.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ExperimentConfig": "recforge.config",
    "load_config": "recforge.config",
    "Dataset": "recforge.data.dataset",
    "Fold": "recforge.data.dataset",
    "Interactions": "recforge.data.dataset",
    "DATASETS": "recforge.data.registry",
    "load_dataset": "recforge.data.registry",
    "Split": "recforge.data.split",
    "split_dataset": "recforge.data.splitting",
    "CheckpointError": "recforge.errors",
    "ConfigError": "recforge.errors",
    "DataFormatError": "recforge.errors",
    "RecforgeError": "recforge.errors",
    "UnknownNameError": "recforge.errors",
    "EvaluationResult": "recforge.evaluation.evaluator",
    "Evaluator": "recforge.evaluation.evaluator",
    "LightGCN": "recforge.models.lightgcn",
    "MF": "recforge.models.mf",
    "Recommendation": "recforge.retrieval.recommender",
    "Recommender": "recforge.retrieval.recommender",
    "evaluate_run": "recforge.retrieval.recommender",
    "load_recommender": "recforge.retrieval.recommender",
    "RECIPES": "recforge.recipes",
    "TERMS": "recforge.objectives.registry",
    "UnknownIdError": "recforge.errors",
    "TrainResult": "recforge.train.trainer",
    "train": "recforge.train.trainer",
}

__all__ = [
    "DATASETS",
    "MF",
    "RECIPES",
    "TERMS",
    "CheckpointError",
    "ConfigError",
    "DataFormatError",
    "Dataset",
    "EvaluationResult",
    "Evaluator",
    "ExperimentConfig",
    "Fold",
    "Interactions",
    "LightGCN",
    "RecforgeError",
    "Recommendation",
    "Recommender",
    "Split",
    "TrainResult",
    "UnknownIdError",
    "UnknownNameError",
    "__version__",
    "evaluate_run",
    "load_config",
    "load_dataset",
    "load_recommender",
    "split_dataset",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recforge' has no attribute '{name}'")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from recforge.config import ExperimentConfig, load_config
    from recforge.data.dataset import Dataset, Fold, Interactions
    from recforge.data.registry import DATASETS, load_dataset
    from recforge.data.split import Split
    from recforge.data.splitting import split_dataset
    from recforge.errors import (
        CheckpointError,
        ConfigError,
        DataFormatError,
        RecforgeError,
        UnknownIdError,
        UnknownNameError,
    )
    from recforge.evaluation.evaluator import EvaluationResult, Evaluator
    from recforge.models.lightgcn import LightGCN
    from recforge.models.mf import MF
    from recforge.objectives.registry import TERMS
    from recforge.recipes import RECIPES
    from recforge.retrieval.recommender import Recommendation, Recommender, evaluate_run, load_recommender
    from recforge.train.trainer import TrainResult, train
