"""The HTTP service through FastAPI's test client (no network), and one real `recforge serve`
on a free loopback port: answers match the library, and bad requests get 4xx, never a 500."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from recforge.config import config_from_dict
from recforge.retrieval.index import build_index, index_params
from recforge.retrieval.recommender import load_recommender
from recforge.retrieval.service import Limits, create_app
from recforge.train.trainer import train

NUM_USERS, NUM_ITEMS, PER_USER = 30, 60, 10


@pytest.fixture(scope="module")
def data_file(write_events) -> Path:
    return write_events(NUM_USERS, NUM_ITEMS, PER_USER, seed=5)


def trained(data: Path, run_dir: Path, model: dict[str, object]) -> Path:
    config = config_from_dict(
        {
            "name": "service-test",
            "seed": 4,
            "output_dir": str(run_dir),
            "data": {
                "name": str(data),
                "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
                "split": {"protocol": "leave_one_out"},
            },
            "model": model,
            "objective": {"terms": {"ce": {"weight": 1.0}}} if model["name"] == "sasrec" else {},
            **(
                {}
                if model["name"] == "gfcf"
                else {
                    "train": {
                        "epochs": 2,
                        "batch_size": 32,
                        "num_threads": 1,
                        "early_stopping_metric": "recall@5",
                    }
                }
            ),
            "evaluation": {"ks": [5], "metrics": ["recall"]},
        }
    )
    train(config, show_progress=False)
    return run_dir


@pytest.fixture(scope="module")
def mf_run(data_file, tmp_path_factory) -> Path:
    return trained(data_file, tmp_path_factory.mktemp("mf") / "run", {"name": "mf", "dim": 8})


@pytest.fixture(scope="module")
def client(mf_run):
    recommender = load_recommender(mf_run, device="cpu")
    return TestClient(create_app(recommender, limits=Limits(max_k=50, max_batch=4, max_body_bytes=2048)))


def test_recommend_matches_the_library_and_excludes_seen_items(client, mf_run):
    recommender = load_recommender(mf_run, device="cpu")
    expected = recommender.recommend(["u3"], k=5)[0]
    response = client.get("/recommend/u3", params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    assert [entry["item"] for entry in body["items"]] == [entry.item for entry in expected]
    assert body["fallback"] is None
    seen = recommender.seen[recommender.user_index("u3")].indices
    assert not {recommender.item_index(entry["item"]) for entry in body["items"]} & set(seen)


def test_batch_history_similar_health_metadata_and_docs(client):
    batch = client.post("/recommend", json={"users": ["u1", "u2"], "k": 3}).json()
    assert [answer["query"] for answer in batch["results"]] == ["u1", "u2"]
    assert all(len(answer["items"]) == 3 for answer in batch["results"])
    assert client.get("/similar/i3", params={"k": 4}).status_code == 200
    assert client.get("/health").json()["status"] == "ok"
    metadata = client.get("/metadata").json()
    assert metadata["model"] == "mf"
    assert metadata["index"] is None
    assert "recall@5" in metadata["test"]
    assert client.get("/openapi.json").status_code == 200
    assert "<title>recforge</title>" in client.get("/").text
    found = client.get("/items", params={"q": "I1", "limit": 50}).json()
    assert {entry["item"] for entry in found} == {f"i{n}" for n in range(NUM_ITEMS) if str(n).startswith("1")}
    assert [entry["score"] for entry in found] == sorted((entry["score"] for entry in found), reverse=True)


SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "service_battery.py"
spec = importlib.util.spec_from_file_location("service_battery", SCRIPT)
assert spec is not None
assert spec.loader is not None
battery = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = battery  # dataclasses look their module up there
spec.loader.exec_module(battery)


@pytest.fixture(scope="module")
def battery_client(mf_run):
    return battery.client_for(str(mf_run))


@pytest.mark.parametrize("case", battery.CASES, ids=[case.name for case in battery.CASES])
def test_malformed_requests_get_4xx_never_500(battery_client, case):
    assert case.send(battery_client) == case.status


def test_unknown_users_get_popular_items_when_asked(mf_run):
    recommender = load_recommender(mf_run, device="cpu")
    client = TestClient(create_app(recommender, fallback="popular"))
    body = client.get("/recommend/nobody", params={"k": 3}).json()
    assert body["fallback"] == "popular"
    counts = np.asarray(recommender.split.csr("train").sum(axis=0)).ravel()
    assert [entry["score"] for entry in body["items"]] == sorted(counts, reverse=True)[:3]


def test_an_index_answers_like_exact_search_for_a_flat_index(mf_run):
    recommender = load_recommender(mf_run, device="cpu")
    exact = TestClient(create_app(recommender)).get("/recommend/u5", params={"k": 6}).json()
    index = build_index(recommender, index_params("flat", {}))
    indexed = TestClient(create_app(recommender, index=index))
    answer = indexed.get("/recommend/u5", params={"k": 6}).json()
    assert [entry["item"] for entry in answer["items"]] == [entry["item"] for entry in exact["items"]]
    assert indexed.get("/metadata").json()["index"]["kind"] == "flat"


def test_a_filter_run_is_served_by_its_own_scores(data_file, tmp_path):
    run = trained(data_file, tmp_path / "gfcf", {"name": "gfcf", "num_factors": 4})
    recommender = load_recommender(run, device="cpu")
    client = TestClient(create_app(recommender))
    body = client.get("/recommend/u4", params={"k": 5}).json()
    assert [entry["item"] for entry in body["items"]] == [
        entry.item for entry in recommender.recommend(["u4"], 5)[0]
    ]


def test_the_api_key_is_required_when_set(mf_run):
    client = TestClient(create_app(load_recommender(mf_run, device="cpu"), api_key="s3cret"))
    assert client.get("/recommend/u1").status_code == 401
    assert client.get("/recommend/u1", headers={"x-api-key": "wrong"}).status_code == 401
    assert client.get("/recommend/u1", headers={"x-api-key": "s3cret"}).status_code == 200
    assert client.get("/health").status_code == 200


def test_history_answers_for_a_sequential_run(data_file, tmp_path):
    run = trained(
        data_file,
        tmp_path / "sasrec",
        {"name": "sasrec", "dim": 8, "max_length": 5, "num_layers": 1, "num_heads": 1},
    )
    recommender = load_recommender(run, device="cpu")
    client = TestClient(create_app(recommender))
    body = client.post("/recommend/history", json={"items": ["i1", "i2"], "k": 4}).json()
    expected = recommender.recommend_for_history(["i1", "i2"], 4)
    assert [entry["item"] for entry in body["items"]] == [entry.item for entry in expected]
    assert client.post("/recommend/history", json={"items": ["i1", "zz"]}).status_code == 404


def wait_until_up(server: subprocess.Popen, port: int) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                stderr = server.stderr.read() if server.stderr else ""
                raise AssertionError(f"recforge serve did not come up: {stderr}") from None
            time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_recforge_serve_answers_on_loopback(mf_run):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "recforge.cli",
        "serve",
        str(mf_run),
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    server = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        health = wait_until_up(server, port)
        assert health.json()["model"] == "mf"
        answer = httpx.get(f"http://127.0.0.1:{port}/recommend/u2", params={"k": 3}, timeout=5)
        assert answer.status_code == 200
        assert len(answer.json()["items"]) == 3
        assert httpx.get(f"http://127.0.0.1:{port}/recommend/ghost", timeout=5).status_code == 404
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "ready in" in server.stderr.read()


def test_serve_refuses_to_bind_beyond_loopback_without_a_key(mf_run):
    command = [sys.executable, "-m", "recforge.cli", "serve", str(mf_run), "--host", "0.0.0.0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "needs --api-key-env" in done.stderr


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(BROWSER is None, reason="no chromium on PATH (Debian: apt-get install chromium)")
def test_the_page_renders_a_query_in_a_real_browser(mf_run, tmp_path):
    recommender = load_recommender(mf_run, device="cpu")
    expected = [entry.item for entry in recommender.recommend(["u3"], k=5)[0]]
    similar = [entry.item for entry in recommender.similar_items("i3", k=3)]
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "recforge.cli",
        "serve",
        str(mf_run),
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        wait_until_up(server, port)
        for query, wanted in (("user=u3&k=5", expected), ("similar=i3&k=3", similar)):
            dom = subprocess.run(
                [
                    BROWSER,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--virtual-time-budget=10000",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--dump-dom",
                    f"http://127.0.0.1:{port}/?{query}",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
            rendered = re.findall(r'<a class="item"[^>]*>([^<]+)</a>', dom)
            assert rendered == wanted, dom[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=20)
