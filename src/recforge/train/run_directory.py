"""A run directory while a run writes to it: one writer at a time, whole files or none.

* **One writer.** ``recforge train`` holds an exclusive ``flock`` on ``RUN_DIR/.lock`` for as long as
  it runs; a second writer fails at once with the holder's pid. The kernel drops the lock when the
  holder exits, however it exits, so a crash never leaves a stale lock behind (the file may stay;
  it is not the lock).
* **Whole files.** Every artefact is written to a temporary sibling and renamed into place, so a
  kill or a full disk leaves the old version or the new one, never a torn one. ``log.jsonl`` is
  appended line by line; a torn last line (a kill mid-write) is dropped when a run resumes.
* **Clear failures.** A directory that cannot be created or written (read-only, under a regular
  file, a full disk) is a :class:`RunDirectoryError` naming the path and the remedy.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO, Any

from recforge.errors import RunDirectoryError
from recforge.files import atomic_write, write_error

LOCK_FILE = ".lock"
LOG_FILE = "log.jsonl"
RESULT_FILES = ("metrics.json", "model.safetensors", LOG_FILE)
"""What a finished run leaves besides its config, split and id maps; a new run clears them first, so
no artefact of an earlier run is ever read as this run's."""


class RunDirectory:
    """The directory of one run, locked for its writer (use as a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: IO[str] | None = None

    def __enter__(self) -> RunDirectory:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = (self.path / LOCK_FILE).open("a+")
        except OSError as error:
            raise RunDirectoryError(
                f"{self.path}: cannot create the run directory ({error.strerror or error}); set "
                "output_dir to a writable directory"
            ) from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirectoryError(
                f"{self.path}: another recforge process is writing this run directory ({holder}); "
                "wait for it to finish, or set output_dir to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
        self._lock = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    # -- whole files ------------------------------------------------------------------------------

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path / name, lambda tmp: tmp.write_text(text))

    def write_json(self, name: str, payload: Any) -> None:
        self.write_text(name, json.dumps(payload, indent=2))

    def clear_results(self) -> None:
        """Remove an earlier run's results and resume state (a new run starts here)."""
        try:
            for name in RESULT_FILES:
                (self.path / name).unlink(missing_ok=True)
            resume = self.path / "resume"
            if resume.is_dir():
                for child in resume.iterdir():
                    child.unlink()
        except OSError as error:
            raise write_error(self.path, error) from error

    # -- the epoch log ----------------------------------------------------------------------------

    def append_log(self, record: dict[str, Any]) -> None:
        path = self.path / LOG_FILE
        try:
            with path.open("a") as log:
                log.write(json.dumps(record) + "\n")
        except OSError as error:
            raise write_error(path, error) from error

    def truncate_log(self, next_epoch: int) -> list[str]:
        """Keep the log lines of epochs before ``next_epoch`` (later ones ran, but their state was
        not saved). Returns notes for the console: a torn last line is dropped, a malformed line
        elsewhere is an error."""
        path = self.path / LOG_FILE
        if not path.exists():
            return []
        lines = path.read_text().splitlines()
        kept, notes = [], []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                epoch = json.loads(line)["epoch"]
            except (ValueError, KeyError, TypeError) as error:
                if number == len(lines):
                    notes.append(f"{path}:{number}: dropped a torn last line (a kill while writing it)")
                    continue
                raise RunDirectoryError(
                    f"{path}:{number}: not a log record ({error}); the log was edited or damaged"
                ) from error
            if epoch < next_epoch:
                kept.append(line)
        self.write_text(LOG_FILE, "".join(line + "\n" for line in kept))
        return notes
