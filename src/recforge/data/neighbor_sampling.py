"""Fan-out neighbour sampling over a CSR graph: the k-hop subgraph a batch of seed nodes needs.

A GNN layer over the whole graph costs memory in the graph's size; a batch of query users only needs
the nodes within ``len(fanouts)`` hops of them, and at most ``fanouts[h]`` neighbours per node at
hop ``h`` (GraphSAGE's sampling, what PyG's ``NeighborLoader`` does). ``NeighborLoader`` needs
``pyg-lib`` or ``torch-sparse``, which do not install from PyPI here, so this is the same sampler in
numpy, vectorised over every node of a hop at once (no Python loop over nodes):

* a node with ``degree <= fanout`` keeps all its neighbours;
* a node with ``fanout < degree <= 4 * fanout`` gives each neighbour a uniform random key and keeps
  the ``fanout`` smallest (one ``lexsort`` over all such nodes' neighbour lists);
* a node with a larger degree draws ``2 * fanout`` neighbour positions with replacement and keeps
  the first ``fanout`` distinct ones (with ``degree > 4 * fanout``, 2f draws hold >= f distinct
  values with overwhelming probability; the rare short row draws again).

Every choice is uniform without replacement over the node's neighbours. Hop ``h + 1`` expands only
the nodes hop ``h`` discovered, so every node closer than ``len(fanouts)`` hops to a seed has its
neighbours sampled, and the subgraph is exactly what a ``len(fanouts)``-layer message-passing
network reads for the seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recforge.errors import ConfigError

_KEYED_UP_TO = 4  # degree / fanout ratio up to which a row is sampled by random keys


@dataclass(frozen=True)
class SampledSubgraph:
    """The sampled k-hop neighbourhood of some seed nodes.

    Attributes:
        nodes: (N,) int64 global node ids; the distinct seeds first, in first-seen order.
        edge_index: (2, E) int64 local ids (positions in ``nodes``), row 0 the sampled neighbour
            (message source), row 1 the node that sampled it (target), as PyG's ``edge_index``.
        seed_index: (S,) int64 the local id of each seed given (repeats allowed).
    """

    nodes: np.ndarray
    edge_index: np.ndarray
    seed_index: np.ndarray

    @property
    def num_nodes(self) -> int:
        return len(self.nodes)


def sample_neighbors(
    indptr: np.ndarray, indices: np.ndarray, nodes: np.ndarray, fanout: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``fanout`` distinct neighbours of every node in ``nodes``, uniformly without
    replacement (see the module docstring). Returns ``(sources, targets)``: neighbour ids and the
    node each was sampled for, global ids, int64."""
    if fanout < 1:
        raise ConfigError(f"sample_neighbors: fanout must be >= 1, got {fanout}")
    nodes = np.asarray(nodes, dtype=np.int64)
    starts, degrees = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    parts_src, parts_dst = [], []

    whole = degrees <= fanout
    offsets, owner = _ranges(degrees[whole])
    parts_src.append(indices[starts[whole][owner] + offsets])
    parts_dst.append(nodes[whole][owner])

    keyed = (degrees > fanout) & (degrees <= _KEYED_UP_TO * fanout)
    offsets, owner = _ranges(degrees[keyed])
    order = np.lexsort((rng.random(len(offsets)), owner))  # by owner, then a random key
    rank = np.arange(len(order)) - np.repeat(np.cumsum(degrees[keyed]) - degrees[keyed], degrees[keyed])
    kept = order[rank < fanout]
    parts_src.append(indices[starts[keyed][owner[kept]] + offsets[kept]])
    parts_dst.append(nodes[keyed][owner[kept]])

    drawn = degrees > _KEYED_UP_TO * fanout
    chosen = _distinct_draws(degrees[drawn], fanout, rng)  # (n, fanout) offsets
    parts_src.append(indices[(starts[drawn][:, None] + chosen).ravel()])
    parts_dst.append(np.repeat(nodes[drawn], fanout))
    return np.concatenate(parts_src).astype(np.int64), np.concatenate(parts_dst).astype(np.int64)


def sample_subgraph(
    indptr: np.ndarray,
    indices: np.ndarray,
    seeds: np.ndarray,
    fanouts: Sequence[int],
    rng: np.random.Generator,
) -> SampledSubgraph:
    """The ``len(fanouts)``-hop sampled neighbourhood of ``seeds`` in the CSR graph
    ``(indptr, indices)`` (row u lists u's neighbours; an undirected graph lists each edge twice)."""
    seeds = np.asarray(seeds, dtype=np.int64)
    unique_seeds, first = np.unique(seeds, return_index=True)
    ordered = unique_seeds[np.argsort(first)]  # first-seen order
    nodes, frontier = [ordered], ordered
    known = np.sort(ordered)
    sources, targets = [], []
    for fanout in fanouts:
        src, dst = sample_neighbors(indptr, indices, frontier, fanout, rng)
        sources.append(src)
        targets.append(dst)
        discovered = np.unique(src)
        frontier = discovered[~_isin_sorted(discovered, known)]
        nodes.append(frontier)
        known = np.union1d(known, frontier)
    all_nodes = np.concatenate(nodes)
    local = _local_ids(all_nodes)
    edges = np.stack([local(np.concatenate(sources)), local(np.concatenate(targets))]) if sources else None
    return SampledSubgraph(
        nodes=all_nodes,
        edge_index=edges if edges is not None else np.zeros((2, 0), dtype=np.int64),
        seed_index=local(seeds),
    )


def _ranges(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows of the given lengths: each slot's offset within its row and the row it is in."""
    lengths = np.asarray(lengths, dtype=np.int64)
    owner = np.repeat(np.arange(len(lengths)), lengths)
    offsets = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return offsets, owner


def _distinct_draws(degrees: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """(len(degrees), count) distinct offsets per row, uniform over ``0..degree - 1``."""
    result = np.zeros((len(degrees), count), dtype=np.int64)
    pending = np.arange(len(degrees))
    while len(pending):
        width = 2 * count
        draws = (rng.random((len(pending), width)) * degrees[pending][:, None]).astype(np.int64)
        ordered = np.sort(draws, axis=1, kind="stable")
        order = np.argsort(draws, axis=1, kind="stable")
        repeated = np.zeros_like(draws, dtype=bool)
        np.put_along_axis(repeated, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
        fresh = ~repeated
        enough = fresh.sum(1) >= count
        position = np.where(fresh, np.arange(width), width)
        first = np.sort(position, axis=1)[:, :count]
        picked = np.take_along_axis(draws, np.minimum(first, width - 1), axis=1)
        result[pending[enough]] = picked[enough]
        pending = pending[~enough]
    return result


def _isin_sorted(values: np.ndarray, sorted_pool: np.ndarray) -> np.ndarray:
    if len(sorted_pool) == 0:
        return np.zeros(len(values), dtype=bool)
    where = np.searchsorted(sorted_pool, values).clip(max=len(sorted_pool) - 1)
    return sorted_pool[where] == values


def _local_ids(nodes: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """global id -> position in ``nodes`` (every id asked for is in ``nodes``)."""
    order = np.argsort(nodes, kind="stable")
    ordered = nodes[order]

    def local(ids: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(ordered, ids)].astype(np.int64)

    return local


__all__ = ["SampledSubgraph", "sample_neighbors", "sample_subgraph"]
