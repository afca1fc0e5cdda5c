#!/usr/bin/env bash
# Build recforge's wheel, install it into a new virtual environment (dependencies from
# constraints.txt, torch pinned first as in the Makefile), and run the quick start and a
# recommendation from a directory outside the source tree: what a user of a release gets.
# Usage: scripts/wheel_smoke.sh PYTHON   (PYTHON: an interpreter with pip, e.g. .venv/bin/python)
set -euo pipefail
PYTHON=${1:-python3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$REPO"
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet torch==2.13.0
"$WORK/venv/bin/pip" install --quiet -c "$REPO/constraints.txt" "$WORK"/dist/recforge-*.whl

cd "$WORK"  # nothing of the source tree is importable from here
"$WORK/venv/bin/python" - "$REPO" <<'PY'
import sys
from pathlib import Path
import recforge
location = Path(recforge.__file__).resolve()
assert Path(sys.argv[1]) not in location.parents, f"recforge imported from the source tree: {location}"
print(f"recforge {recforge.__version__} from {location.parent}")
PY
"$WORK/venv/bin/recforge" quickstart --output-dir "$WORK/run" -o train.epochs=2 --users 1 --no-progress
"$WORK/venv/bin/recforge" recommend "$WORK/run" --user 196 -k 3
"$WORK/venv/bin/recforge" index "$WORK/run" --kind hnsw --evaluate -k 10 --users 100
# the service from the wheel, page included (package data), answered through its ASGI app
"$WORK/venv/bin/python" - "$WORK/run" <<'PY'
import asyncio
import sys

from recforge.retrieval.recommender import load_recommender
from recforge.retrieval.service import create_app


async def get(app, path):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [], "scheme": "http", "server": ("test", 80), "client": ("test", 1), "root_path": "",
             "http_version": "1.1"}
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

app = create_app(load_recommender(sys.argv[1], device="cpu"))
for path, needle in (("/", b"<title>recforge</title>"), ("/recommend/196", b'"query":"196"')):
    status, body = asyncio.run(get(app, path))
    assert status == 200 and needle in body, (path, status, body[:200])
print("service from the wheel: page and /recommend answer")
PY
echo "wheel smoke test passed"
