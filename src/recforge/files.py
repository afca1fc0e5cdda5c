"""Writing artefacts whole: a temporary sibling renamed into place, and clean errors on failure."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError

from recforge.errors import RunDirectoryError


def write_error(path: Path, error: Exception) -> RunDirectoryError:
    """The error for an artefact that could not be written, with what to do about it."""
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return RunDirectoryError(
        f"{path}: cannot write ({reason}); free disk space, fix the permissions, or set output_dir "
        "to a writable directory"
    )


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through ``write(temporary sibling)`` and one rename: a crash or a full disk
    leaves the old file or the new one, never a torn one."""
    tmp = path.with_name(path.name + ".partial")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, SafetensorError) as error:
        tmp.unlink(missing_ok=True)
        raise write_error(path, error) from error
