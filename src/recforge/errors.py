"""The exceptions recforge raises on bad input, each naming where the fault is.

Validation happens at the boundary (readers, configs, checkpoints), so a user sees the file, the
line or field, and what was expected instead of a traceback from deep inside numpy.
"""

from __future__ import annotations

from pathlib import Path


class RecforgeError(Exception):
    """Base class of every error recforge raises on purpose."""


class DataFormatError(RecforgeError):
    """A data file (or an in-memory table) does not have the expected form.

    The message reads ``path:line: field 'name': problem``; ``line`` is 1-based and omitted when the
    fault is not tied to one line (an empty file, a missing column).
    """

    def __init__(self, path: str | Path, problem: str, *, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field, self.problem = str(path), line, field, problem
        where = self.path if line is None else f"{self.path}:{line}"
        what = problem if field is None else f"field '{field}': {problem}"
        super().__init__(f"{where}: {what}")


class ConfigError(RecforgeError):
    """An experiment configuration, an override or a name in it is invalid."""


class CheckpointError(RecforgeError):
    """A checkpoint or run directory is missing, incomplete, or belongs to other data."""


class UnknownNameError(ConfigError):
    """A name looked up in a registry does not exist; the message lists the valid names."""

    def __init__(self, kind: str, name: str, choices: list[str] | tuple[str, ...]):
        self.kind, self.name, self.choices = kind, name, tuple(choices)
        super().__init__(f"unknown {kind} '{name}'; choose one of: {', '.join(sorted(choices))}")


class UnknownIdError(RecforgeError):
    """A raw user or item id that a run directory does not know."""

    def __init__(self, kind: str, raw_id: str, run_dir: str | Path):
        self.kind, self.raw_id = kind, raw_id
        super().__init__(f"unknown {kind} id '{raw_id}': {run_dir} has no {kind} by that id")


class RunDirectoryError(RecforgeError):
    """A run directory that cannot be used: in use by another writer, or not writable."""


class TrainingDiverged(RecforgeError):  # noqa: N818 - the name the issue and users know
    """A loss or a parameter became NaN or infinite: the run stops, and nothing is scored."""
