"""Checkpoints as safetensors + JSON: never pickle, so loading a stranger's run cannot run code.

Two kinds live in a run directory:

* ``model.safetensors``: the best weights, with metadata (model name, sizes, split hash) that
  :func:`load_weights` checks, so a checkpoint cannot be applied to another dataset by mistake.
* ``resume/``: the last finished epoch's full training state (weights, Adam moments, progress,
  RNG), written atomically after every epoch so ``recforge train --resume`` survives a crash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from recforge.errors import CheckpointError

WEIGHTS_FILE = "model.safetensors"
RESUME_DIR = "resume"


@dataclass(frozen=True)
class CheckpointInfo:
    """What a set of weights was trained on; compared on load."""

    model: str
    num_users: int
    num_items: int
    split_hash: str
    dataset: str
    epoch: int

    def to_metadata(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], path: Path) -> CheckpointInfo:
        try:
            return cls(
                model=metadata["model"],
                num_users=int(metadata["num_users"]),
                num_items=int(metadata["num_items"]),
                split_hash=metadata["split_hash"],
                dataset=metadata["dataset"],
                epoch=int(metadata["epoch"]),
            )
        except (KeyError, ValueError) as error:
            raise CheckpointError(f"{path}: not a recforge checkpoint (metadata lacks {error})") from error


def save_weights(model: nn.Module, path: Path, info: CheckpointInfo) -> None:
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    _atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=info.to_metadata()))


def read_checkpoint_info(path: Path) -> CheckpointInfo:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error})") from error
    return CheckpointInfo.from_metadata(metadata, path)


def load_weights(model: nn.Module, path: Path, expected: CheckpointInfo) -> CheckpointInfo:
    """Load ``path`` into ``model`` after checking it was trained on the same data and split."""
    info = read_checkpoint_info(path)
    for key in ("model", "num_users", "num_items", "split_hash"):
        found, wanted = getattr(info, key), getattr(expected, key)
        if found != wanted:
            raise CheckpointError(
                f"{path}: checkpoint field '{key}' is {found!r} but the current data/model has {wanted!r}; "
                f"it was trained on dataset '{info.dataset}' — use a run directory made for this data"
            )
    device = next(iter(model.state_dict().values())).device
    try:
        model.load_state_dict(load_file(str(path), device=str(device)))
    except RuntimeError as error:
        raise CheckpointError(f"{path}: weights do not fit the model: {error}") from error
    return info


@dataclass
class TrainingState:
    """Progress of a run besides the tensors: enough to continue exactly where it stopped."""

    next_epoch: int
    global_step: int
    best_metric: float
    best_epoch: int
    evaluations_since_best: int
    train_seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def save_resume_state(
    run_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainingState,
    info: CheckpointInfo,
) -> None:
    """Write weights, optimizer moments, RNG and progress for ``--resume`` (atomically per file)."""
    directory = run_dir / RESUME_DIR
    directory.mkdir(parents=True, exist_ok=True)
    optimizer_state = optimizer.state_dict()
    tensors = {f"model.{name}": t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    for index, per_parameter in optimizer_state["state"].items():
        for key, value in per_parameter.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    _atomic(
        directory / "state.safetensors", lambda tmp: save_file(tensors, str(tmp), metadata=info.to_metadata())
    )
    payload = {"state": asdict(state), "param_groups": optimizer_state["param_groups"]}
    _atomic(directory / "state.json", lambda tmp: tmp.write_text(json.dumps(payload)))


def load_resume_state(
    run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, expected: CheckpointInfo
) -> TrainingState:
    directory = run_dir / RESUME_DIR
    tensor_path, json_path = directory / "state.safetensors", directory / "state.json"
    if not tensor_path.is_file() or not json_path.is_file():
        raise CheckpointError(f"{directory}: no resumable state (state.safetensors + state.json) found")
    info = read_checkpoint_info(tensor_path)
    if (info.model, info.num_users, info.num_items, info.split_hash) != (
        expected.model,
        expected.num_users,
        expected.num_items,
        expected.split_hash,
    ):
        raise CheckpointError(
            f"{tensor_path}: resume state belongs to model '{info.model}' on dataset '{info.dataset}' "
            f"({info.num_users} users, {info.num_items} items, split {info.split_hash}), not to this config"
        )
    device = next(iter(model.state_dict().values())).device
    tensors = load_file(str(tensor_path), device=str(device))
    model.load_state_dict({name[6:]: t for name, t in tensors.items() if name.startswith("model.")})
    payload = json.loads(json_path.read_text())
    per_parameter: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            per_parameter.setdefault(int(index), {})[key] = tensor.cpu() if key == "step" else tensor
    optimizer.load_state_dict({"state": per_parameter, "param_groups": payload["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"].cpu())
    return TrainingState(**payload["state"])


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary sibling, then rename: a crash mid-write never leaves a torn file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
