"""Shared fixtures: where the real benchmark data lives (``../shared/data`` beside the repo)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_root() -> Path | None:
    candidates = [os.environ.get("RECFORGE_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate, "MANIFEST.tsv").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared real datasets; tests that need them are skipped where it is absent."""
    root = _shared_data_root()
    if root is None:
        pytest.skip("../shared/data is not present (set RECFORGE_DATA to its path)")
    return root
