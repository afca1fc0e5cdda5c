"""FAISS item indexes: exact where they should be, seen items never returned, parameters really
applied, and stale or torn index files refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.config import config_from_dict
from recforge.errors import ConfigError, RecforgeError
from recforge.retrieval.index import (
    INDEX_FILE,
    META_FILE,
    IndexParams,
    ItemIndex,
    build_index,
    evaluate_index,
    faiss_index,
    index_params,
    lifted_items,
    load_index,
)
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

NUM_USERS, NUM_ITEMS, PER_USER = 40, 300, 12


@pytest.fixture(scope="module")
def data_file(write_events) -> Path:
    return write_events(NUM_USERS, NUM_ITEMS, PER_USER, seed=9)


def run(data: Path, run_dir: Path, model: dict[str, object]):
    config = config_from_dict(
        {
            "name": "index-test",
            "seed": 3,
            "output_dir": str(run_dir),
            "data": {
                "name": str(data),
                "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
                "split": {"protocol": "random", "ratios": [0.6, 0.2, 0.2]},
            },
            "model": model,
            **(
                {}
                if model["name"] == "gfcf"
                else {
                    "train": {
                        "epochs": 2,
                        "batch_size": 64,
                        "num_threads": 1,
                        "early_stopping_metric": "recall@5",
                    }
                }
            ),
            "evaluation": {"ks": [5], "metrics": ["recall"]},
        }
    )
    train(config, show_progress=False)
    return load_recommender(run_dir, device="cpu")


@pytest.fixture(scope="module")
def recommender(data_file, tmp_path_factory):
    return run(data_file, tmp_path_factory.mktemp("mf") / "run", {"name": "mf", "dim": 16})


def exact_top(recommender, k: int) -> np.ndarray:
    scores = (recommender.user_embeddings() @ recommender.item_embeddings().T).numpy().astype(np.float64)
    seen = recommender.seen.tocoo()
    scores[seen.row, seen.col] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("exclusion", ["overfetch", "selector"])
def test_a_flat_index_is_exact_search_with_seen_items_excluded(recommender, exclusion):
    built = build_index(recommender, index_params("flat", {}))
    queries = recommender.user_embeddings().numpy()
    scores, ids = built.search(queries, 10, recommender.seen, exclusion=exclusion)
    assert np.array_equal(ids, exact_top(recommender, 10))
    expected = np.take_along_axis(queries @ recommender.item_embeddings().numpy().T, ids, 1)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kind", "settings"),
    [
        ("ivf", {"nlist": 8, "nprobe": 1}),
        ("hnsw", {"hnsw_m": 4, "ef_search": 1}),
        ("ivfpq", {"nlist": 4, "nprobe": 1, "pq_bits": 4, "refine": 0}),
    ],
)
@pytest.mark.parametrize("exclusion", ["overfetch", "selector"])
def test_approximate_answers_never_hold_a_seen_item(recommender, kind, settings, exclusion):
    built = build_index(recommender, index_params(kind, settings))
    _, ids = built.search(recommender.user_embeddings().numpy(), 20, recommender.seen, exclusion=exclusion)
    seen = recommender.seen
    for user, row in enumerate(ids):
        assert not set(row[row >= 0]) & set(seen.indices[seen.indptr[user] : seen.indptr[user + 1]])
    report = evaluate_index(recommender, built, k=20, users=None, exclusion=exclusion)
    assert report.seen_returned == 0
    assert 0.0 < report.recall <= 1.0


def test_a_user_who_has_seen_almost_everything_gets_padding_not_seen_items():
    items = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    flat = faiss.IndexFlatIP(4)
    flat.add(items)
    index = ItemIndex(flat, IndexParams(kind="flat"), {})
    seen = sp.csr_matrix(np.array([[1, 1, 1, 1, 0, 1]], dtype=np.float32))
    for exclusion in ("overfetch", "selector"):
        scores, ids = index.search(items[:1], 3, seen, exclusion=exclusion)
        assert ids.tolist() == [[4, -1, -1]]
        assert np.isneginf(scores[0, 1:]).all()


def test_hnsw_ef_search_is_really_applied():
    rng = np.random.default_rng(1)
    items = rng.normal(size=(4000, 16)).astype(np.float32)
    queries = rng.normal(size=(200, 16)).astype(np.float32)
    exact = np.argsort(-(queries @ items.T), axis=1)[:, :50]
    params = IndexParams(kind="hnsw", hnsw_m=4, ef_construction=16, hnsw_space="inner_product")
    graph, _ = faiss_index(items, params)
    recalls = {}
    for ef in (1, 400):
        index = ItemIndex(graph, params.model_copy(update={"ef_search": ef}), {})
        _, ids = index.search(queries, 50)
        recalls[ef] = np.mean([len(set(a) & set(e)) / 50 for a, e in zip(ids, exact, strict=True)])
    assert recalls[400] > recalls[1] + 0.1
    assert recalls[400] > 0.85


def test_lifted_items_turn_inner_product_order_into_l2_order():
    rng = np.random.default_rng(2)
    scale = rng.uniform(0.1, 3.0, size=(300, 1)).astype(np.float32)
    items = rng.normal(size=(300, 8)).astype(np.float32) * scale
    queries = rng.normal(size=(20, 8)).astype(np.float32) * 2.5
    lifted = lifted_items(items)
    norms = np.linalg.norm(lifted, axis=1)
    assert np.allclose(norms, norms.max(), rtol=1e-5)
    assert np.array_equal(lifted[:, :8], items)
    lifted_queries = np.hstack([queries, np.zeros((20, 1), np.float32)])
    distances = ((lifted_queries[:, None, :] - lifted[None, :, :]) ** 2).sum(-1)
    by_inner_product = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    assert np.array_equal(np.argsort(distances, axis=1)[:, :10], by_inner_product)


@pytest.mark.parametrize("space", ["lifted", "inner_product"])
def test_hnsw_scores_are_inner_products_in_either_space(space):
    """Both graphs must answer with q·x, whatever distance they walk by, and find the exact top
    items on a small table whose norms vary as trained embeddings do."""
    rng = np.random.default_rng(3)
    scale = rng.lognormal(0, 0.5, size=(2000, 1)).astype(np.float32)
    items = rng.normal(size=(2000, 8)).astype(np.float32) * scale
    queries = rng.normal(size=(50, 8)).astype(np.float32)
    params = IndexParams(kind="hnsw", hnsw_space=space, ef_search=2000)
    index = ItemIndex(faiss_index(items, params)[0], params, {})
    scores, ids = index.search(queries, 10)
    assert np.allclose(scores, np.einsum("bd,bkd->bk", queries, items[ids]), atol=1e-4)
    exact = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ids, exact, strict=True)])
    assert recall > 0.99


def test_save_and_load_round_trip_and_stale_or_torn_indexes_are_refused(recommender, data_file, tmp_path):
    built = build_index(recommender, index_params("hnsw", {"ef_search": 64}))
    directory = built.save(tmp_path / "index")
    loaded = load_index(directory, recommender)
    queries = recommender.user_embeddings().numpy()
    answers = [index.search(queries, 5, recommender.seen)[1] for index in (loaded, built)]
    assert np.array_equal(*answers)
    assert loaded.params.ef_search == 64
    meta = json.loads((directory / META_FILE).read_text())
    assert meta["kind"] == "hnsw"
    assert meta["num_items"] == recommender.split.num_items
    assert meta["dim"] == 16

    other = run(data_file, tmp_path / "other", {"name": "mf", "dim": 16})
    with pytest.raises(RecforgeError, match="a stale index"):
        load_index(directory, other)

    torn = tmp_path / "torn"
    shutil.copytree(directory, torn)
    (torn / INDEX_FILE).write_bytes((torn / INDEX_FILE).read_bytes()[:100])
    with pytest.raises(RecforgeError, match=r"does not match index\.json"):
        load_index(torn, recommender)
    (torn / META_FILE).write_text("{not json")
    with pytest.raises(RecforgeError, match="not a recforge index description"):
        load_index(torn, recommender)


def test_a_filter_run_has_no_index(data_file, tmp_path):
    filter_run = run(data_file, tmp_path / "gfcf", {"name": "gfcf", "num_factors": 4})
    with pytest.raises(RecforgeError, match="training-free filter"):
        build_index(filter_run, index_params("flat", {}))


@pytest.mark.parametrize(
    ("kind", "settings", "message"),
    [
        ("annoy", {}, "unknown index kind 'annoy'"),
        ("flat", {"nprobe": 2}, "index kind 'flat' does not read it"),
        ("hnsw", {"ef_search": 0}, "--param ef_search"),
        ("ivf", {"nprobe": True}, "--param nprobe"),
    ],
)
def test_index_parameters_are_checked_against_the_kind(kind, settings, message):
    with pytest.raises(ConfigError, match=message):
        index_params(kind, settings)


def test_build_time_checks_name_the_parameter(recommender):
    with pytest.raises(ConfigError, match="pq_m: 5 does not divide the embedding dimension 16"):
        build_index(recommender, index_params("ivfpq", {"pq_m": 5, "pq_bits": 4}))
    with pytest.raises(ConfigError, match=r"nlist: 1000 cells for \d+ items"):
        build_index(recommender, index_params("ivf", {"nlist": 1000}))


def test_queries_of_the_wrong_dimension_are_an_error(recommender):
    built = build_index(recommender, index_params("flat", {}))
    with pytest.raises(RecforgeError, match="queries must have shape"):
        built.search(torch.zeros(2, 3).numpy(), 5)
