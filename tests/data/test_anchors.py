"""Anchor hop distances and weights (recforge.data.anchors) against hand-computed values and a
pure-Python BFS."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data.anchors import (
    anchor_hop_distances,
    anchor_position_weights,
    anchor_weights,
    bipartite_adjacency,
    sample_anchors,
)
from recforge.errors import ConfigError, RecforgeError

INF = np.inf


@pytest.fixture
def small_train() -> sp.csr_matrix:
    """4 users × 5 items. Graph (item i is node 4+i):

        u0 - i0 - u1 - i1 - u2 - i2        nodes 0 - 4 - 1 - 5 - 2 - 6   (a path of 5 hops)
        u3 - i3                            nodes 3 - 7                    (a second component)
        i4                                 node 8                         (isolated)

    u1-i0 is stored twice and u2-i2 has value 5: both are one plain edge.
    """
    users = np.array([0, 1, 1, 1, 2, 2, 3])
    items = np.array([0, 0, 0, 1, 1, 2, 3])
    values = np.array([1, 1, 1, 1, 1, 5, 1], dtype=np.float32)
    return sp.csr_matrix((values, (users, items)), shape=(4, 5))


def python_bfs(adjacency: sp.csr_matrix, anchors: np.ndarray, cutoff: int) -> np.ndarray:
    """One queue-based BFS per anchor over Python adjacency lists: the obvious reference."""
    num_nodes = adjacency.shape[0]
    neighbours = [
        adjacency.indices[adjacency.indptr[v] : adjacency.indptr[v + 1]].tolist() for v in range(num_nodes)
    ]
    distances = np.full((num_nodes, len(anchors)), INF)
    for column, anchor in enumerate(anchors.tolist()):
        hops = {anchor: 0}
        queue = deque([anchor])
        while queue:
            node = queue.popleft()
            if hops[node] == cutoff:
                continue
            for neighbour in neighbours[node]:
                if neighbour not in hops:
                    hops[neighbour] = hops[node] + 1
                    queue.append(neighbour)
        for node, hop in hops.items():
            distances[node, column] = hop
    return distances


def random_train(seed: int, num_users: int = 60, num_items: int = 90, density: float = 0.03) -> sp.csr_matrix:
    """Sparse enough to leave several components, far nodes and isolated ones."""
    return sp.random(num_users, num_items, density=density, format="csr", rng=np.random.default_rng(seed))


# --- bipartite_adjacency ----------------------------------------------------------------------------


def test_adjacency_is_the_symmetric_bipartite_graph(small_train):
    adjacency = bipartite_adjacency(small_train)
    expected = np.zeros((9, 9), dtype=bool)
    for user, node in [(0, 4), (1, 4), (1, 5), (2, 5), (2, 6), (3, 7)]:
        expected[user, node] = expected[node, user] = True
    assert isinstance(adjacency, sp.csr_matrix)
    assert adjacency.dtype == np.bool_
    assert adjacency.has_sorted_indices
    assert adjacency.nnz == 12  # the duplicate u1-i0 counts once
    np.testing.assert_array_equal(adjacency.toarray(), expected)


def test_adjacency_drops_explicit_zeros_and_reads_other_formats():
    coo = sp.coo_array((np.array([1.0, 0.0, 2.0]), (np.array([0, 1, 1]), np.array([0, 0, 1]))), shape=(2, 2))
    adjacency = bipartite_adjacency(coo)
    assert adjacency.shape == (4, 4)
    # the stored structure, not .nonzero() (which would hide a stored zero): u1-i0 is no edge
    np.testing.assert_array_equal(adjacency.indptr, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(adjacency.indices, [2, 3, 0, 1])
    assert adjacency.data.all()


# --- anchor_hop_distances ---------------------------------------------------------------------------


def test_hand_computed_distances(small_train):
    adjacency = bipartite_adjacency(small_train)
    anchors = np.array([0, 3, 8])  # one end of the path, the second component, the isolated item
    distances = anchor_hop_distances(adjacency, anchors, cutoff=4)
    expected = np.array(
        [
            # u0   u3   i4
            [0, INF, INF],  # node 0 = u0
            [2, INF, INF],  # node 1 = u1
            [4, INF, INF],  # node 2 = u2, exactly at the cut-off
            [INF, 0, INF],  # node 3 = u3
            [1, INF, INF],  # node 4 = i0
            [3, INF, INF],  # node 5 = i1
            [INF, INF, INF],  # node 6 = i2: 5 hops from u0, beyond q = 4
            [INF, 1, INF],  # node 7 = i3
            [INF, INF, 0],  # node 8 = i4, isolated
        ]
    )
    assert distances.dtype == np.float32
    assert distances.shape == (9, 3)
    np.testing.assert_array_equal(distances, expected)
    # one more hop of cut-off reaches i2, and nothing else changes
    expected[6, 0] = 5
    np.testing.assert_array_equal(anchor_hop_distances(adjacency, anchors, cutoff=5), expected)


def test_hand_computed_weights_are_exactly_zero_beyond_cutoff_and_across_components(small_train):
    adjacency = bipartite_adjacency(small_train)
    anchors = np.array([0, 3])
    weights = anchor_weights(anchor_hop_distances(adjacency, anchors, cutoff=4), cutoff=4)
    expected = np.array(
        [[1, 0], [1 / 3, 0], [1 / 5, 0], [0, 1], [1 / 2, 0], [1 / 4, 0], [0, 0], [0, 1 / 2], [0, 0]],
        dtype=np.float32,
    )
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, expected)  # exact: zeros are zeros, not tiny numbers
    assert weights[6, 0] == 0.0  # beyond the cut-off
    assert not weights[[0, 1, 2, 4, 5, 6], 1].any()  # the other component


@pytest.mark.parametrize("cutoff", [1, 2, 3, 6, 1000])
@pytest.mark.parametrize(("seed", "count"), [(0, 1), (1, 20), (2, 64), (3, 65), (4, 150)])
def test_matches_python_bfs_on_random_graphs(seed, count, cutoff):
    adjacency = bipartite_adjacency(random_train(seed))
    anchors = sample_anchors(adjacency.shape[0], count, np.random.default_rng(seed))
    distances = anchor_hop_distances(adjacency, anchors, cutoff)
    np.testing.assert_array_equal(distances, python_bfs(adjacency, anchors, cutoff))
    # the graph is big and sparse enough for these checks to mean something
    reference = python_bfs(adjacency, anchors, 1000)
    if count >= 20 and cutoff <= 2:
        assert np.isfinite(reference[~np.isfinite(distances)]).any(), "no node lies beyond the cut-off"
    assert np.isinf(reference).any(), "the random graph is connected; no unreachable case tested"


def test_anchor_is_at_distance_zero_and_weight_one():
    adjacency = bipartite_adjacency(random_train(5))
    anchors = sample_anchors(adjacency.shape[0], 40, np.random.default_rng(5))
    distances = anchor_hop_distances(adjacency, anchors, cutoff=3)
    columns = np.arange(len(anchors))
    np.testing.assert_array_equal(distances[anchors, columns], 0)
    np.testing.assert_array_equal(anchor_weights(distances, 3)[anchors, columns], 1)
    # and no other node is at distance 0 from an anchor
    assert (distances == 0).sum() == len(anchors)


def test_duplicate_anchors_give_identical_columns():
    adjacency = bipartite_adjacency(random_train(6))
    distances = anchor_hop_distances(adjacency, np.array([7, 3, 7]), cutoff=4)
    np.testing.assert_array_equal(distances[:, 0], distances[:, 2])


def test_adjacency_in_other_sparse_formats(small_train):
    adjacency = bipartite_adjacency(small_train)
    expected = anchor_hop_distances(adjacency, np.array([0, 3]), 4)
    for other in (adjacency.tocoo(), sp.csr_array(adjacency), adjacency.astype(np.float32).tocsc()):
        np.testing.assert_array_equal(anchor_hop_distances(other, np.array([0, 3]), 4), expected)


def test_graph_without_edges():
    adjacency = bipartite_adjacency(sp.csr_matrix((2, 3)))
    distances = anchor_hop_distances(adjacency, np.array([1, 4]), cutoff=2)
    expected = np.full((5, 2), INF)
    expected[1, 0] = expected[4, 1] = 0
    np.testing.assert_array_equal(distances, expected)


# --- anchor_weights ---------------------------------------------------------------------------------


def test_weights_formula_by_hand():
    distances = np.array([[0, 1, 2], [3, 4, INF], [5, 4, 0]], dtype=np.float32)
    weights = anchor_weights(distances, cutoff=4)
    expected = np.array([[1, 1 / 2, 1 / 3], [1 / 4, 1 / 5, 0], [0, 1 / 5, 1]], dtype=np.float32)
    assert weights.dtype == np.float32
    assert weights.shape == distances.shape
    np.testing.assert_array_equal(weights, expected)
    # a smaller cut-off zeroes finite distances beyond it
    np.testing.assert_array_equal(anchor_weights(distances, cutoff=1)[0], [1, 1 / 2, 0])


# --- sample_anchors ---------------------------------------------------------------------------------


def test_anchors_are_distinct_sorted_int64_and_seeded():
    anchors = sample_anchors(1000, 50, np.random.default_rng(7))
    assert anchors.dtype == np.int64
    assert anchors.shape == (50,)
    assert len(np.unique(anchors)) == 50
    assert np.all(np.diff(anchors) > 0)
    assert anchors.min() >= 0
    assert anchors.max() < 1000
    np.testing.assert_array_equal(anchors, sample_anchors(1000, 50, np.random.default_rng(7)))
    assert not np.array_equal(anchors, sample_anchors(1000, 50, np.random.default_rng(8)))


def test_all_nodes_as_anchors():
    np.testing.assert_array_equal(sample_anchors(30, 30, np.random.default_rng(0)), np.arange(30))


def test_anchor_position_weights_composes_the_steps(small_train):
    anchors, weights = anchor_position_weights(small_train, 3, 4, np.random.default_rng(2))
    np.testing.assert_array_equal(anchors, sample_anchors(9, 3, np.random.default_rng(2)))
    adjacency = bipartite_adjacency(small_train)
    np.testing.assert_array_equal(weights, anchor_weights(anchor_hop_distances(adjacency, anchors, 4), 4))


# --- errors -----------------------------------------------------------------------------------------


def test_more_anchors_than_nodes():
    with pytest.raises(ConfigError, match="anchors: 40 anchors asked for, but the graph has only 30 nodes"):
        sample_anchors(30, 40, np.random.default_rng(0))


@pytest.mark.parametrize("count", [0, -3, 2.0, True])
def test_anchor_count_must_be_a_positive_int(count):
    with pytest.raises(ConfigError, match="anchor count must be an int >= 1"):
        sample_anchors(30, count, np.random.default_rng(0))


@pytest.mark.parametrize("cutoff", [0, -1])
def test_cutoff_below_one(small_train, cutoff):
    adjacency = bipartite_adjacency(small_train)
    message = f"anchor cutoff q must be >= 1, got {cutoff}"
    with pytest.raises(ConfigError, match=message):
        anchor_hop_distances(adjacency, np.array([0]), cutoff)
    with pytest.raises(ConfigError, match=message):
        anchor_weights(np.zeros((9, 1)), cutoff)
    with pytest.raises(ConfigError, match=message):
        anchor_position_weights(small_train, 2, cutoff, np.random.default_rng(0))


@pytest.mark.parametrize("cutoff", [2.0, True, "4", None])
def test_cutoff_must_be_an_int(small_train, cutoff):
    with pytest.raises(ConfigError, match="anchor cutoff q must be an int >= 1"):
        anchor_hop_distances(bipartite_adjacency(small_train), np.array([0]), cutoff)


@pytest.mark.parametrize("anchors", [[-1], [0, 9], [9]])
def test_anchors_out_of_range(small_train, anchors):
    with pytest.raises(RecforgeError, match=r"anchor ids must lie in \[0, 9\)"):
        anchor_hop_distances(bipartite_adjacency(small_train), np.array(anchors), 2)


@pytest.mark.parametrize("anchors", [np.array([], dtype=np.int64), np.array([[0, 1]]), np.array([0.0, 1.0])])
def test_anchors_must_be_a_nonempty_integer_vector(small_train, anchors):
    with pytest.raises(RecforgeError, match="non-empty 1-D integer array"):
        anchor_hop_distances(bipartite_adjacency(small_train), anchors, 2)


def test_adjacency_must_be_square_and_sparse(small_train):
    with pytest.raises(RecforgeError, match=r"must be square \(n × n\), got shape \(4, 5\)"):
        anchor_hop_distances(small_train, np.array([0]), 2)
    with pytest.raises(RecforgeError, match="must be a scipy sparse matrix, got ndarray"):
        anchor_hop_distances(bipartite_adjacency(small_train).toarray(), np.array([0]), 2)


def test_edges_stored_one_way_count_both_ways(small_train):
    graph = bipartite_adjacency(small_train)
    one_way = sp.triu(graph, format="csr")  # users -> items only
    anchors = np.array([0, 5])
    np.testing.assert_array_equal(
        anchor_hop_distances(one_way, anchors, 3), anchor_hop_distances(graph, anchors, 3)
    )


@pytest.mark.parametrize("bad", [-1.0, np.nan])
def test_weights_refuse_negative_or_nan_distances(bad):
    with pytest.raises(RecforgeError, match="hop distances must be >= 0"):
        anchor_weights(np.array([[0.0, bad]]), 2)


# --- real data --------------------------------------------------------------------------------------


@pytest.mark.integration
def test_lastfm_matches_scipy_dijkstra(shared_data):
    from scipy.sparse import csgraph

    from recforge.data.dataset import Fold
    from recforge.data.readers import read_gformer

    dataset = read_gformer(shared_data / "gformer-lastfm")
    train = dataset.interactions.take(dataset.fold == Fold.TRAIN).to_csr(dataset.num_users, dataset.num_items)
    adjacency = bipartite_adjacency(train)
    anchors = sample_anchors(adjacency.shape[0], 70, np.random.default_rng(0))
    expected = csgraph.dijkstra(adjacency, unweighted=True, limit=3, indices=anchors).T
    np.testing.assert_array_equal(anchor_hop_distances(adjacency, anchors, 3), expected.astype(np.float32))
