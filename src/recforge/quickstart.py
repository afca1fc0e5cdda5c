"""`recforge quickstart`: LightGCN on MovieLens-100K end to end, with titles in the output.

The experiment is the packaged ``configs/quickstart.yaml`` (the same as the repository's
``configs/ml-100k/lightgcn.yaml``), so what the demo shows is what a user's own config would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import yaml

from recforge.config import ConfigLoader, ExperimentConfig, config_from_dict
from recforge.evaluation.evaluator import ranked_items
from recforge.train.trainer import TrainResult, train


def quickstart_config(overrides: tuple[str, ...] = ()) -> ExperimentConfig:
    text = resources.files("recforge.configs").joinpath("quickstart.yaml").read_text()
    raw = yaml.load(text, Loader=ConfigLoader)
    return config_from_dict(raw, overrides, source="recforge/configs/quickstart.yaml")


@dataclass(frozen=True)
class UserRecommendations:
    user: str
    recent: list[str]
    recommended: list[str]
    hits: list[bool]


def recommendations_for(result: TrainResult, num_users: int = 3, k: int = 10) -> list[UserRecommendations]:
    """Top-k unseen items (by title) for the first few test users, with their last training items.

    Items the user met in training or validation are excluded; ``hits`` marks recommendations the
    user actually interacted with in the held-out test fold.
    """
    data, split = result.data, result.data.split
    seen = (split.csr("train") + split.csr("valid")).tocsr()
    test = split.csr("test")
    users = np.flatnonzero(np.diff(test.indptr) > 0)[:num_users]
    user_embeddings, item_embeddings = result.scorer.embeddings(split, "test")
    top = (
        ranked_items(user_embeddings, item_embeddings, torch.as_tensor(users), k, exclude=seen).cpu().numpy()
    )
    indptr, sequence = split.train.sequences(split.num_users)
    titles = data.dataset.item_titles if data.dataset.item_titles is not None else data.dataset.item_ids
    report = []
    for row, user in enumerate(users):
        history = sequence[indptr[user] : indptr[user + 1]][-3:]
        test_items = set(test.indices[test.indptr[user] : test.indptr[user + 1]].tolist())
        report.append(
            UserRecommendations(
                user=str(data.dataset.user_ids[user]),
                recent=[str(titles[i]) for i in history],
                recommended=[str(titles[i]) for i in top[row]],
                hits=[int(i) in test_items for i in top[row]],
            )
        )
    return report


def run_quickstart(output_dir: Path, overrides: tuple[str, ...] = (), **train_options: object) -> TrainResult:
    config = quickstart_config((*overrides, f"output_dir={output_dir}"))
    result = train(config, **train_options)  # type: ignore[arg-type]
    assert isinstance(result, TrainResult)  # the quickstart trains LightGCN
    return result


__all__ = ["UserRecommendations", "quickstart_config", "recommendations_for", "run_quickstart"]
