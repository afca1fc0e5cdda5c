r"""Anchor-based position encoding of the user-item graph: hop distances to A sampled anchor nodes.

GFormer (Li et al., SIGIR 2023) and the RGT built on it (:mod:`recforge.models.rgt`) give every
node a topology-aware position: a set of A anchor nodes is drawn from the bipartite graph (users
are nodes ``0..U-1``, item ``i`` is node ``U+i``, as in :mod:`recforge.data.graph`) and node
:math:`v` weighs anchor :math:`a` by

.. math::  w_{va} = \begin{cases} 1/(d_{va}+1) & d_{va} \le q \\ 0 & \text{otherwise,} \end{cases}

where :math:`d_{va}` is the shortest-path hop count and q the cut-off. The authors' code runs a
networkx BFS per anchor in Python and fills a dense n×n matrix; here only the (n, A) array is ever
built, by :func:`scipy.sparse.csgraph.dijkstra` run as a bounded BFS (unit weights, ``limit=q``),
O(A · (|E| + n log n)) at worst and less where q hops reach little of the graph.

Typical use, once per resampling period::

    graph = bipartite_adjacency(train)                       # once per training graph
    anchors = sample_anchors(graph.shape[0], 32, rng)
    weights = anchor_weights(anchor_hop_distances(graph, anchors, cutoff=4), cutoff=4)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from recforge.errors import ConfigError, RecforgeError


def bipartite_adjacency(train: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """The (U+I, U+I) symmetric 0/1 adjacency of the user-item graph, for hop-distance searches.

    It is the same graph :func:`recforge.data.graph.normalized_adjacency` propagates over (every
    stored non-zero entry of ``train`` is an edge, duplicates count once, the values are ignored),
    so the anchor distances describe exactly the graph the encoder sees. Only the structure matters
    to a breadth-first search, so the values are ``bool`` (1 byte per entry instead of 4 or 8): the
    matrix is meant for :func:`anchor_hop_distances` and :mod:`scipy.sparse.csgraph`, not for
    arithmetic.

    Args:
        train: (U, I) user × item training matrix.

    Returns:
        (U+I, U+I) ``bool`` CSR matrix with sorted column indices; users are nodes ``0..U-1``,
        item ``i`` is node ``U+i``. Users or items without interactions are isolated nodes.
    """
    interactions = sp.csr_matrix(train, dtype=np.float64, copy=True)
    interactions.sum_duplicates()
    interactions.eliminate_zeros()
    interactions = interactions.astype(bool)
    adjacency = sp.csr_matrix(sp.bmat([[None, interactions], [interactions.T, None]], format="csr"))
    adjacency.sort_indices()
    return adjacency


def sample_anchors(num_nodes: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct node ids drawn uniformly without replacement, sorted.

    Sorted so that the anchor order (the column order of the distance and weight arrays) depends
    only on the set drawn, and a given ``rng`` state always yields the same columns.

    Args:
        num_nodes: number of graph nodes (U+I).
        count: anchor-set size A, 1 <= A <= ``num_nodes``.
        rng: the source of randomness (seed it for reproducible anchor sets).

    Returns:
        (A,) int64 array of distinct, increasing node ids in ``[0, num_nodes)``.

    Raises:
        ConfigError: ``count`` < 1 or larger than ``num_nodes``.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ConfigError(f"anchors: the anchor count must be an int >= 1, got {count!r}")
    if count > num_nodes:
        raise ConfigError(f"anchors: {count} anchors asked for, but the graph has only {num_nodes} nodes")
    anchors = rng.choice(num_nodes, size=int(count), replace=False)
    return np.sort(anchors).astype(np.int64, copy=False)


def anchor_hop_distances(
    adjacency: sp.csr_matrix | sp.spmatrix | sp.sparray, anchors: np.ndarray, cutoff: int
) -> np.ndarray:
    """Hop distance from every node to every anchor, searched up to ``cutoff`` hops.

    :func:`scipy.sparse.csgraph.dijkstra` with ``unweighted=True`` and ``limit=cutoff`` is a
    breadth-first search per anchor that stops expanding past q hops; the graph is read as
    undirected. On Gowalla's training graph (70,839 nodes, 1.6M stored entries), A = 32 and q = 4
    take about a quarter of a second (``benchmarks/bench_anchor_distances.py``), once per anchor
    resampling: negligible next to an epoch. (A hand-written bitset BFS measured about 8× faster
    was not kept: the saving is invisible in training, the code was not.)

    Args:
        adjacency: (n, n) sparse adjacency; every stored entry is an edge, whatever its value, in
            both directions.
        anchors: (A,) integer node ids in ``[0, n)``, A >= 1 (duplicates give identical columns).
        cutoff: q, an int >= 1: nodes farther than q hops are not searched.

    Returns:
        (n, A) float32 array: ``d[v, j]`` = hops between node ``v`` and ``anchors[j]`` (0 for the
        anchor itself), ``np.inf`` where the anchor is more than ``cutoff`` hops away or unreachable.

    Raises:
        ConfigError: ``cutoff`` is not an int >= 1.
        RecforgeError: ``adjacency`` is not a square sparse matrix, or ``anchors`` is empty, not a
            1-D integer array, or holds ids outside ``[0, n)``.
    """
    _check_cutoff(cutoff)
    graph = _square_csr(adjacency)
    anchor_ids = _check_anchors(anchors, graph.shape[0])
    distances = csgraph.dijkstra(
        graph, directed=False, unweighted=True, indices=anchor_ids, limit=int(cutoff)
    )
    return np.ascontiguousarray(distances.T, dtype=np.float32)


def anchor_weights(distances: np.ndarray, cutoff: int) -> np.ndarray:
    """GFormer's anchor weights ``1/(d+1)`` for hop distance ``d <= cutoff``, else 0.

    Nearer anchors weigh more, an anchor weighs 1 for itself, and a node with no anchor within the
    cut-off (or in another connected component: ``d = inf``) gets an all-zero row, so its position
    encoding reduces to its own term.

    Args:
        distances: (n, A) hop distances from :func:`anchor_hop_distances` (``inf`` = not reached).
        cutoff: q, an int >= 1; distances beyond it get weight 0 even if finite.

    Returns:
        float32 array of the shape of ``distances``.

    Raises:
        ConfigError: ``cutoff`` is not an int >= 1.
        RecforgeError: a distance is negative or NaN.
    """
    _check_cutoff(cutoff)
    distances = np.asarray(distances)
    if distances.size and not (distances >= 0).all():
        raise RecforgeError(
            "anchor weights: hop distances must be >= 0 (inf = not reached); got a negative value or NaN"
        )
    within = distances <= cutoff
    weights = np.zeros(distances.shape, dtype=np.float32)
    weights[within] = 1.0 / (distances[within].astype(np.float64) + 1.0)
    return weights


def anchor_position_weights(
    train: sp.spmatrix | sp.sparray, count: int, cutoff: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``count`` anchors of the graph of ``train`` and return ``(anchors, weights)``.

    A convenience for one-off use; a training loop that resamples anchors should build
    :func:`bipartite_adjacency` once and call the steps itself.

    Returns:
        ``anchors`` (A,) sorted int64 node ids and ``weights`` (U+I, A) float32, as from
        :func:`sample_anchors` and :func:`anchor_weights`.
    """
    _check_cutoff(cutoff)
    graph = bipartite_adjacency(train)
    anchors = sample_anchors(graph.shape[0], count, rng)
    return anchors, anchor_weights(anchor_hop_distances(graph, anchors, cutoff), cutoff)


def _check_cutoff(cutoff: object) -> None:
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)):
        raise ConfigError(f"anchor cutoff q must be an int >= 1, got {cutoff!r}")
    if cutoff < 1:
        raise ConfigError(f"anchor cutoff q must be >= 1, got {cutoff}")


def _square_csr(adjacency: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    if not sp.issparse(adjacency):
        raise RecforgeError(
            f"anchor distances: the adjacency must be a scipy sparse matrix, got {type(adjacency).__name__}"
        )
    shape = adjacency.shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise RecforgeError(f"anchor distances: the adjacency must be square (n × n), got shape {shape}")
    return sp.csr_matrix(adjacency)


def _check_anchors(anchors: np.ndarray, num_nodes: int) -> np.ndarray:
    ids = np.asarray(anchors)
    if ids.ndim != 1 or len(ids) == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise RecforgeError(
            "anchor distances: anchors must be a non-empty 1-D integer array, "
            f"got shape {ids.shape}, dtype {ids.dtype}"
        )
    if ids.min() < 0 or ids.max() >= num_nodes:
        raise RecforgeError(
            f"anchor distances: anchor ids must lie in [0, {num_nodes}), "
            f"got {int(ids.min())}..{int(ids.max())}"
        )
    return ids.astype(np.int64, copy=False)
