"""Approximate nearest-neighbour indexes (FAISS) over a run's item table, with seen items excluded.

Every trained recforge model ranks by the dot product of a user's query with the item table
(:mod:`recforge.models.scoring`), so one index kind serves them all: inner product
(``METRIC_INNER_PRODUCT``) over ``Recommender.item_embeddings()``. No recipe ranks users by
cosine (GSAU's graph and both policies normalise inside their tables), so no normalisation is
applied. A training-free filter ranks by its own function of a history, not by a table, and has
no index.

Kinds (``IndexParams.kind``):

* ``flat``: exact search (``IndexFlatIP``), the reference the others are measured against;
* ``ivf``: ``IndexIVFFlat``, ``nlist`` k-means cells, ``nprobe`` of them visited per query;
* ``hnsw``: ``IndexHNSWFlat``, ``hnsw_m`` links per node, ``ef_construction`` at build and
  ``ef_search`` at query time (FAISS uses max(ef_search, k), so ``ef_search`` below k does nothing).
  ``hnsw_space`` says what the graph is navigated by. ``lifted`` (the default): L2 over items
  lifted to one norm M (Bachrach et al., RecSys 2014), x̂ = [x, sqrt(M² − ‖x‖²)] and q̂ = [q, 0],
  so ‖q̂ − x̂‖² = ‖q‖² + M² − 2 q·x and the nearest lifted item has the best inner product; scores
  come back as q·x = (‖q‖² + M² − ‖q̂ − x̂‖²) / 2. ``inner_product``: the graph is built and walked
  by q·x itself. Which is better depends on the table (``benchmarks/RESULTS.md``): on Gowalla
  LightGCN recall@100 at ef_search 512 is 0.975 lifted against 0.831 by inner product, on
  isotropic Gaussian vectors inner product wins;
* ``ivfpq``: ``IndexIVFPQ`` with ``pq_m`` sub-quantisers of ``pq_bits`` bits, then, with
  ``refine`` > 0, the best ``refine · k`` candidates re-scored exactly (``IndexRefineFlat``).

**Seen items** are excluded exactly: a batch is searched for ``k + s`` neighbours, ``s`` the most
items any of its users has seen, the seen ones are dropped (a vectorised binary search over the
sorted seen keys) and the best ``k`` kept, so an ANN answer never holds a training item. The
other route, one FAISS search per query with an ``IDSelectorNot(IDSelectorBatch(seen))``, is
``exclusion="selector"``; ``recforge index --evaluate --exclusion …`` times either.

An index is a directory: ``index.faiss`` (FAISS's own binary format, not a pickle) and
``index.json`` (the run's fingerprint: the SHA-256 of its ``model.safetensors`` and its split
hash; the kind, parameters, dimension, item count, build seconds, the index file's SHA-256).
:func:`load_index` refuses an index built for another run or another version of the weights.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field, ValidationError

from recforge.checkpoint import WEIGHTS_FILE
from recforge.config_base import Strict
from recforge.errors import ConfigError, RecforgeError
from recforge.evaluation.ranking import SparseRows
from recforge.files import atomic_write
from recforge.models.scoring import FilterScorer

IndexKind = Literal["flat", "ivf", "hnsw", "ivfpq"]
Exclusion = Literal["overfetch", "selector"]
INDEX_FILE, META_FILE = "index.faiss", "index.json"
FORMAT_VERSION = 2  # 2 adds hnsw_space; a format-1 HNSW graph is refused, not misread

PARAMETERS_OF: dict[str, tuple[str, ...]] = {
    "flat": (),
    "ivf": ("nlist", "nprobe"),
    "hnsw": ("hnsw_m", "ef_construction", "ef_search", "hnsw_space"),
    "ivfpq": ("nlist", "nprobe", "pq_m", "pq_bits", "refine"),
}
"""Which parameters each kind reads; setting another kind's parameter is an error."""

Count = Annotated[int, Field(gt=0)]


class IndexParams(Strict):
    """How to build and query an index; see the module docstring for each kind."""

    kind: IndexKind = "hnsw"
    nlist: Count | None = Field(default=None, description="IVF cells; default 4·sqrt(items)")
    nprobe: Count = 16
    hnsw_m: Count = 32
    ef_construction: Count = 200
    ef_search: Count = 128
    hnsw_space: Literal["lifted", "inner_product"] = "lifted"
    pq_m: Count | None = Field(default=None, description="PQ sub-quantisers (divides the dimension)")
    pq_bits: Annotated[int, Field(ge=1, le=16)] = 8
    refine: Annotated[int, Field(ge=0)] = 4

    def chosen(self) -> dict[str, Any]:
        """The parameters this kind reads, defaults filled in."""
        return {name: getattr(self, name) for name in PARAMETERS_OF[self.kind]}


def index_params(kind: str, settings: dict[str, object]) -> IndexParams:
    """``IndexParams`` from a kind and ``name=value`` settings, each checked against the kind."""
    if kind not in PARAMETERS_OF:
        raise ConfigError(f"--kind: unknown index kind '{kind}'; choose one of {', '.join(PARAMETERS_OF)}")
    foreign = sorted(set(settings) - set(PARAMETERS_OF[kind]))
    if foreign:
        allowed = ", ".join(PARAMETERS_OF[kind]) or "none"
        raise ConfigError(f"--param {foreign[0]}: index kind '{kind}' does not read it (it reads: {allowed})")
    try:
        return IndexParams.model_validate({"kind": kind, **settings})
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise ConfigError(f"--param {field}: {problem['msg']}") from None


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as error:  # a dependency, but say what to do if someone removed it
        raise RecforgeError("ANN indexes need faiss-cpu: pip install faiss-cpu") from error
    return faiss


def run_fingerprint(run_dir: Path, split_hash: str) -> str:
    """SHA-256 of the run's weights file and its split hash: what an index was built from."""
    return _file_sha256(run_dir / WEIGHTS_FILE, then=split_hash.encode())


def _file_sha256(path: Path, *, then: bytes = b"") -> str:
    """SHA-256 of the file's bytes followed by ``then``, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    digest.update(then)
    return digest.hexdigest()


def item_table(recommender: Any) -> np.ndarray:
    """(I, d) float32 C-contiguous item embeddings of a run, or why it has none to index."""
    if isinstance(recommender.scorer, FilterScorer):
        raise RecforgeError(
            f"{recommender.run_dir}: model '{recommender.model_name}' is a training-free filter that "
            "scores each user's history itself; an ANN index needs a model that ranks by embeddings"
        )
    return np.ascontiguousarray(recommender.item_embeddings().detach().float().cpu().numpy())


@dataclass
class ItemIndex:
    """A FAISS index over one run's item table, with what it was built from."""

    index: Any
    params: IndexParams
    meta: dict[str, Any]

    @property
    def num_items(self) -> int:
        return int(self.index.ntotal)

    @property
    def lifted(self) -> bool:
        return self.params.kind == "hnsw" and self.params.hnsw_space == "lifted"

    @property
    def dim(self) -> int:
        """The dimension of the item table (a lifted graph holds one coordinate more)."""
        return int(self.index.d) - self.lifted

    def _lifted_norm_sq(self) -> float:
        """M², the squared norm every lifted item has (the largest item norm, squared)."""
        if self.num_items == 0:
            return 0.0
        first = self.index.reconstruct(0)
        return float(np.dot(first, first))

    def _faiss_search(self, queries: np.ndarray, count: int, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's top ``count`` as (inner products, ids), through the lifting where there is one."""
        if not self.lifted:
            return self.index.search(queries, count, **options)
        lifted = np.hstack([queries, np.zeros((len(queries), 1), np.float32)])
        distances, ids = self.index.search(lifted, count, **options)
        query_norm_sq = np.einsum("bd,bd->b", queries, queries)[:, None]
        return ((query_norm_sq + self._lifted_norm_sq() - distances) / 2).astype(np.float32), ids

    def _set_query_parameters(self) -> None:
        faiss = _faiss()
        kind = self.params.kind
        if kind in ("ivf", "ivfpq"):
            faiss.extract_index_ivf(self.index).nprobe = self.params.nprobe
        if kind == "hnsw":
            self.index.hnsw.efSearch = self.params.ef_search
        if kind == "ivfpq" and isinstance(self.index, faiss.IndexRefine):  # built with refine > 0
            self.index.k_factor = float(max(1, self.params.refine))

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: sp.csr_matrix | None = None,
        *,
        exclusion: Exclusion = "overfetch",
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items by inner product for each (B, d) query row, skipping each row's
        ``exclude`` (B, I) items: (scores, ids), float32 and int64 (B, k), best first; a slot
        with nothing left to fill holds id -1 and score -inf."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise RecforgeError(f"queries must have shape (B, {self.dim}), got {queries.shape}")
        if exclude is not None and exclude.shape != (len(queries), self.num_items):
            raise RecforgeError(
                f"exclude must have shape ({len(queries)}, {self.num_items}), got {exclude.shape}"
            )
        self._set_query_parameters()
        if exclude is None or exclude.nnz == 0:
            scores, ids = self._faiss_search(queries, min(k, self.num_items))
            return self._padded(scores, ids, k)
        if exclusion == "selector":
            return self._search_with_selectors(queries, k, exclude)
        return self._search_overfetching(queries, k, exclude)

    def _search_overfetching(
        self, queries: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        fetch = min(k + int(np.diff(exclude.indptr).max()), self.num_items)
        scores, ids = self._faiss_search(queries, fetch)
        seen = SparseRows.from_csr(sp.csr_matrix(exclude)).contains(0, torch.from_numpy(ids)).numpy()
        dropped = seen | (ids < 0)
        scores = np.where(dropped, -np.inf, scores).astype(np.float32)
        ids = np.where(dropped, -1, ids)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # kept in FAISS's order otherwise
        return self._padded(np.take_along_axis(scores, order, 1), np.take_along_axis(ids, order, 1), k)

    def _search_with_selectors(
        self, queries: np.ndarray, k: int, exclude: sp.csr_matrix
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        rows_scores, rows_ids = [], []
        for row in range(len(queries)):
            seen = exclude.indices[exclude.indptr[row] : exclude.indptr[row + 1]].astype(np.int64)
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(seen))
            scores, ids = self._faiss_search(
                queries[row : row + 1],
                min(k, self.num_items),
                params=self._search_parameters(faiss, selector),
            )
            rows_scores.append(scores)
            rows_ids.append(ids)
        return self._padded(np.concatenate(rows_scores), np.concatenate(rows_ids), k)

    def _search_parameters(self, faiss: Any, selector: Any) -> Any:
        kind = self.params.kind
        if kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=self.params.nprobe)
        if kind == "hnsw":
            return faiss.SearchParametersHNSW(sel=selector, efSearch=self.params.ef_search)
        if kind == "ivfpq":
            inner = faiss.SearchParametersIVF(sel=selector, nprobe=self.params.nprobe)
            if self.params.refine:
                return faiss.IndexRefineSearchParameters(
                    k_factor=float(self.params.refine), base_index_params=inner
                )
            return inner
        return faiss.SearchParameters(sel=selector)

    @staticmethod
    def _padded(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ids = ids.astype(np.int64)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        if ids.shape[1] < k:
            width = k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, width)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, width)), constant_values=-np.inf)
        return scores, ids

    def save(self, directory: str | Path) -> Path:
        """Write ``index.faiss`` then ``index.json`` (with the index file's hash) into ``directory``."""
        faiss = _faiss()
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RecforgeError(
                f"{directory}: cannot create the index directory ({error.strerror})"
            ) from error
        atomic_write(directory / INDEX_FILE, lambda tmp: faiss.write_index(self.index, str(tmp)))
        meta = {**self.meta, "index_sha256": _file_sha256(directory / INDEX_FILE)}
        atomic_write(directory / META_FILE, lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))
        self.meta = meta
        return directory


def build_index(recommender: Any, params: IndexParams, *, threads: int | None = None) -> ItemIndex:
    """An index of ``params.kind`` over ``recommender``'s item table, trained and filled."""
    faiss = _faiss()
    if threads:
        faiss.omp_set_num_threads(threads)
    items = item_table(recommender)
    num_items, dim = items.shape
    index, build_seconds = faiss_index(items, params)
    meta = {
        "format": FORMAT_VERSION,
        "run_dir": str(Path(recommender.run_dir).resolve()),
        "run_fingerprint": run_fingerprint(Path(recommender.run_dir), recommender.split.content_hash),
        "model": recommender.model_name,
        "num_items": num_items,
        "dim": dim,
        "kind": params.kind,
        "params": params.chosen() | _derived(params, num_items, dim),
        "metric": "inner_product",
        "build_seconds": round(build_seconds, 3),
        "faiss": faiss.__version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return ItemIndex(index, params, meta)


def faiss_index(items: np.ndarray, params: IndexParams) -> tuple[Any, float]:
    """The FAISS index ``params`` describe over (I, d) float32 ``items``, trained and filled, and
    the seconds that took."""
    faiss = _faiss()
    started = time.perf_counter()
    index = _empty_index(faiss, params, *items.shape)
    if params.kind == "hnsw" and params.hnsw_space == "lifted":
        items = lifted_items(items)
    if not index.is_trained:
        index.train(items)
    index.add(items)
    return index, time.perf_counter() - started


def lifted_items(items: np.ndarray) -> np.ndarray:
    """(I, d + 1) items [x, sqrt(M² − ‖x‖²)], M the largest norm: all of norm M, so their L2
    order against a query [q, 0] is its inner-product order (module docstring)."""
    norm_sq = np.einsum("id,id->i", items, items, dtype=np.float64)
    lift = np.sqrt(np.maximum(norm_sq.max(initial=0.0) - norm_sq, 0.0))
    return np.ascontiguousarray(np.hstack([items, lift[:, None]]), dtype=np.float32)


def _derived(params: IndexParams, num_items: int, dim: int) -> dict[str, int]:
    derived = {}
    if params.kind in ("ivf", "ivfpq"):
        derived["nlist"] = _nlist(params, num_items)
    if params.kind == "ivfpq":
        derived["pq_m"] = _pq_m(params, dim)
    return derived


def _nlist(params: IndexParams, num_items: int) -> int:
    nlist = params.nlist or max(1, round(4 * float(np.sqrt(num_items))))
    if nlist > num_items:
        raise ConfigError(f"--param nlist: {nlist} cells for {num_items} items; at most one cell per item")
    return nlist


def _pq_m(params: IndexParams, dim: int) -> int:
    if params.pq_m is None:  # the most sub-quantisers of at least 4 dimensions each that divide d
        return max(m for m in range(1, dim + 1) if dim % m == 0 and dim // m >= 4) if dim >= 4 else 1
    if dim % params.pq_m:
        raise ConfigError(f"--param pq_m: {params.pq_m} does not divide the embedding dimension {dim}")
    return params.pq_m


def _empty_index(faiss: Any, params: IndexParams, num_items: int, dim: int) -> Any:
    inner_product = faiss.METRIC_INNER_PRODUCT
    if params.kind == "flat":
        return faiss.IndexFlatIP(dim)
    if params.kind == "hnsw":
        if params.hnsw_space == "lifted":
            index = faiss.IndexHNSWFlat(dim + 1, params.hnsw_m)  # L2 over lifted items
        else:
            index = faiss.IndexHNSWFlat(dim, params.hnsw_m, inner_product)
        index.hnsw.efConstruction = params.ef_construction
        return index
    nlist = _nlist(params, num_items)
    quantizer = faiss.IndexFlatIP(dim)
    if params.kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, inner_product)
    else:
        pq_bits = params.pq_bits
        if num_items < 2**pq_bits:
            raise ConfigError(
                f"--param pq_bits: {2**pq_bits} PQ centroids need at least as many items "
                f"to train on, the run has {num_items}; lower pq_bits"
            )
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, _pq_m(params, dim), pq_bits, inner_product)
        if params.refine:
            index = faiss.IndexRefineFlat(index)
    return index  # FAISS's Python wrapper keeps the quantizer alive with the index


def load_index(directory: str | Path, recommender: Any) -> ItemIndex:
    """The index in ``directory``, checked: built for this run's weights and split, file intact."""
    faiss = _faiss()
    directory = Path(directory)
    meta_path, index_path = directory / META_FILE, directory / INDEX_FILE
    try:
        meta = json.loads(meta_path.read_text())
        params = IndexParams.model_validate(
            {
                "kind": meta["kind"],
                **{
                    name: value
                    for name, value in meta["params"].items()
                    if name in PARAMETERS_OF[meta["kind"]]
                },
            }
        )
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as error:
        raise RecforgeError(f"{meta_path}: not a recforge index description ({error})") from error
    if meta.get("format") != FORMAT_VERSION:
        raise RecforgeError(
            f"{meta_path}: index format {meta.get('format')}, this recforge reads {FORMAT_VERSION}; "
            f"rebuild it with recforge index {recommender.run_dir}"
        )
    if not index_path.is_file():
        raise RecforgeError(f"{index_path}: missing; rebuild the index with recforge index")
    if _file_sha256(index_path) != meta.get("index_sha256"):
        raise RecforgeError(f"{index_path}: does not match {META_FILE} (torn or replaced); rebuild the index")
    expected = run_fingerprint(Path(recommender.run_dir), recommender.split.content_hash)
    if meta.get("run_fingerprint") != expected:
        raise RecforgeError(
            f"{directory}: a stale index, built for {meta.get('run_dir')} ({meta.get('model')}), not for "
            f"the weights and split of {recommender.run_dir}; rebuild it with recforge index "
            f"{recommender.run_dir}"
        )
    loaded = ItemIndex(faiss.read_index(str(index_path)), params, meta)
    if loaded.num_items != recommender.split.num_items or loaded.dim != meta.get("dim"):
        raise RecforgeError(
            f"{index_path}: holds {loaded.num_items} items of dimension {loaded.dim}, the run has "
            f"{recommender.split.num_items}"
        )
    return loaded


@dataclass(frozen=True)
class IndexEvaluation:
    """ANN against exact top-k over the same users, seen items excluded in both."""

    kind: str
    k: int
    users: int
    recall: float
    ann_qps: float
    exact_qps: float
    seen_returned: int
    exclusion: str

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def evaluate_index(
    recommender: Any,
    index: ItemIndex,
    *,
    k: int = 100,
    users: int | None = 2000,
    batch_size: int = 256,
    exclusion: Exclusion = "overfetch",
    seed: int = 0,
) -> IndexEvaluation:
    """recall@k of the index's top-k against exact top-k (the same dot products, torch), and the
    queries per second of each, over ``users`` seeded users (None: all), seen items excluded."""
    from recforge.evaluation.ranking import mask_seen_, top_k

    queries_all = recommender.user_embeddings().detach().float().cpu()
    items = torch.from_numpy(item_table(recommender))
    chosen = np.arange(len(queries_all))
    if users is not None and users < len(chosen):
        chosen = np.sort(np.random.default_rng(seed).choice(len(chosen), size=users, replace=False))
    seen = recommender.seen[chosen]
    exact_ids, ann_ids = [], []
    exact_seconds = ann_seconds = 0.0
    for start in range(0, len(chosen), batch_size):
        rows = chosen[start : start + batch_size]
        block, block_seen = queries_all[rows], seen[start : start + len(rows)]
        began = time.perf_counter()
        scores = block @ items.T
        mask_seen_(scores, *SparseRows.from_csr(block_seen).block(0, len(rows)))
        exact_ids.append(top_k(scores, k)[1].numpy())
        exact_seconds += time.perf_counter() - began
        began = time.perf_counter()
        ann_ids.append(index.search(block.numpy(), k, block_seen, exclusion=exclusion)[1])
        ann_seconds += time.perf_counter() - began
    exact, ann = np.concatenate(exact_ids), np.concatenate(ann_ids)
    found = [
        len(set(a[a >= 0]) & set(e[e >= 0])) / max(1, int((e >= 0).sum()))
        for a, e in zip(ann, exact, strict=True)
    ]
    leaked = SparseRows.from_csr(seen).contains(0, torch.from_numpy(ann)).sum()
    return IndexEvaluation(
        kind=index.params.kind,
        k=k,
        users=len(chosen),
        recall=float(np.mean(found)),
        ann_qps=len(chosen) / ann_seconds,
        exact_qps=len(chosen) / exact_seconds,
        seen_returned=int(leaked),
        exclusion=exclusion,
    )
