"""Checkpoints as safetensors + JSON: never pickle, so loading a stranger's run cannot run code.

Two kinds live in a run directory:

* ``model.safetensors``: the best weights, with metadata (model name, sizes, split hash) that
  :func:`load_weights` checks, so a checkpoint cannot be applied to another dataset by mistake.
  Tensors are keyed ``model.<name>`` (the encoder) and ``objective.<name>`` (parameters of loss
  terms, e.g. RGT's distillation heads); inference reads the encoder's alone.
* ``resume/state.safetensors``: the last finished epoch's full training state (encoder, objective,
  Adam moments, the task's generators and counters, torch's RNG) with the progress as JSON in its
  metadata: one file, replaced by one rename after every epoch, so a crash can never leave a
  mixed pair for ``recforge train --resume``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from recforge.errors import CheckpointError
from recforge.files import atomic_write

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


def module_tensors(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """``{"<module>.<name>": tensor}`` of each module's state, on the CPU, contiguous."""
    return {
        f"{prefix}.{name}": tensor.detach().cpu().contiguous()
        for prefix, module in modules.items()
        for name, tensor in module.state_dict().items()
    }


def save_weights(modules: Mapping[str, nn.Module], path: Path, info: CheckpointInfo) -> None:
    """Write the state of ``modules`` (``{"model": encoder, "objective": objective}``) to ``path``."""
    save_tensors(module_tensors(modules), path, info)


def save_tensors(tensors: Mapping[str, torch.Tensor], path: Path, info: CheckpointInfo) -> None:
    """Write named tensors (``model.<name>``: a fitted filter's state) with ``info`` as metadata."""
    contiguous = {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}
    atomic_write(path, lambda tmp: save_file(contiguous, str(tmp), metadata=info.to_metadata()))


def load_tensors(path: Path, prefix: str, expected: CheckpointInfo) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix.`` in ``path`` (prefix removed), after the checks of
    :func:`load_weights`: what a filter restores from."""
    check_info(path, read_checkpoint_info(path), expected)
    head = prefix + "."
    tensors = _read_tensors(path)
    return {name[len(head) :]: tensor for name, tensor in tensors.items() if name.startswith(head)}


def read_checkpoint_info(path: Path) -> CheckpointInfo:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error})") from error
    return CheckpointInfo.from_metadata(metadata, path)


def tensor_shape(path: Path, name: str) -> tuple[int, ...]:
    """The shape of tensor ``name`` in ``path``, read from the header (no data loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            if name not in handle.keys():  # noqa: SIM118 (a safe_open handle has no __contains__)
                raise CheckpointError(f"{path}: the checkpoint holds no '{name}'")
            return tuple(handle.get_slice(name).get_shape())
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error})") from error


def check_info(path: Path, found: CheckpointInfo, expected: CheckpointInfo) -> None:
    """The checkpoint at ``path`` must have been trained for this model, on this split."""
    for key in ("model", "num_users", "num_items", "split_hash"):
        if getattr(found, key) != getattr(expected, key):
            raise CheckpointError(
                f"{path}: checkpoint field '{key}' is {getattr(found, key)!r} but the current data/model "
                f"has {getattr(expected, key)!r}; it was trained on dataset '{found.dataset}' — use a "
                "run directory made for this data"
            )


def load_weights(modules: Mapping[str, nn.Module], path: Path, expected: CheckpointInfo) -> CheckpointInfo:
    """Load ``path`` into ``modules`` after checking it was trained on the same data and split.
    Only the named modules are read (inference passes the encoder alone)."""
    info = read_checkpoint_info(path)
    check_info(path, info, expected)
    tensors = _read_tensors(path)
    for prefix, module in modules.items():
        _load_module(path, module, prefix, tensors)
    return info


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{path}: cannot read checkpoint ({error})") from error


def _load_module(path: Path, module: nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    head = prefix + "."
    state = {name[len(head) :]: tensor for name, tensor in tensors.items() if name.startswith(head)}
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: the '{prefix}' weights do not fit: {error}") from error


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


class StatefulTask(Protocol):
    def state_dict(self) -> dict[str, torch.Tensor]: ...
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...


RESUME_FILE = "state.safetensors"


def save_resume_state(
    run_dir: Path,
    modules: Mapping[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    task: StatefulTask,
    state: TrainingState,
    info: CheckpointInfo,
) -> None:
    """Write everything ``--resume`` needs as one file, replaced atomically."""
    directory = run_dir / RESUME_DIR
    directory.mkdir(parents=True, exist_ok=True)
    optimizer_state = optimizer.state_dict()
    tensors = module_tensors(modules)
    for index, per_parameter in optimizer_state["state"].items():
        for key, value in per_parameter.items():
            tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    for name, tensor in task.state_dict().items():
        tensors[f"task.{name}"] = tensor.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    progress = {"state": asdict(state), "param_groups": optimizer_state["param_groups"]}
    metadata = {**info.to_metadata(), "progress": json.dumps(progress)}
    atomic_write(directory / RESUME_FILE, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_resume_state(
    run_dir: Path,
    modules: Mapping[str, nn.Module],
    optimizer: torch.optim.Optimizer,
    task: StatefulTask,
    expected: CheckpointInfo,
) -> TrainingState:
    """Restore what :func:`save_resume_state` wrote; the file must belong to this model and split."""
    path = run_dir / RESUME_DIR / RESUME_FILE
    if not path.is_file():
        raise CheckpointError(f"{path.parent}: no resumable state ({RESUME_FILE}) found")
    info = read_checkpoint_info(path)
    if (info.model, info.num_users, info.num_items, info.split_hash) != (
        expected.model,
        expected.num_users,
        expected.num_items,
        expected.split_hash,
    ):
        raise CheckpointError(
            f"{path}: resume state belongs to model '{info.model}' on dataset '{info.dataset}' "
            f"({info.num_users} users, {info.num_items} items, split {info.split_hash}), not to this config"
        )
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    try:
        progress = json.loads(metadata["progress"])
        state = TrainingState(**progress["state"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path}: the resume state's progress record is unreadable ({error})"
        ) from error
    if state.next_epoch != info.epoch + 1:
        raise CheckpointError(
            f"{path}: the weights are of epoch {info.epoch} but the progress says {state.next_epoch - 1}"
        )
    tensors = _read_tensors(path)
    device = next(iter(modules["model"].state_dict().values())).device
    for prefix, module in modules.items():
        _load_module(
            path, module, prefix, {k: v.to(device) for k, v in tensors.items() if k.startswith(prefix + ".")}
        )
    per_parameter: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            per_parameter.setdefault(int(index), {})[key] = tensor if key == "step" else tensor.to(device)
    optimizer.load_state_dict({"state": per_parameter, "param_groups": progress["param_groups"]})
    task.load_state_dict({name[5:]: t for name, t in tensors.items() if name.startswith("task.")})
    torch.set_rng_state(tensors["rng.torch"])
    return state
