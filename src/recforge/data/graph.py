r"""Graph inputs for graph encoders, built once from the training matrix.

The user-item interactions form a bipartite graph with ``U + I`` nodes: users are nodes
``0..U-1`` and item ``i`` is node ``U + i``. Its adjacency and the symmetric normalisation
LightGCN propagates with (He et al., SIGIR 2020, eq. 7) are

.. math::

    A = \begin{pmatrix} 0 & R \\ R^\top & 0 \end{pmatrix}, \qquad
    \hat A = D^{-1/2} A D^{-1/2}, \qquad \hat A_{ui} = \frac{1}{\sqrt{|N_u|}\sqrt{|N_i|}}.

The matrix is built in scipy (vectorised, float64 so the normalisation is exact before the cast)
and converted to torch once, as a sparse CSR tensor: on CPU, CSR sparse @ dense is several times
faster than COO (see ``benchmarks/bench_propagation.py``).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


def normalized_adjacency(
    train: sp.spmatrix | sp.sparray,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    r"""The symmetric normalised adjacency :math:`D^{-1/2} A D^{-1/2}` of the user-item graph.

    Args:
        train: (U, I) user × item training matrix. Every stored non-zero entry is an edge; the
            values themselves are ignored (the graph is unweighted), duplicates count once.
        dtype: floating dtype of the values.
        device: where the tensor is created (CPU when None).

    Returns:
        (U+I, U+I) torch sparse CSR tensor, symmetric, with sorted column indices (int32 while
        the graph has fewer than 2^31 nodes and edges, else int64). A node with
        no edge (a user or item absent from training) has degree 0: its row and column are
        empty, never ``1/sqrt(0)`` (no NaN or inf).
    """
    interactions = sp.csr_matrix(train, dtype=np.float64, copy=True)
    interactions.sum_duplicates()
    interactions.eliminate_zeros()
    interactions.data[:] = 1.0
    num_users, num_items = interactions.shape

    user_degree = np.diff(interactions.indptr)
    item_degree = np.bincount(interactions.indices, minlength=num_items)
    user_scale = _inverse_sqrt(user_degree)
    item_scale = _inverse_sqrt(item_degree)
    rows = np.repeat(np.arange(num_users), user_degree)
    interactions.data = user_scale[rows] * item_scale[interactions.indices]

    # bmat of the two off-diagonal blocks; to CSR with sorted indices, as torch's CSR kernels expect
    adjacency = sp.bmat([[None, interactions], [interactions.T, None]], format="csr")
    adjacency.sort_indices()
    return _to_torch_csr(adjacency, dtype=dtype, device=device)


def _inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    # isolated nodes get scale 0 rather than 1/sqrt(0) = inf; their rows have no entries anyway
    scale = np.zeros(len(degree), dtype=np.float64)
    positive = degree > 0
    scale[positive] = 1.0 / np.sqrt(degree[positive])
    return scale


def _to_torch_csr(matrix: sp.csr_matrix, *, dtype: torch.dtype, device: torch.device | str | None) -> Tensor:
    # int32 indices where they fit: CSR @ dense measured 5-30% faster than with int64 indices on
    # CPU (torch 2.13 + MKL, Gowalla-sized graph; benchmarks/bench_propagation.py)
    fits_int32 = max(matrix.nnz, *matrix.shape) < np.iinfo(np.int32).max
    index_dtype = np.int32 if fits_int32 else np.int64
    with warnings.catch_warnings():
        # torch marks sparse CSR as "beta" on every construction; recforge pins the torch version
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(index_dtype)),
            torch.from_numpy(matrix.indices.astype(index_dtype)),
            torch.from_numpy(matrix.data).to(dtype),
            size=matrix.shape,
            device=device,
            check_invariants=True,  # once per graph, O(nnz): a malformed CSR would crash kernels later
        )


def bipartite_edge_index(
    train: sp.spmatrix | sp.sparray, *, device: torch.device | str | None = None
) -> Tensor:
    r"""The edge list of the user-item graph, both directions, for message-passing layers (PyG).

    The graph is the one :func:`normalized_adjacency` weights: user ``u`` is node ``u``, item ``i``
    is node ``U + i``, and every interaction is an undirected edge, listed once in each direction.

    Args:
        train: (U, I) user × item training matrix. Every stored non-zero entry is an edge; the
            values themselves are ignored (the graph is unweighted), duplicates count once.
        device: where the tensor is created (CPU when None).

    Returns:
        (2, 2·nnz) int64 tensor, ``nnz`` the number of distinct user-item pairs. Row 0 holds the
        source nodes, row 1 the targets; columns ``0..nnz-1`` are the user -> item edges in
        (user, item) order, columns ``nnz..2·nnz-1`` the same edges item -> user, in the same order.
    """
    # the same clean-up as normalized_adjacency, so both encoders of a split see one graph
    interactions = sp.csr_matrix(train, dtype=np.float64, copy=True)
    interactions.sum_duplicates()  # also sorts each row's item ids
    interactions.eliminate_zeros()
    num_users = interactions.shape[0]
    users = np.repeat(np.arange(num_users, dtype=np.int64), np.diff(interactions.indptr))
    items = interactions.indices.astype(np.int64) + num_users
    edges = np.stack([np.concatenate([users, items]), np.concatenate([items, users])])
    return torch.from_numpy(edges).to(device)
