"""Fan-out neighbour sampling: only real edges, at most the fan-out, uniform without replacement,
and with unlimited fan-outs exactly the k-hop neighbourhood a slow breadth-first search finds."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data.neighbor_sampling import sample_neighbors, sample_subgraph
from recforge.errors import ConfigError


def random_graph(nodes: int, edges: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    u, v = rng.integers(0, nodes, edges), rng.integers(0, nodes, edges)
    keep = u != v
    matrix = sp.coo_matrix((np.ones(keep.sum()), (u[keep], v[keep])), shape=(nodes, nodes)).tocsr()
    matrix = ((matrix + matrix.T) > 0).astype(np.float32).tocsr()
    matrix.sort_indices()
    return matrix


def star(leaves: int) -> sp.csr_matrix:
    rows = np.concatenate([np.zeros(leaves, dtype=int), np.arange(1, leaves + 1)])
    cols = np.concatenate([np.arange(1, leaves + 1), np.zeros(leaves, dtype=int)])
    return sp.csr_matrix((np.ones(2 * leaves), (rows, cols)), shape=(leaves + 1, leaves + 1))


def test_neighbours_are_real_distinct_and_at_most_the_fanout():
    graph = random_graph(200, 3000, seed=1)
    rng = np.random.default_rng(0)
    nodes = np.arange(200)
    for fanout in (1, 3, 8, 40):
        src, dst = sample_neighbors(graph.indptr, graph.indices, nodes, fanout, rng)
        assert graph[dst, src].A1.all()  # every pair is an edge
        pairs = set(zip(dst.tolist(), src.tolist(), strict=True))
        assert len(pairs) == len(src)  # no neighbour twice for one node
        counts = np.bincount(dst, minlength=200)
        assert (counts == np.minimum(np.diff(graph.indptr), fanout)).all()


@pytest.mark.parametrize("leaves", [10, 50])  # the random-key regime and the draw regime
def test_each_neighbour_is_equally_likely(leaves):
    graph, rng, fanout, rounds = star(leaves), np.random.default_rng(3), 3, 4000
    hits = np.zeros(leaves + 1)
    for _ in range(rounds):
        src, _ = sample_neighbors(graph.indptr, graph.indices, np.array([0]), fanout, rng)
        hits[src] += 1
    expected = rounds * fanout / leaves
    # binomial sd = sqrt(n p (1 - p)); 5 sd is far beyond chance for any of the leaves
    sd = np.sqrt(rounds * (fanout / leaves) * (1 - fanout / leaves))
    assert np.abs(hits[1:] - expected).max() < 5 * sd
    assert hits[0] == 0


def slow_khop(graph: sp.csr_matrix, seeds: list[int], hops: int) -> tuple[set[int], set[tuple[int, int]]]:
    """Nodes within ``hops`` of the seeds and the edges (neighbour, node) of nodes closer than that."""
    seen, frontier, edges = set(seeds), set(seeds), set()
    for _ in range(hops):
        nxt = set()
        for node in frontier:
            for nb in graph.indices[graph.indptr[node] : graph.indptr[node + 1]].tolist():
                edges.add((nb, node))
                if nb not in seen:
                    nxt.add(nb)
        seen |= nxt
        frontier = nxt
    return seen, edges


def test_unlimited_fanouts_give_the_exact_k_hop_neighbourhood():
    graph = random_graph(150, 400, seed=2)
    seeds = np.array([5, 17, 5, 99])
    sub = sample_subgraph(graph.indptr, graph.indices, seeds, [1000, 1000], np.random.default_rng(0))
    nodes, edges = slow_khop(graph, [5, 17, 99], 2)
    assert set(sub.nodes.tolist()) == nodes
    assert len(sub.nodes) == len(nodes)  # each once
    assert sub.nodes[:3].tolist() == [5, 17, 99]  # distinct seeds first, first-seen order
    assert sub.nodes[sub.seed_index].tolist() == seeds.tolist()
    found = {(int(sub.nodes[s]), int(sub.nodes[t])) for s, t in sub.edge_index.T}
    assert found == edges


def test_sampled_subgraphs_are_seeded_and_bounded():
    graph = random_graph(500, 8000, seed=4)
    seeds = np.arange(0, 500, 25)
    first = sample_subgraph(graph.indptr, graph.indices, seeds, [5, 3], np.random.default_rng(7))
    again = sample_subgraph(graph.indptr, graph.indices, seeds, [5, 3], np.random.default_rng(7))
    assert np.array_equal(first.nodes, again.nodes)
    assert np.array_equal(first.edge_index, again.edge_index)
    assert first.edge_index.shape[1] <= len(seeds) * 5 + len(seeds) * 5 * 3
    src, dst = first.nodes[first.edge_index[0]], first.nodes[first.edge_index[1]]
    assert graph[dst, src].A1.all()
    with pytest.raises(ConfigError, match="fanout must be >= 1"):
        sample_subgraph(graph.indptr, graph.indices, seeds, [0], np.random.default_rng(0))


def test_isolated_seeds_and_no_hops():
    graph = sp.csr_matrix((4, 4))
    sub = sample_subgraph(graph.indptr, graph.indices, np.array([2, 1]), [3, 3], np.random.default_rng(0))
    assert sub.nodes.tolist() == [2, 1]
    assert sub.edge_index.shape == (2, 0)
    none = sample_subgraph(graph.indptr, graph.indices, np.array([3]), [], np.random.default_rng(0))
    assert none.nodes.tolist() == [3]
    assert none.seed_index.tolist() == [0]
