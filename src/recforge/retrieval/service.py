"""The HTTP service over one run directory: FastAPI routes around a :class:`Recommender`.

``recforge serve RUN_DIR`` builds the app once (the model loaded, the tables computed) and hands
it to uvicorn. Ids in and out are the dataset's raw ids; answers carry scores and titles. What a
request may not do, and what it gets instead of a 500:

* an unknown user or item: 404 with ``{"detail": "unknown user id 'x' ..."}`` (or, with
  ``fallback="popular"``, the most popular training items, marked ``"fallback": "popular"``);
* ``k`` below 1 or above ``max_k``, a batch above ``max_batch`` users, a history above
  ``max_history`` items, a non-list body: 422 with pydantic's account of the field;
* a body above ``max_body_bytes``: 413, read no further than the limit (a Content-Length that is
  not a number: 400);
* a question the model cannot answer (a history for a model that ranks by user, similar items
  for EASE): 400 with the reason;
* with ``api_key`` set, a request without ``X-API-Key: <key>`` (``/health`` excepted): 401.

With an :class:`~recforge.retrieval.index.ItemIndex`, user recommendations come from the index
(seen items still excluded exactly); without one, from exact scoring.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations at run time,
# and some name types local to create_app
import hmac
import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from recforge.errors import RecforgeError, UnknownIdError
from recforge.models.scoring import FilterScorer
from recforge.retrieval.index import ItemIndex
from recforge.retrieval.recommender import Recommendation, Recommender

PAGE = Path(__file__).with_name("page.html")


class Limits(BaseModel):
    """What one request may ask for."""

    model_config = ConfigDict(frozen=True)

    max_k: int = Field(default=1000, gt=0)
    max_batch: int = Field(default=256, gt=0)
    max_history: int = Field(default=200, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)


class ItemOut(BaseModel):
    item: str
    score: float
    title: str | None = None


class Answer(BaseModel):
    """One ranked list: for a user, a history or an item."""

    query: str
    items: list[ItemOut]
    fallback: str | None = Field(default=None, description="'popular' when the user was unknown")


class BatchAnswer(BaseModel):
    results: list[Answer]


def _answer(query: str, ranked: list[Recommendation], fallback: str | None = None) -> Answer:
    items = [ItemOut(item=entry.item, score=entry.score, title=entry.title) for entry in ranked]
    return Answer(query=query, items=items, fallback=fallback)


class _BodyLimit:
    """413 for a body above ``limit`` bytes: by its declared length before anything is read, or,
    for a body without one (chunked), as soon as what arrived passes the limit (pure ASGI, so the
    body is counted as it streams and never buffered beyond the limit)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        refusal = None
        if declared is not None and not declared.isdigit():
            refusal = JSONResponse({"detail": "Content-Length is not a byte count"}, status_code=400)
        elif declared is not None and int(declared) > self.limit:
            refusal = JSONResponse({"detail": f"request body above {self.limit} bytes"}, status_code=413)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # FastAPI passes an HTTPException from body reading on
                    raise HTTPException(status_code=413, detail=f"request body above {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


class _ApiKey(BaseHTTPMiddleware):
    def __init__(self, app: Any, key: str) -> None:
        super().__init__(app)
        self.key = key.encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.headers.get("x-api-key", "").encode()
        if request.url.path != "/health" and not hmac.compare_digest(given, self.key):
            return JSONResponse({"detail": "missing or wrong X-API-Key header"}, status_code=401)
        return await call_next(request)


class Service:
    """The scoring behind the routes: exact or through an index, with the popular fallback."""

    def __init__(self, recommender: Recommender, index: ItemIndex | None, fallback: str | None) -> None:
        self.recommender, self.index, self.fallback = recommender, index, fallback
        if not isinstance(recommender.scorer, FilterScorer):
            recommender.user_embeddings()  # the tables once, now, not racing in the first requests
        counts = np.asarray(recommender.split.csr("train").sum(axis=0)).ravel()
        self.popular = np.argsort(-counts, kind="stable")
        self.counts = counts
        titles = recommender.item_titles or [""] * len(recommender.item_ids)
        self.names = np.array(
            [f"{raw}\n{title}".casefold() for raw, title in zip(recommender.item_ids, titles, strict=True)]
        )
        self.queries = recommender.user_embeddings() if index is not None else None

    def recommend(self, raw_users: list[str], k: int) -> list[Answer]:
        known: list[str] = []
        unknown: list[str] = []
        for raw in raw_users:
            (known if self.recommender.knows_user(raw) else unknown).append(raw)
        if unknown and self.fallback is None:
            raise UnknownIdError("user", unknown[0], self.recommender.run_dir)
        answers = dict(zip(known, self._ranked(known, k), strict=True))
        popular = self._popular(k)
        return [
            _answer(raw, answers[raw]) if raw in answers else _answer(raw, popular, fallback="popular")
            for raw in raw_users
        ]

    def _ranked(self, raw_users: list[str], k: int) -> list[list[Recommendation]]:
        if not raw_users:
            return []
        if self.index is None or self.queries is None:
            return self.recommender.recommend(raw_users, k)
        recommender = self.recommender
        users = np.array([recommender.user_index(raw) for raw in raw_users])
        queries = self.queries[torch.as_tensor(users)].float().cpu().numpy()
        scores, ids = self.index.search(queries, k, recommender.seen[users])
        return [
            [
                Recommendation(recommender.item_ids[item], float(score), recommender.title(int(item)))
                for score, item in zip(row_scores, row_ids, strict=True)
                if item >= 0
            ]
            for row_scores, row_ids in zip(scores, ids, strict=True)
        ]

    def _popular(self, k: int) -> list[Recommendation]:
        recommender = self.recommender
        return [
            Recommendation(recommender.item_ids[item], float(self.counts[item]), recommender.title(int(item)))
            for item in self.popular[:k]
        ]

    def search_titles(self, text: str, limit: int) -> list[ItemOut]:
        """Items whose title (or raw id) contains ``text``, case-insensitive, most popular first:
        the page's autocomplete (one vectorised substring search over names folded at start-up)."""
        found = np.flatnonzero(np.char.find(self.names, text.casefold()) >= 0)
        found = found[np.argsort(-self.counts[found], kind="stable")][:limit]
        recommender = self.recommender
        return [
            ItemOut(
                item=recommender.item_ids[item],
                score=float(self.counts[item]),
                title=recommender.title(int(item)),
            )
            for item in found
        ]


def create_app(
    recommender: Recommender,
    *,
    index: ItemIndex | None = None,
    fallback: str | None = None,
    api_key: str | None = None,
    limits: Limits | None = None,
) -> FastAPI:
    """The FastAPI app serving ``recommender`` (see the module docstring for the contract)."""
    if fallback not in (None, "popular"):
        raise RecforgeError(f"fallback must be 'popular' or None, got {fallback!r}")
    bounds = limits or Limits()
    started = time.perf_counter()
    service = Service(recommender, index, fallback)
    metrics_file = Path(recommender.run_dir) / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    metadata = {
        "model": recommender.model_name,
        "dataset": recommender.info.dataset,
        "run_dir": str(recommender.run_dir),
        "users": recommender.split.num_users,
        "items": recommender.split.num_items,
        "reads_histories": recommender.reads_histories,
        "index": None if index is None else {"kind": index.params.kind, **index.meta.get("params", {})},
        "fallback": fallback,
        "valid": metrics.get("valid"),
        "test": metrics.get("test"),
        "limits": bounds.model_dump(),
    }
    app = FastAPI(
        title=f"recforge: {recommender.model_name} on {recommender.info.dataset}",
        description="Recommendations from one recforge run directory. Ids are the dataset's raw ids.",
        version="1",
    )
    app.add_middleware(_BodyLimit, limit=bounds.max_body_bytes)
    if api_key:
        app.add_middleware(_ApiKey, key=api_key)

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, error: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(error), "kind": error.kind, "id": error.raw_id}, status_code=404)

    @app.exception_handler(RecforgeError)
    async def cannot_answer(request: Request, error: RecforgeError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    count = Annotated[int, Query(ge=1, le=bounds.max_k, description="how many items")]
    raw_id = Annotated[str, PathParameter(min_length=1, max_length=256)]

    class UsersRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        users: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
            min_length=1, max_length=bounds.max_batch
        )
        k: int = Field(default=10, ge=1, le=bounds.max_k)

    class HistoryRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
            min_length=1, max_length=bounds.max_history
        )
        k: int = Field(default=10, ge=1, le=bounds.max_k)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "model": recommender.model_name, "items": recommender.split.num_items}

    @app.get("/metadata")
    def get_metadata() -> dict[str, object]:
        return metadata

    @app.get("/recommend/{user}", response_model=Answer)
    def recommend_user(user: raw_id, k: count = 10) -> Answer:
        return service.recommend([user], k)[0]

    @app.post("/recommend", response_model=BatchAnswer)
    def recommend_users(body: UsersRequest) -> BatchAnswer:
        return BatchAnswer(results=service.recommend(body.users, body.k))

    @app.post("/recommend/history", response_model=Answer)
    def recommend_history(body: HistoryRequest) -> Answer:
        return _answer("history", recommender.recommend_for_history(body.items, body.k))

    @app.get("/similar/{item}", response_model=Answer)
    def similar(item: raw_id, k: count = 10) -> Answer:
        return _answer(item, recommender.similar_items(item, k))

    @app.get("/items", response_model=list[ItemOut])
    def items(
        q: Annotated[str, Query(min_length=1, max_length=100, description="part of a title or id")],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> list[ItemOut]:
        return service.search_titles(q, limit)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text())

    metadata["startup_seconds"] = round(time.perf_counter() - started, 3)
    return app
