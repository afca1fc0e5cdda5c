"""The hostile-input battery of ``scripts/hostile_battery.py`` runs in the suite: every bad input
ends in a clean error, every good one works (no traceback, nothing silently accepted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "hostile_battery.py"
spec = importlib.util.spec_from_file_location("hostile_battery", SCRIPT)
assert spec is not None
assert spec.loader is not None
battery = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = battery  # dataclasses look their module up there
spec.loader.exec_module(battery)


@pytest.mark.parametrize("case", battery.CASES, ids=[case.name for case in battery.CASES])
def test_case_ends_as_expected(case, monkeypatch, tmp_path):
    monkeypatch.setenv("RECFORGE_CACHE", str(tmp_path / "cache"))
    expected = "works" if case.expect == "ok" else "clean error"
    assert battery.run_case(case, verbose=False) == expected
