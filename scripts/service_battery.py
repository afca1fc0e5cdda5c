"""Malformed requests against `recforge serve`'s app, and the status code each gets (never a 500).

Runs through FastAPI's test client against a run directory (no network):

    .venv/bin/python scripts/service_battery.py RUN_DIR    # a markdown table of case, expected, got

``tests/retrieval/test_service.py`` runs the same cases on a tiny MF run. The cases assume an
embedding model that reads no histories (MF, LightGCN, ...), with users ``u1``/``u2`` and item
``i3`` known and ``--max-k 50 --max-batch 4`` with a 2 KiB body limit (the app the script builds).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from recforge.retrieval.recommender import load_recommender
from recforge.retrieval.service import Limits, create_app

LIMITS = Limits(max_k=50, max_batch=4, max_body_bytes=2048)


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    json: Any = None
    content: Any = None
    headers: dict[str, str] | None = None

    def send(self, client: TestClient) -> int:
        body = self.content() if callable(self.content) else self.content
        kwargs: dict[str, Any] = {"headers": self.headers or {}}
        if self.json is not None:
            kwargs["json"] = self.json
        if body is not None:
            kwargs["content"] = body
        return client.request(self.method, self.path, **kwargs).status_code


def _chunks() -> Iterator[bytes]:  # a chunked body with no Content-Length, past the limit
    yield b'{"users": ["'
    yield b"u" * 3000
    yield b'"]}'


JSON = {"content-type": "application/json"}
CASES = [
    Case("unknown user", "GET", "/recommend/nobody", 404),
    Case("unknown item for similar", "GET", "/similar/nothing", 404),
    Case("k = 0", "GET", "/recommend/u1?k=0", 422),
    Case("k above the maximum", "GET", "/recommend/u1?k=51", 422),
    Case("k negative", "GET", "/recommend/u1?k=-3", 422),
    Case("k not a number", "GET", "/recommend/u1?k=ten", 422),
    Case("k fractional", "GET", "/recommend/u1?k=2.5", 422),
    Case("batch above the maximum", "POST", "/recommend", 422, json={"users": ["u1"] * 5}),
    Case("empty batch", "POST", "/recommend", 422, json={"users": []}),
    Case("users not a list", "POST", "/recommend", 422, json={"users": "u1"}),
    Case("integer user ids", "POST", "/recommend", 422, json={"users": [1, 2]}),
    Case("unknown field", "POST", "/recommend", 422, json={"users": ["u1"], "extra": 1}),
    Case("body is a list", "POST", "/recommend", 422, json=[1, 2, 3]),
    Case("batch with an unknown user", "POST", "/recommend", 404, json={"users": ["u1", "ghost"]}),
    Case("k above the maximum in a batch", "POST", "/recommend", 422, json={"users": ["u1"], "k": 500}),
    Case("malformed JSON", "POST", "/recommend", 422, content=b"{not json", headers=JSON),
    Case("body above the limit", "POST", "/recommend", 413, json={"users": ["u" * 4000]}),
    Case("chunked body above the limit", "POST", "/recommend", 413, content=_chunks, headers=JSON),
    Case(
        "Content-Length not a number",
        "POST",
        "/recommend",
        400,
        content=b"{}",
        headers={**JSON, "content-length": "x"},
    ),
    Case(
        "history for a model without history queries",
        "POST",
        "/recommend/history",
        400,
        json={"items": ["i3"]},
    ),
    Case("empty history", "POST", "/recommend/history", 422, json={"items": []}),
    Case("empty title search", "GET", "/items?q=", 422),
    Case("title search limit above 50", "GET", "/items?q=i&limit=51", 422),
    Case("unknown route", "GET", "/nowhere", 404),
    Case("wrong method", "DELETE", "/recommend/u1", 405),
    Case("known user (control)", "GET", "/recommend/u1?k=5", 200),
    Case("batch (control)", "POST", "/recommend", 200, json={"users": ["u1", "u2"], "k": 3}),
]


def client_for(run_dir: str) -> TestClient:
    return TestClient(create_app(load_recommender(run_dir, device="cpu"), limits=LIMITS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    args = parser.parse_args()
    client = client_for(args.run_dir)
    print("| case | request | expected | got |\n|---|---|---|---|")
    failures = 0
    for case in CASES:
        got = case.send(client)
        failures += got != case.status
        print(f"| {case.name} | `{case.method} {case.path}` | {case.status} | {got} |")
    print(f"\n{len(CASES)} cases, {failures} not as expected")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
