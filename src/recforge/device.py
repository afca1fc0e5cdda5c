"""Which torch device a run or a loaded recommender uses."""

from __future__ import annotations

import torch

from recforge.errors import ConfigError


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
