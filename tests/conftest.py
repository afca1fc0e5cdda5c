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
def write_titled_events(write_events):
    """``write_titled_events(users, items, per_user, *, seed) -> Path``: the events of
    ``write_events`` as a RecBole atomic ``.inter`` file, with an ``.item`` file of titles beside it
    (for the recipes that read item text)."""

    words = ["galaxy", "romance", "detective", "dragon", "winter", "comedy", "war", "ocean", "robot", "music"]

    def write(users: int, items: int, per_user: int, *, seed: int) -> Path:
        events = write_events(users, items, per_user, seed=seed)
        lines = events.read_text().splitlines()[1:]
        inter = events.with_name("titled.inter")
        inter.write_text(
            "user_id:token\titem_id:token\ttimestamp:float\n"
            + "".join(line.replace(",", "\t") + "\n" for line in lines)
        )
        inter.with_suffix(".item").write_text(
            "item_id:token\ttitle:token_seq\n"
            + "".join(f"i{m}\tThe {words[m % 10]} of {words[(m // 10) % 10]}\n" for m in range(items))
        )
        return inter

    return write


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared real datasets; tests that need them are skipped where it is absent."""
    root = _shared_data_root()
    if root is None:
        pytest.skip("../shared/data is not present (set RECFORGE_DATA to its path)")
    return root


@pytest.fixture(scope="session")
def write_events(tmp_path_factory):
    """``write_events(users, items, per_user, *, seed, gap=1000) -> Path``: a ``user,item,timestamp``
    CSV in which user ``u<n>`` has ``per_user`` distinct seeded random items ``i<m>``, stamped
    ``gap * n + step``: the tiny data most end-to-end tests train on."""

    def write(users: int, items: int, per_user: int, *, seed: int, gap: int = 1000) -> Path:
        import numpy as np

        rng = np.random.default_rng(seed)
        rows = ["user,item,timestamp"]
        for user in range(users):
            for step, item in enumerate(rng.choice(items, size=per_user, replace=False)):
                rows.append(f"u{user},i{item},{gap * user + step}")
        path = tmp_path_factory.mktemp("data") / "events.csv"
        path.write_text("\n".join(rows) + "\n")
        return path

    return write
