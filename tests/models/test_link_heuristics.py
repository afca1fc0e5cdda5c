"""Popularity, common neighbours and Adamic–Adar on friend graphs: by hand, against a slow formula,
restored from their fitted state, and refused on a user-item matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.errors import ConfigError
from recforge.models.link_heuristics import CommonNeighbours, Popularity


def adjacency(edges: list[tuple[int, int]], nodes: int) -> sp.csr_matrix:
    rows = [u for u, v in edges] + [v for u, v in edges]
    cols = [v for u, v in edges] + [u for u, v in edges]
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(nodes, nodes))


HAND = adjacency([(0, 1), (1, 2), (0, 3), (1, 3), (3, 4)], 5)  # degrees 2, 3, 1, 3, 1
ALL = torch.arange(5)


def test_common_neighbours_and_adamic_adar_by_hand():
    cn = CommonNeighbours(HAND).fit().scores(ALL)
    assert cn[0, 2].item() == 1  # via 1
    assert cn[0, 1].item() == 1  # via 3
    assert cn[2, 4].item() == 0
    aa = CommonNeighbours(HAND, adamic_adar=True).fit().scores(ALL)
    assert aa[0, 2].item() == pytest.approx(1 / math.log(3))  # node 1 has degree 3
    assert aa[0, 4].item() == pytest.approx(1 / math.log(3))  # via 3
    assert aa[2, 4].item() == 0


def test_adamic_adar_matches_a_slow_formula():
    rng = np.random.default_rng(0)
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, 30, (120, 2)) if a < b}
    matrix = adjacency(sorted(pairs), 30)
    neighbours = [set(matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]].tolist()) for u in range(30)]
    got = CommonNeighbours(matrix, adamic_adar=True, block_size=7).fit().scores(torch.arange(30))
    for u in range(30):
        for v in range(30):
            expected = sum(
                1 / math.log(len(neighbours[w]))
                for w in neighbours[u] & neighbours[v]
                if len(neighbours[w]) >= 2
            )
            assert got[u, v].item() == pytest.approx(expected, abs=1e-5)


def test_popularity_is_the_degree_for_everyone():
    scores = Popularity(HAND).fit().scores(torch.tensor([0, 4]))
    assert scores.tolist() == [[2, 3, 1, 3, 1]] * 2


def test_a_restored_heuristic_scores_as_the_fitted_one():
    for make in (lambda: CommonNeighbours(HAND, adamic_adar=True), lambda: Popularity(HAND)):
        fitted = make().fit()
        restored = make().restore(fitted.fitted_tensors())
        assert torch.equal(restored.scores(ALL), fitted.scores(ALL))


def test_a_user_item_matrix_is_refused():
    with pytest.raises(ConfigError, match="user-user graph"):
        CommonNeighbours(sp.csr_matrix(np.ones((3, 4), dtype=np.float32)))
