"""Writing artefacts whole: a temporary sibling renamed into place, and clean errors on failure."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError

from recforge.errors import RunDirectoryError

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once, at import (reading it means setting it; no other thread runs yet)
FILE_MODE = 0o666 & ~_UMASK
"""What ``open()`` would give a new file: safetensors creates its files 0600 whatever the umask,
which would keep a run directory from a service running as another user."""


def write_error(path: Path, error: Exception) -> RunDirectoryError:
    """The error for an artefact that could not be written, with what to do about it."""
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return RunDirectoryError(
        f"{path}: cannot write ({reason}); free disk space, fix the permissions, or set output_dir "
        "to a writable directory"
    )


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through ``write(temporary sibling)`` and one rename: a crash or a full disk
    leaves the old file or the new one, never a torn one. The file gets the usual mode
    (:data:`FILE_MODE`), whatever the writer created it with."""
    tmp = path.with_name(path.name + ".partial")
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except (OSError, SafetensorError) as error:
        tmp.unlink(missing_ok=True)
        raise write_error(path, error) from error
