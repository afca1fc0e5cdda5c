"""Turn a validated config into the explicit pieces of one experiment: dataset, split, model.

``recforge train``, ``recforge evaluate`` and ``recforge quickstart`` all go through here, so the
same config always yields the same data, split and encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from recforge.config import ExperimentConfig, GRU4RecConfig, GSAUConfig, RGTConfig, SASRecConfig, SplitConfig
from recforge.data.dataset import Dataset
from recforge.data.filtering import deduplicate, k_core
from recforge.data.registry import load_dataset
from recforge.data.split import Split
from recforge.data.splitting import load_or_create_split
from recforge.errors import ConfigError
from recforge.models.gru4rec import GRU4Rec
from recforge.models.gsau import GSAU
from recforge.models.registry import build_model
from recforge.models.rgt import RGT
from recforge.models.sasrec import SASRec


@dataclass
class PreparedData:
    """The dataset after filtering, the split, and what was done to get there (for the results)."""

    dataset: Dataset
    split: Split
    notes: list[str]


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; anything else must be a device torch knows."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"train.device: '{name}' is not a device name (try auto, cpu, cuda)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: '{name}' asked for, but this torch sees no CUDA device")
    return device


def split_parameters(split: SplitConfig, seed: int) -> dict[str, object]:
    """The keyword arguments each split protocol takes, from the config section."""
    if split.protocol == "given":
        return {"valid_ratio": split.valid_ratio, "seed": seed}
    if split.protocol == "random":
        return {"ratios": split.ratios, "seed": seed}
    if split.protocol == "temporal":
        return {"ratios": split.ratios}
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
    params = split_parameters(data.split, config.split_seed)
    split = load_or_create_split(dataset, data.split.protocol, split_path, **params)
    return PreparedData(dataset=dataset, split=split, notes=notes)


def build_encoder(config: ExperimentConfig, num_users: int, num_items: int) -> nn.Module:
    """The encoder the config names, with the config's hyperparameters as explicit arguments.

    Sequential encoders take no user count (a query is a sequence) and their hyperparameters were
    validated by the config; ``max_length`` is the window of the data path, and of SASRec's
    position table."""
    params = config.model.model_dump(exclude={"name"})
    if isinstance(config.model, SASRecConfig):
        return SASRec(num_items=num_items, **params)
    if isinstance(config.model, RGTConfig):
        rgt = config.model
        return RGT(
            num_users=num_users,
            num_items=num_items,
            dim=rgt.dim,
            num_layers=rgt.num_layers,
            num_heads=rgt.num_heads,
            num_anchors=rgt.anchors,
            position_encoding=rgt.position_encoding,
            masked_autoencoding=rgt.masked_autoencoding,
        )
    if isinstance(config.model, GSAUConfig):
        params.pop("score_with")  # how the task ranks, not part of the encoder
        return GSAU(num_users=num_users, num_items=num_items, **params)
    if isinstance(config.model, GRU4RecConfig):
        params.pop("max_length")
        return GRU4Rec(num_items=num_items, **params)
    return build_model(config.model.name, num_users=num_users, num_items=num_items, **params)


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
