r"""Training-free graph filters: GF-CF, BSPM and EASE (issue 11, "instant teachers").

Each is a closed form of the binary training matrix :math:`R` (U × I), so it is ready in seconds
to minutes, with no epochs, and can teach a trained model. Notation, shared by the three:

.. math::

    \tilde R = D_U^{-1/2} R D_I^{-1/2}, \qquad
    L = \tilde R^\top \tilde R \ \text{(linear filter, I × I)}, \qquad
    P = D_I^{-1/2} V_k V_k^\top D_I^{1/2} \ \text{(ideal low-pass filter)},

where :math:`D_U, D_I` hold the user and item degrees and :math:`V_k` (I × k) the top-``k`` right
singular vectors of :math:`\tilde R`. A user or item of degree 0 gets the scale 0, never
:math:`1/\sqrt 0`: its row is empty, its scores are 0, nothing is NaN. A user is scored from a
binary row :math:`r_u` (1 × I), its history.

* :class:`GFCF` (Shen et al., CIKM 2021): :math:`r_u L + \alpha\, r_u P`.
* :class:`BSPM` (Choi et al., SIGIR 2023): a blurring ODE with :math:`L` and one with :math:`P`,
  then a sharpening ODE, each solved with fixed Euler or RK4 steps.
* :class:`EASE` (Steck, WWW 2019): :math:`r_u B`, :math:`B = I - P_\lambda \operatorname{diag}(1 /
  \operatorname{diag} P_\lambda)`, :math:`P_\lambda = (R^\top R + \lambda I)^{-1}`.

The common interface: the constructor stores the training matrix and the hyperparameters and
checks them (cheaply: EASE refuses there a catalogue too large for its memory budget), ``fit()``
does the work and returns the filter, ``scores(users)`` gives (B, I) float32 CPU scores of a batch
of user ids from their training rows, ``history_scores(histories)`` the same for any binary rows
over the same items (train + valid before the test fold, a new user's items), and GF-CF and BSPM
have ``low_rank_factors()``, the two factors of their ideal part. Scoring goes through blocks of
``block_size`` users (memory ``block_size × I`` floats per live buffer, never an I × I dense matrix
for GF-CF and BSPM); blocks of users are the only loop.

How the linear filter is applied (``item_item``): with ``True`` (the default) :math:`L` is formed
once as a *sparse* I × I matrix (its non-zeros are the item pairs some user shares, 35.8 M of
1.68 G on Gowalla, 8 bytes each) and a block of sparse rows is multiplied by it in scipy, split
across threads (scipy's sparse kernels release the GIL). With ``False`` no I × I matrix is formed:
:math:`(r_B \tilde R^\top) \tilde R`, two sparse products per block. Dense states (BSPM's ODE steps
after the first) always take the second form, as two torch CSR @ dense products: a dense row times
the sparse :math:`L` would cost ``nnz(L)`` per user instead of ``2 nnz(R)``. On Gowalla, 2 threads,
all 29,858 users: sparse :math:`L` 6.1 s, the two sparse products 9.2 s, the torch CSR products on
densified rows 17.9 s (``benchmarks/graph_filters.py`` measures them, and a dense :math:`L`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from numbers import Integral, Real
from typing import Annotated, Literal, Self

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from scipy.sparse.linalg import ArpackNoConvergence, svds
from torch import Tensor

from recforge.config_base import FilterSettings
from recforge.errors import ConfigError, RecforgeError

__all__ = [
    "BSPM",
    "EASE",
    "GFCF",
    "BSPMConfig",
    "EASEConfig",
    "GFCFConfig",
    "GraphFilter",
    "LowPassFilter",
    "ODEMethod",
    "ease_max_items",
]

ODEMethod = Literal["euler", "rk4"]
ODE_METHODS: tuple[str, ...] = ("euler", "rk4")


# ---------------------------------------------------------------------------------------------
# argument checks: one message shape, as scikit-learn's ("The 'alpha' parameter of GFCF must be …")


def _check_number(owner: str, name: str, value: object, *, low: float, closed: bool = True) -> float:
    number = float(value) if isinstance(value, Real) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or number < low or (not closed and number == low):
        bound = f"[{low:g}, inf)" if closed else f"({low:g}, inf)"
        raise ConfigError(f"The '{name}' parameter of {owner} must be a finite float in the range {bound}. "
                          f"Got {value!r} instead.")
    return number


def _check_int(owner: str, name: str, value: object, *, low: int, high: int | None = None) -> int:
    number = int(value) if isinstance(value, Integral) and not isinstance(value, bool) else None
    if number is None or number < low or (high is not None and number > high):
        bound = f"[{low}, {high}]" if high is not None else f"[{low}, inf)"
        raise ConfigError(f"The '{name}' parameter of {owner} must be an int in the range {bound}. "
                          f"Got {value!r} instead.")
    return number


def _check_method(owner: str, name: str, value: object) -> str:
    if value not in ODE_METHODS:
        raise ConfigError(f"The '{name}' parameter of {owner} must be one of {list(ODE_METHODS)}. "
                          f"Got {value!r} instead.")
    return str(value)


def _num_threads(owner: str, value: int | None) -> int:
    return torch.get_num_threads() if value is None else _check_int(owner, "num_threads", value, low=1)


def _binary_csr(owner: str, interactions: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """The training matrix as binary float32 CSR: every stored non-zero is one interaction."""
    if not (sp.issparse(interactions) and len(interactions.shape) == 2):
        raise ConfigError(f"{owner} needs the training interactions as a 2-D scipy sparse matrix "
                          f"(users × items), got {type(interactions).__name__}")
    matrix = sp.csr_matrix(interactions, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.data[:] = 1.0
    return matrix


# ---------------------------------------------------------------------------------------------
# shared pieces


def _inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    # degree 0 (a user or item absent from training) gets scale 0, not 1/sqrt(0) = inf
    scale = np.zeros(len(degree), dtype=np.float64)
    positive = degree > 0
    scale[positive] = 1.0 / np.sqrt(degree[positive])
    return scale


def _torch_csr(matrix: sp.csr_matrix, *, check_invariants: bool) -> Tensor:
    matrix = matrix.tocsr()
    matrix.sort_indices()
    with warnings.catch_warnings():
        # torch marks sparse CSR as "beta" on every construction; recforge pins the torch version
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(matrix.indptr.astype(np.int64)),
            torch.from_numpy(matrix.indices.astype(np.int64)),
            torch.from_numpy(matrix.data.astype(np.float32)),
            size=matrix.shape,
            check_invariants=check_invariants,  # O(nnz): once per fit, not per scored block
        )


def _split_rows(num_rows: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, num_rows, min(parts, max(num_rows, 1)) + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in pairwise(bounds) if b > a]


class _NormalizedGraph:
    r"""What the filters share, built once from the binary training matrix :math:`R`.

    ``normalized`` is :math:`\tilde R` (U × I float32 CSR); ``item_degree`` the column sums of
    :math:`R`; with ``item_item`` also the sparse :math:`L = \tilde R^\top \tilde R`.
    """

    def __init__(self, interactions: sp.csr_matrix, *, item_item: bool, num_threads: int) -> None:
        self.num_items = interactions.shape[1]
        self.num_threads = num_threads
        user_degree = np.diff(interactions.indptr)
        self.item_degree = np.bincount(interactions.indices, minlength=self.num_items)
        self.user_scale = _inverse_sqrt(user_degree)
        self.item_scale = _inverse_sqrt(self.item_degree)
        normalized = interactions.astype(np.float64)  # scales exact in float64, then float32
        rows = np.repeat(np.arange(interactions.shape[0]), user_degree)
        normalized.data = self.user_scale[rows] * self.item_scale[normalized.indices]
        self.normalized: sp.csr_matrix = normalized.astype(np.float32)
        self.normalized_t: sp.csr_matrix = self.normalized.T.tocsr()
        self.item_item: sp.csr_matrix | None = None
        if item_item:
            self.item_item = (self.normalized_t @ self.normalized).tocsr()
        self._torch_normalized: tuple[Tensor, Tensor] | None = None

    def linear_rows(self, rows: sp.csr_matrix, out: np.ndarray) -> None:
        r"""``out`` (B, I) = :math:`r_B L` for sparse rows (B, I), the row blocks split across threads."""

        def one_part(part: slice) -> None:
            if self.item_item is not None:
                product = rows[part] @ self.item_item
            else:
                product = (rows[part] @ self.normalized_t) @ self.normalized
            sp.csr_matrix(product).toarray(out=out[part])

        parts = _split_rows(rows.shape[0], self.num_threads)
        if len(parts) <= 1:
            for part in parts:
                one_part(part)
            return
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(one_part, parts))

    def linear_dense_t(self, states_t: Tensor) -> Tensor:
        r""":math:`(x L)^\top = \tilde R^\top (\tilde R\, x^\top)` for dense states kept transposed:
        (I, B) -> (I, B)."""
        if self._torch_normalized is None:
            self._torch_normalized = (_torch_csr(self.normalized, check_invariants=True),
                                      _torch_csr(self.normalized_t, check_invariants=True))
        normalized, normalized_t = self._torch_normalized
        return torch.sparse.mm(normalized_t, torch.sparse.mm(normalized, states_t))

    def right_singular_vectors(self, num_factors: int, seed: int) -> np.ndarray:
        r""":math:`V_k` (I, k) float32, the top-``k`` right singular vectors of :math:`\tilde R`.

        From ARPACK (``scipy.sparse.linalg.svds``) on the float32 :math:`\tilde R`, its start
        vector drawn from ``seed``: the same seed gives bit-identical vectors. (On Gowalla, k = 256:
        11.8 s, and the same subspace as float64 in 19 s; ``torch.svd_lowrank`` needs q = 512 and 8
        power iterations, 31 s, to reach 98% of it.)
        """
        try:
            _, _, right_t = svds(self.normalized, k=num_factors, random_state=seed)
        except ArpackNoConvergence as error:
            raise RecforgeError(f"the truncated SVD of the normalised training matrix (k={num_factors}) "
                                "did not converge; lower num_factors") from error
        return np.ascontiguousarray(right_t.T, dtype=np.float32)

    def ideal_factors(self, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""(W, Q) = (:math:`D_I^{-1/2} V_k`, :math:`D_I^{1/2} V_k`), (I, k) float32: :math:`P = W Q^\top`."""
        right64 = right.astype(np.float64)
        degree_sqrt = np.sqrt(self.item_degree.astype(np.float64))
        to_factors = (right64 * self.item_scale[:, None]).astype(np.float32)
        to_items = (right64 * degree_sqrt[:, None]).astype(np.float32)
        return np.ascontiguousarray(to_factors), np.ascontiguousarray(to_items)


class GraphFilter:
    """The plumbing every filter shares: fitted check, user ids → training rows → score blocks."""

    _owner = "filter"

    def __init__(self, interactions: sp.spmatrix | sp.sparray, block_size: int) -> None:
        self.interactions = _binary_csr(self._owner, interactions)
        self.num_users, self.num_items = self.interactions.shape
        self.block_size = _check_int(self._owner, "block_size", block_size, low=1)
        self._fitted = False

    def fit(self) -> Self:
        raise NotImplementedError

    def fitted_tensors(self) -> dict[str, Tensor]:
        """What ``fit()`` computed, as named CPU tensors (a run directory's ``model.safetensors``):
        with the training matrix, enough for :meth:`restore` to score without refitting."""
        raise NotImplementedError

    def restore(self, tensors: dict[str, Tensor]) -> Self:
        """The fitted filter again from :meth:`fitted_tensors` (checked), without the slow part."""
        raise NotImplementedError

    def _fitted_tensor(self, tensors: dict[str, Tensor], name: str, shape: tuple[int, ...]) -> Tensor:
        tensor = tensors.get(name)
        if tensor is None or tuple(tensor.shape) != shape or tensor.dtype != torch.float32:
            found = "missing" if tensor is None else f"{tensor.dtype} {tuple(tensor.shape)}"
            raise RecforgeError(f"{type(self).__name__}: fitted tensor '{name}' must be float32 {shape}, "
                                f"found {found}")
        if not bool(torch.isfinite(tensor).all()):
            raise RecforgeError(f"{type(self).__name__}: fitted tensor '{name}' holds NaN or inf")
        return tensor.contiguous()

    def _score_block(self, rows: sp.csr_matrix, out: Tensor) -> None:
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RecforgeError(f"{type(self).__name__} is not fitted yet; call fit() before scoring")

    @torch.no_grad()
    def scores(self, users: Tensor, *, out: Tensor | None = None) -> Tensor:
        """Scores of every item for a batch of users, from their rows of the training matrix.

        Args:
            users: (B,) integer user ids in ``[0, num_users)``, on any device.
            out: optional (B, I) float32 contiguous CPU tensor to write into (a buffer reused across
                batches saves page faults); a fresh one when None.

        Returns:
            (B, num_items) float32 on the CPU, training items included (the evaluator masks them).
        """
        self._check_fitted()
        if users.dim() != 1 or users.dtype.is_floating_point or users.dtype == torch.bool:
            raise RecforgeError(f"users must be a 1-D tensor of integer ids, got {users.dtype} "
                                f"of shape {tuple(users.shape)}")
        ids = users.detach().cpu().numpy().astype(np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.num_users):
            raise RecforgeError(f"user ids must lie in [0, {self.num_users}), got min {ids.min()} "
                                f"and max {ids.max()}")
        return self._score_rows(self.interactions[ids], out)

    @torch.no_grad()
    def history_scores(self, histories: sp.spmatrix | sp.sparray, *, out: Tensor | None = None) -> Tensor:
        """Scores of every item for arbitrary histories over the same items (filters from training).

        Args:
            histories: (B, num_items) sparse; every stored non-zero counts as one interaction (e.g.
                ``split.csr("train") + split.csr("valid")`` rows before the test fold).
            out: as in :meth:`scores`.

        Returns:
            (B, num_items) float32 on the CPU.
        """
        self._check_fitted()
        rows = _binary_csr(type(self).__name__, histories)
        if rows.shape[1] != self.num_items:
            raise RecforgeError(f"histories must have {self.num_items} item columns, got {rows.shape[1]}")
        return self._score_rows(rows, out)

    def _score_rows(self, rows: sp.csr_matrix, out: Tensor | None) -> Tensor:
        shape = (rows.shape[0], self.num_items)
        if out is None:
            out = torch.empty(shape, dtype=torch.float32)
        elif out.shape != shape or out.dtype != torch.float32 or out.device.type != "cpu" or not (
            out.is_contiguous()
        ):
            raise RecforgeError(f"out must be a contiguous float32 CPU tensor of shape {shape}, got "
                                f"{out.dtype} {tuple(out.shape)} on {out.device}")
        for start in range(0, shape[0], self.block_size):
            stop = min(start + self.block_size, shape[0])
            self._score_block(rows[start:stop], out[start:stop])
        return out


class LowPassFilter(GraphFilter):
    """GF-CF and BSPM: the normalised graph and the ideal low-pass filter's factors (one SVD)."""

    num_factors: int
    seed: int
    item_item: bool
    num_threads: int

    def fit(self) -> Self:
        self._set_factors(self._graph().right_singular_vectors(self.num_factors, self.seed))
        return self

    def fitted_tensors(self) -> dict[str, Tensor]:
        """``{"right_singular_vectors": V_k}`` (I, k): the rest follows from the training matrix."""
        self._check_fitted()
        return {"right_singular_vectors": torch.from_numpy(self.right_)}

    def restore(self, tensors: dict[str, Tensor]) -> Self:
        right = self._fitted_tensor(tensors, "right_singular_vectors", (self.num_items, self.num_factors))
        self._graph()
        self._set_factors(right.numpy())
        return self

    def _graph(self) -> _NormalizedGraph:
        self.graph_ = _NormalizedGraph(self.interactions, item_item=self.item_item,
                                       num_threads=self.num_threads)
        return self.graph_

    def _set_factors(self, right: np.ndarray) -> None:
        self.right_ = right
        to_factors, to_items = self.graph_.ideal_factors(right)
        self.to_factors_, self.item_factors_ = to_factors, torch.from_numpy(to_items)
        self._fitted = True

    def low_rank_factors(self) -> tuple[Tensor, Tensor]:
        r"""The ideal filter as a dot product: users :math:`R D_I^{-1/2} V_k` (U, k), items
        :math:`D_I^{1/2} V_k` (I, k), float32, with ``users @ items.T`` = :math:`R P`, unweighted
        (GF-CF adds ``alpha`` times it to the linear part; for BSPM it is the ideal blurring's end
        with the default single Euler step of length 1)."""
        self._check_fitted()
        return self.history_factors(self.interactions), self.item_factors_

    def history_factors(self, histories: sp.csr_matrix) -> Tensor:
        r"""(B, k) :math:`r D_I^{-1/2} V_k` of binary history rows: their query in the ideal part."""
        self._check_fitted()
        return torch.from_numpy(np.asarray(histories @ self.to_factors_, dtype=np.float32))


# ---------------------------------------------------------------------------------------------
# GF-CF


class GFCF(LowPassFilter):
    r"""GF-CF (Shen et al., "How Powerful is Graph Convolution for Recommendation?", CIKM 2021).

    .. math::

        s_u = r_u \tilde R^\top \tilde R + \alpha\, r_u D_I^{-1/2} V_k V_k^\top D_I^{1/2}

    the linear filter plus ``alpha`` times the ideal low-pass filter (notation in the module
    docstring). The paper's code (``yshenaw/GF_CF``) uses ``k = 256`` and ``alpha = 0.3`` on
    Gowalla and Yelp2018 and the linear filter alone on Amazon-Book (``alpha = 0``).

    Args:
        interactions: (U, I) scipy sparse training matrix; stored non-zeros are interactions.
        alpha: weight of the ideal low-pass part, >= 0.
        num_factors: ``k``, singular vectors of the ideal part, in ``[1, min(U, I) - 1]``.
        seed: ARPACK's start vector; the same seed gives the same scores, bit for bit.
        block_size: users scored together; memory ``block_size × I`` float32.
        item_item: form the sparse :math:`\tilde R^\top \tilde R` once (faster; 8 bytes per non-zero)
            rather than two sparse products per block; the scores are the same.
        num_threads: threads sharing a block's sparse products; None: ``torch.get_num_threads()``.

    ``fit()`` normalises, forms the sparse linear filter and runs the truncated SVD (Gowalla:
    about 13 s on 2 cores); the constructor only checks the arguments. ``alpha`` is read at scoring
    time, so a sweep over it may set the attribute on a fitted filter instead of refitting.
    """

    _owner = "GFCF"

    def __init__(
        self,
        interactions: sp.spmatrix | sp.sparray,
        *,
        alpha: float = 0.3,
        num_factors: int = 256,
        seed: int = 0,
        block_size: int = 1024,
        item_item: bool = True,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(interactions, block_size)
        self.alpha = _check_number(self._owner, "alpha", alpha, low=0.0)
        self.num_factors = _check_int(self._owner, "num_factors", num_factors, low=1,
                                      high=min(self.num_users, self.num_items) - 1)
        self.seed = _check_int(self._owner, "seed", seed, low=0)
        self.item_item = bool(item_item)
        self.num_threads = _num_threads(self._owner, num_threads)

    def __repr__(self) -> str:
        return (f"GFCF(users={self.num_users}, items={self.num_items}, alpha={self.alpha:g}, "
                f"num_factors={self.num_factors})")

    def _score_block(self, rows: sp.csr_matrix, out: Tensor) -> None:
        self.graph_.linear_rows(rows, out.numpy())
        if self.alpha:
            user_factors = torch.from_numpy(np.asarray(rows @ self.to_factors_))
            out.addmm_(user_factors, self.item_factors_.T, alpha=self.alpha)


# ---------------------------------------------------------------------------------------------
# BSPM


def _integrate(
    derivative: Callable[[Tensor], Tensor],
    start: Tensor,
    *,
    end_time: float,
    steps: int,
    method: str,
    first_derivative: Tensor | None = None,
) -> Tensor:
    r"""``steps`` fixed steps of ``dx/dt = derivative(x)`` from ``x(0) = start`` to ``end_time``.

    Euler: :math:`x \leftarrow x + h k_1`; RK4: :math:`x \leftarrow x + \frac h6 (k_1 + 2k_2 + 2k_3
    + k_4)` with :math:`k_1 = f(x), k_2 = f(x + \frac h2 k_1), k_3 = f(x + \frac h2 k_2),
    k_4 = f(x + h k_3)`. ``first_derivative`` is :math:`f(x(0))` when the caller has it cheaper
    (from the sparse start rows).
    """
    step_size = end_time / steps
    state = start
    for step in range(steps):
        slope = first_derivative if step == 0 and first_derivative is not None else derivative(state)
        if method == "euler":
            state = state + step_size * slope
            continue
        total = slope.clone()
        slope = derivative(state + (step_size / 2) * slope)
        total.add_(slope, alpha=2.0)
        slope = derivative(state + (step_size / 2) * slope)
        total.add_(slope, alpha=2.0)
        slope = derivative(state + step_size * slope)
        total.add_(slope)
        state = state + (step_size / 6) * total
    return state


class BSPM(LowPassFilter):
    r"""BSPM (Choi et al., "Blurring-Sharpening Process Models for Collaborative Filtering", SIGIR 2023).

    Three linear ODEs over a user's score row :math:`x(t)`, each from the row :math:`r_u`:

    .. math::

        \text{blurring: } \dot x = x L - x, \qquad
        \text{ideal blurring: } \dot x = x P - x, \qquad
        \text{sharpening: } \dot x = -x L,

    the sharpening started at :math:`x_b(T_b) + \beta\, x_p(T_p)`, and its end
    :math:`x_s(T_s)` is the score (the reference code's ``final_sharpening=True``, without
    ``t_point_combination``). With one Euler step of length 1 (the defaults), the two blurrings
    are exactly :math:`r_u L` and :math:`r_u P`. Defaults are the reference code's on Gowalla
    (``jeongwhanchoi/BSPM`` README: ``factor_dim=448, idl_beta=0.2``, sharpening ``rk4`` with
    ``K_s=1, T_s=2.5``; blurrings ``euler``, ``K=1, T=1``).

    Args:
        interactions: (U, I) scipy sparse training matrix; stored non-zeros are interactions.
        num_factors: ``k`` of the ideal filter :math:`P`, in ``[1, min(U, I) - 1]``.
        ideal_weight: :math:`\beta`, >= 0.
        blurring_time, blurring_steps, blurring_method: :math:`T_b` > 0, the number of fixed steps,
            ``"euler"`` or ``"rk4"``; the same for ``ideal_*`` (:math:`T_p`) and ``sharpening_*``
            (:math:`T_s`).
        seed: ARPACK's start vector; the same seed gives the same scores, bit for bit.
        block_size: users scored together; about six ``block_size × I`` float32 buffers live.
        item_item, num_threads: as in :class:`GFCF` (the first evaluation of each blurring, on the
            sparse rows); the later evaluations act on dense states as two torch CSR products.

    ``fit()`` normalises and runs the truncated SVD; the ODEs run per block at scoring time (one
    evaluation of :math:`L` per Euler step, four per RK4 step), so every setting but
    ``num_factors``, ``seed`` and ``item_item`` is read at scoring time and a sweep over them may
    set the attributes on a fitted filter.
    """

    _owner = "BSPM"

    def __init__(
        self,
        interactions: sp.spmatrix | sp.sparray,
        *,
        num_factors: int = 448,
        ideal_weight: float = 0.2,
        blurring_time: float = 1.0,
        blurring_steps: int = 1,
        blurring_method: ODEMethod = "euler",
        ideal_time: float = 1.0,
        ideal_steps: int = 1,
        ideal_method: ODEMethod = "euler",
        sharpening_time: float = 2.5,
        sharpening_steps: int = 1,
        sharpening_method: ODEMethod = "rk4",
        seed: int = 0,
        block_size: int = 1024,
        item_item: bool = True,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(interactions, block_size)
        owner = self._owner
        self.num_factors = _check_int(owner, "num_factors", num_factors, low=1,
                                      high=min(self.num_users, self.num_items) - 1)
        self.ideal_weight = _check_number(owner, "ideal_weight", ideal_weight, low=0.0)
        self.blurring_time = _check_number(owner, "blurring_time", blurring_time, low=0.0, closed=False)
        self.blurring_steps = _check_int(owner, "blurring_steps", blurring_steps, low=1)
        self.blurring_method = _check_method(owner, "blurring_method", blurring_method)
        self.ideal_time = _check_number(owner, "ideal_time", ideal_time, low=0.0, closed=False)
        self.ideal_steps = _check_int(owner, "ideal_steps", ideal_steps, low=1)
        self.ideal_method = _check_method(owner, "ideal_method", ideal_method)
        self.sharpening_time = _check_number(owner, "sharpening_time", sharpening_time, low=0.0, closed=False)
        self.sharpening_steps = _check_int(owner, "sharpening_steps", sharpening_steps, low=1)
        self.sharpening_method = _check_method(owner, "sharpening_method", sharpening_method)
        self.seed = _check_int(owner, "seed", seed, low=0)
        self.item_item = bool(item_item)
        self.num_threads = _num_threads(owner, num_threads)

    def __repr__(self) -> str:
        return (f"BSPM(users={self.num_users}, items={self.num_items}, num_factors={self.num_factors}, "
                f"ideal_weight={self.ideal_weight:g}, blurring={self.blurring_method} "
                f"{self.blurring_steps}×{self.blurring_time / self.blurring_steps:g}, "
                f"ideal={self.ideal_method} {self.ideal_steps}×{self.ideal_time / self.ideal_steps:g}, "
                f"sharpening={self.sharpening_method} "
                f"{self.sharpening_steps}×{self.sharpening_time / self.sharpening_steps:g})")

    def _ideal_dense_t(self, states_t: Tensor) -> Tensor:
        r""":math:`(x P)^\top = Q (W^\top x^\top)` for states kept transposed, (I, B) -> (I, B)."""
        return self.item_factors_ @ (torch.from_numpy(self.to_factors_).T @ states_t)

    def _score_block(self, rows: sp.csr_matrix, out: Tensor) -> None:
        # the states live transposed, (I, B): torch's CSR @ dense then needs no transpose per step
        rows_t = torch.from_numpy(rows.T.toarray(order="C"))
        linear = np.empty(rows.shape, dtype=np.float32)
        self.graph_.linear_rows(rows, linear)
        blurred = _integrate(
            lambda x: self.graph_.linear_dense_t(x) - x,
            rows_t,
            end_time=self.blurring_time,
            steps=self.blurring_steps,
            method=self.blurring_method,
            first_derivative=torch.from_numpy(linear).T.contiguous() - rows_t,
        )
        del linear
        user_factors = torch.from_numpy(np.asarray(rows @ self.to_factors_))
        ideal = _integrate(
            lambda x: self._ideal_dense_t(x) - x,
            rows_t,
            end_time=self.ideal_time,
            steps=self.ideal_steps,
            method=self.ideal_method,
            first_derivative=self.item_factors_ @ user_factors.T - rows_t,
        )
        del rows_t
        start = blurred.add_(ideal, alpha=self.ideal_weight) if self.ideal_weight else blurred
        del ideal
        sharpened = _integrate(
            lambda x: -self.graph_.linear_dense_t(x),
            start,
            end_time=self.sharpening_time,
            steps=self.sharpening_steps,
            method=self.sharpening_method,
        )
        out.copy_(sharpened.T)


# ---------------------------------------------------------------------------------------------
# EASE

EASE_DEFAULT_MEMORY_BUDGET_BYTES = 8 * 2**30


def ease_max_items(memory_budget_bytes: int) -> int:
    """The largest catalogue :class:`EASE` fits in ``memory_budget_bytes``: ``floor(sqrt(budget / 4))``.

    EASE holds one dense I × I float32 matrix, 4·I² bytes (the Gram matrix is factored, inverted
    and turned into the weights in place); with the default 8 GiB, 46,340 items.
    """
    return math.isqrt(int(memory_budget_bytes) // 4)


def _format_bytes(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024:
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.2f} {unit}"
        size /= 1024
    return f"{size:,.2f} GiB"


class EASE(GraphFilter):
    r"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

    .. math::

        P_\lambda = (R^\top R + \lambda I)^{-1}, \qquad
        B = I - P_\lambda \operatorname{diag}(1 / \operatorname{diag} P_\lambda), \qquad s_u = r_u B,

    i.e. :math:`B_{ij} = -P_{ij} / P_{jj}` off the diagonal and :math:`B_{jj} = 0`: the least-squares
    item-item weights :math:`\min_B \lVert R - RB \rVert_F^2 + \lambda \lVert B \rVert_F^2` with a
    zero diagonal (an item may not predict itself).

    Memory: one dense I × I float32 matrix, **4·I² bytes** (Gowalla's 40,981 items: 6.26 GiB).
    The Gram matrix is written into it, then factored (Cholesky), inverted and scaled into
    :math:`B` in place, by torch's LAPACK (MKL in this build) on the column-major view of the
    symmetric buffer. (scipy's OpenBLAS ``spotrf``, also in place, crashed with a segmentation fault
    at Gowalla's size.) The constructor refuses a catalogue of more than :func:`ease_max_items`
    ``(memory_budget_bytes)`` items with a :class:`~recforge.errors.ConfigError`, before anything
    is allocated. Time: about :math:`I^3` float32 flops, minutes for Gowalla on 2 cores.

    Args:
        interactions: (U, I) scipy sparse training matrix; stored non-zeros are interactions.
        regularization: :math:`\lambda` > 0.
        memory_budget_bytes: what the dense matrix may take; default 8 GiB.
        block_size: users scored together, as a sparse (B, I) @ dense (I, I) torch product.
        num_threads: torch's threads during the factorisation and inversion (restored after);
            None: leave them as they are. On a shared machine 1 can be much faster: MKL's inversion
            waits at every step for its slowest thread (Gowalla's 8,000 most popular items,
            another process on one of the 2 cores: 2.8 s with 1 thread, 37.8 s with 2).

    EASE has no low-rank factors (:math:`B` has full rank); :attr:`weights_` is :math:`B` (I, I).
    """

    _owner = "EASE"

    def __init__(
        self,
        interactions: sp.spmatrix | sp.sparray,
        *,
        regularization: float = 500.0,
        memory_budget_bytes: int = EASE_DEFAULT_MEMORY_BUDGET_BYTES,
        block_size: int = 1024,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(interactions, block_size)
        self.num_threads = None if num_threads is None else _num_threads(self._owner, num_threads)
        self.regularization = _check_number(self._owner, "regularization", regularization, low=0.0,
                                            closed=False)
        self.memory_budget_bytes = _check_int(self._owner, "memory_budget_bytes", memory_budget_bytes, low=1)
        max_items = ease_max_items(self.memory_budget_bytes)
        if self.num_items > max_items:
            needed = 4 * self.num_items**2
            raise ConfigError(
                f"EASE on {self.num_items:,} items needs one dense {self.num_items:,} × {self.num_items:,} "
                f"float32 matrix, 4·I² = {needed:,} bytes ({_format_bytes(needed)}); memory_budget_bytes = "
                f"{self.memory_budget_bytes:,} ({_format_bytes(self.memory_budget_bytes)}) allows at most "
                f"{max_items:,} items "
                "(I ≤ sqrt(budget / 4)). Raise memory_budget_bytes if the machine has the memory, or use "
                "GFCF or BSPM, which never form a dense I × I matrix."
            )

    def __repr__(self) -> str:
        return f"EASE(users={self.num_users}, items={self.num_items}, regularization={self.regularization:g})"

    def fit(self) -> Self:
        threads = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            self.weights_ = self._item_weights()
        finally:
            torch.set_num_threads(threads)
        self._fitted = True
        return self

    def fitted_tensors(self) -> dict[str, Tensor]:
        """``{"weights": B}`` (I, I): 4·I² bytes, the model itself."""
        self._check_fitted()
        return {"weights": self.weights_}

    def restore(self, tensors: dict[str, Tensor]) -> Self:
        self.weights_ = self._fitted_tensor(tensors, "weights", (self.num_items, self.num_items))
        self._fitted = True
        return self

    def _item_weights(self) -> Tensor:
        num_items = self.num_items
        gram = self.interactions.T.tocsr() @ self.interactions
        dense = np.zeros((num_items, num_items), dtype=np.float32)
        sp.csr_matrix(gram).toarray(out=dense)
        del gram
        weights = torch.from_numpy(dense)
        weights.diagonal().add_(self.regularization)
        # R^T R + λI is symmetric, so its row-major buffer read column-major (.mT) is the same
        # matrix; torch's LAPACK (column-major) then factors and inverts it in place, where a
        # row-major tensor would cost a second I × I copy
        column_major = weights.mT
        try:
            torch.linalg.cholesky(column_major, out=column_major)
        except torch.linalg.LinAlgError as error:
            raise RecforgeError(f"EASE: R^T R + λI is not positive definite in float32 ({error}); "
                                "raise regularization") from error
        torch.cholesky_inverse(column_major, out=column_major)
        if weights.data_ptr() != dense.ctypes.data or not torch.isfinite(weights.diagonal()).all():
            raise RecforgeError("EASE: inverting R^T R + λI did not give a finite matrix in place; "
                                "raise regularization")
        diagonal = weights.diagonal().clone()
        weights.div_(diagonal.neg())  # B_ij = -P_ij / P_jj, column j scaled by its diagonal entry
        weights.fill_diagonal_(0.0)
        return weights

    def _score_block(self, rows: sp.csr_matrix, out: Tensor) -> None:
        torch.mm(_torch_csr(rows, check_invariants=False), self.weights_, out=out)


# ---------------------------------------------------------------------------------------------
# the ``model:`` sections of the three filter recipes (arguments as above; the experiment's
# ``seed`` is the SVD's, ``train.num_threads`` the filters' threads)

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(gt=0)]


class GFCFConfig(FilterSettings):
    name: Literal["gfcf"]
    alpha: NonNegative = 0.3
    num_factors: Count = 256
    item_item: bool = True
    block_size: Count = 1024


class BSPMConfig(FilterSettings):
    name: Literal["bspm"]
    num_factors: Count = 448
    ideal_weight: NonNegative = 0.2
    blurring_time: Positive = 1.0
    blurring_steps: Count = 1
    blurring_method: ODEMethod = "euler"
    ideal_time: Positive = 1.0
    ideal_steps: Count = 1
    ideal_method: ODEMethod = "euler"
    sharpening_time: Positive = 2.5
    sharpening_steps: Count = 1
    sharpening_method: ODEMethod = "rk4"
    item_item: bool = True
    block_size: Count = 1024


class EASEConfig(FilterSettings):
    name: Literal["ease"]
    regularization: Positive = 500.0
    memory_budget_bytes: Count = EASE_DEFAULT_MEMORY_BUDGET_BYTES
    block_size: Count = 1024
