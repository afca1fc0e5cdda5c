"""GF-CF, BSPM and EASE against slow dense formulas in float64 on tiny random matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import torch

from recforge.errors import ConfigError, RecforgeError
from recforge.models.filters import BSPM, EASE, GFCF, ease_max_items

NUM_USERS, NUM_ITEMS = 12, 9


def random_interactions(seed: int = 0, density: float = 0.35) -> sp.csr_matrix:
    """A binary 12 × 9 matrix in which every user and every item has at least one interaction."""
    rng = np.random.default_rng(seed)
    dense = rng.random((NUM_USERS, NUM_ITEMS)) < density
    dense[np.arange(NUM_USERS), rng.integers(0, NUM_ITEMS, NUM_USERS)] = True
    dense[rng.integers(0, NUM_USERS, NUM_ITEMS), np.arange(NUM_ITEMS)] = True
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.fixture
def interactions() -> sp.csr_matrix:
    return random_interactions()


ALL_USERS = torch.arange(NUM_USERS)


# --- the slow, plainly right versions: dense float64 matrices, one formula each ----------------


def inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0)


def dense_filters(interactions: sp.csr_matrix, num_factors: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R, L = R̃ᵀR̃, P = D_I^{-1/2} V_k V_kᵀ D_I^{1/2}) as dense float64 arrays."""
    r = interactions.toarray().astype(np.float64)
    user_degree, item_degree = r.sum(1), r.sum(0)
    normalized = inverse_sqrt(user_degree)[:, None] * r * inverse_sqrt(item_degree)[None, :]
    linear = normalized.T @ normalized
    _, _, right_t = np.linalg.svd(normalized)
    top = right_t[:num_factors].T  # np.linalg.svd sorts singular values in descending order
    ideal = np.diag(inverse_sqrt(item_degree)) @ top @ top.T @ np.diag(np.sqrt(item_degree))
    return r, linear, ideal


def reference_gfcf(interactions: sp.csr_matrix, alpha: float, num_factors: int) -> np.ndarray:
    r, linear, ideal = dense_filters(interactions, num_factors)
    return r @ linear + alpha * r @ ideal


def step_matrix(rate: np.ndarray, end_time: float, steps: int, method: str) -> np.ndarray:
    """The matrix M with x(T) = x(0) M for fixed steps of dx/dt = x A: (I + hA)^K for Euler and
    the degree-4 Taylor polynomial of hA, to the K, for RK4 (both exact for a linear ODE)."""
    h = end_time / steps
    identity = np.eye(len(rate))
    if method == "euler":
        one_step = identity + h * rate
    else:
        ha = h * rate
        one_step = identity + ha + ha @ ha / 2 + ha @ ha @ ha / 6 + ha @ ha @ ha @ ha / 24
    return np.linalg.matrix_power(one_step, steps)


def reference_bspm(interactions: sp.csr_matrix, *, num_factors: int, ideal_weight: float,
                   blurring: tuple[float, int, str], ideal: tuple[float, int, str],
                   sharpening: tuple[float, int, str]) -> np.ndarray:
    r, linear, ideal_filter = dense_filters(interactions, num_factors)
    identity = np.eye(linear.shape[0])
    blurred = r @ step_matrix(linear - identity, *blurring)
    ideal_blurred = r @ step_matrix(ideal_filter - identity, *ideal)
    return (blurred + ideal_weight * ideal_blurred) @ step_matrix(-linear, *sharpening)


def reference_ease_weights(interactions: sp.csr_matrix, regularization: float) -> np.ndarray:
    r = interactions.toarray().astype(np.float64)
    inverse = np.linalg.inv(r.T @ r + regularization * np.eye(r.shape[1]))
    return np.eye(r.shape[1]) - inverse @ np.diag(1.0 / np.diag(inverse))


def assert_close(actual: torch.Tensor, expected: np.ndarray, tolerance: float = 2e-5) -> None:
    assert actual.dtype == torch.float32
    assert tuple(actual.shape) == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual.numpy(), expected, rtol=0, atol=tolerance * scale)


def small_bspm(interactions: sp.csr_matrix, **changes: object) -> BSPM:
    settings: dict[str, object] = {"num_factors": 4, "ideal_weight": 0.2}
    settings.update(changes)
    return BSPM(interactions, **settings)  # type: ignore[arg-type]


# --- repr and shapes --------------------------------------------------------------------------


def test_repr(interactions):
    assert repr(GFCF(interactions, alpha=0.3, num_factors=4)) == (
        "GFCF(users=12, items=9, alpha=0.3, num_factors=4)"
    )
    assert repr(EASE(interactions, regularization=10.0)) == "EASE(users=12, items=9, regularization=10)"
    assert repr(small_bspm(interactions)) == (
        "BSPM(users=12, items=9, num_factors=4, ideal_weight=0.2, blurring=euler 1×1, ideal=euler 1×1, "
        "sharpening=rk4 1×2.5)"
    )


@pytest.mark.parametrize("make", [
    lambda m: GFCF(m, num_factors=4), lambda m: small_bspm(m), lambda m: EASE(m, regularization=5.0)
], ids=["gfcf", "bspm", "ease"])
def test_scores_shape_dtype_and_empty_batch(interactions, make):
    model = make(interactions).fit()
    scores = model.scores(torch.tensor([3, 0, 3]))
    assert scores.shape == (3, NUM_ITEMS)
    assert scores.dtype == torch.float32
    assert scores.device.type == "cpu"
    assert model.scores(torch.empty(0, dtype=torch.long)).shape == (0, NUM_ITEMS)


# --- each filter against its dense formula -----------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.3, 2.0])
@pytest.mark.parametrize("item_item", [True, False])
def test_gfcf_matches_the_dense_formula(interactions, alpha, item_item):
    model = GFCF(interactions, alpha=alpha, num_factors=3, item_item=item_item).fit()
    assert_close(model.scores(ALL_USERS), reference_gfcf(interactions, alpha, 3))


def test_gfcf_with_alpha_zero_is_the_linear_filter(interactions):
    r, linear, _ = dense_filters(interactions, 3)
    scores = GFCF(interactions, alpha=0.0, num_factors=3).fit().scores(ALL_USERS)
    assert_close(scores, r @ linear)


def test_gfcf_low_rank_factors_are_the_ideal_part(interactions):
    model = GFCF(interactions, alpha=0.7, num_factors=3).fit()
    users, items = model.low_rank_factors()
    assert users.shape == (NUM_USERS, 3)
    assert items.shape == (NUM_ITEMS, 3)
    r, _, ideal = dense_filters(interactions, 3)
    assert_close(users @ items.T, r @ ideal)
    linear_only = GFCF(interactions, alpha=0.0, num_factors=3).fit().scores(ALL_USERS)
    torch.testing.assert_close(model.scores(ALL_USERS), linear_only + 0.7 * users @ items.T)


BSPM_SETTINGS = {
    "reference defaults": {},
    "euler everywhere, several steps": {
        "blurring_time": 0.8, "blurring_steps": 3, "ideal_time": 1.5, "ideal_steps": 2,
        "sharpening_method": "euler", "sharpening_time": 0.6, "sharpening_steps": 4,
    },
    "rk4 everywhere, several steps": {
        "blurring_method": "rk4", "blurring_time": 1.2, "blurring_steps": 2,
        "ideal_method": "rk4", "ideal_time": 0.5, "ideal_steps": 3,
        "sharpening_time": 1.0, "sharpening_steps": 2, "ideal_weight": 0.0,
    },
}


@pytest.mark.parametrize("changes", BSPM_SETTINGS.values(), ids=BSPM_SETTINGS.keys())
@pytest.mark.parametrize("item_item", [True, False])
def test_bspm_matches_the_dense_formula(interactions, changes, item_item):
    model = small_bspm(interactions, item_item=item_item, **changes).fit()

    def process(name: str, time: float, steps: int, method: str) -> tuple[float, int, str]:
        return (changes.get(f"{name}_time", time), changes.get(f"{name}_steps", steps),
                changes.get(f"{name}_method", method))

    expected = reference_bspm(
        interactions, num_factors=4, ideal_weight=changes.get("ideal_weight", 0.2),
        blurring=process("blurring", 1.0, 1, "euler"), ideal=process("ideal", 1.0, 1, "euler"),
        sharpening=process("sharpening", 2.5, 1, "rk4"),
    )
    assert_close(model.scores(ALL_USERS), expected, tolerance=5e-5)


def test_bspm_defaults_blur_exactly_into_the_gfcf_filters(interactions):
    # one Euler step of length 1: x = r + (rL - r) = rL, and likewise rP
    r, linear, ideal = dense_filters(interactions, 4)
    start = r @ linear + 0.2 * r @ ideal
    sharpened = small_bspm(interactions, sharpening_method="euler", sharpening_time=0.5).fit()
    assert_close(sharpened.scores(ALL_USERS), start @ (np.eye(NUM_ITEMS) - 0.5 * linear))


def test_bspm_rk4_converges_to_the_exact_sharpening(interactions):
    # many small RK4 steps of dx/dt = -xL reach x(0) expm(-T L)
    r, linear, ideal = dense_filters(interactions, 4)
    exact = (r @ linear + 0.2 * r @ ideal) @ scipy.linalg.expm(-2.5 * linear)
    model = small_bspm(interactions, sharpening_steps=40).fit()
    assert_close(model.scores(ALL_USERS), exact, tolerance=5e-5)


def test_bspm_low_rank_factors_are_the_ideal_filter(interactions):
    users, items = small_bspm(interactions).fit().low_rank_factors()
    r, _, ideal = dense_filters(interactions, 4)
    assert_close(users @ items.T, r @ ideal)


@pytest.mark.parametrize("regularization", [0.5, 10.0, 300.0])
def test_ease_matches_the_inverse_of_the_closed_form(interactions, regularization):
    model = EASE(interactions, regularization=regularization).fit()
    expected = reference_ease_weights(interactions, regularization)
    assert_close(model.weights_, expected, tolerance=1e-5)
    assert torch.all(model.weights_.diagonal() == 0)
    assert np.allclose(np.diag(expected), 0.0)
    r = interactions.toarray().astype(np.float64)
    assert_close(model.scores(ALL_USERS), r @ expected, tolerance=1e-5)


def test_ease_fit_threads_are_restored(interactions):
    before = torch.get_num_threads()
    weights = EASE(interactions, regularization=3.0, num_threads=1).fit().weights_
    assert torch.get_num_threads() == before
    torch.testing.assert_close(weights, EASE(interactions, regularization=3.0).fit().weights_)


def test_ease_works_in_place_on_one_matrix(interactions):
    model = EASE(interactions, regularization=2.0).fit()
    assert model.weights_.is_contiguous()
    assert model.weights_.untyped_storage().nbytes() == 4 * NUM_ITEMS**2  # no second I × I buffer


def test_ease_refuses_a_gram_matrix_that_is_not_positive_definite(interactions, monkeypatch):
    def not_positive_definite(matrix: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
        raise torch.linalg.LinAlgError("linalg.cholesky: The factorization could not be completed")

    monkeypatch.setattr(torch.linalg, "cholesky", not_positive_definite)
    with pytest.raises(RecforgeError, match=r"EASE: R\^T R \+ λI is not positive definite in float32 .* "
                                            r"raise regularization"):
        EASE(interactions, regularization=1e-3).fit()


# --- blocks, threads, histories: one answer from several routes -------------------------------


FILTERS = {
    "gfcf": lambda m, **kw: GFCF(m, num_factors=3, **kw),
    "bspm": lambda m, **kw: small_bspm(m, sharpening_steps=2, **kw),
    "ease": lambda m, **kw: EASE(m, regularization=3.0, **{k: v for k, v in kw.items() if k == "block_size"}),
}


@pytest.mark.parametrize("name", FILTERS)
@pytest.mark.parametrize(("block_size", "num_threads"), [(1, 1), (5, 2), (5, 3), (NUM_USERS, 1)])
def test_blockwise_scoring_equals_all_at_once(interactions, name, block_size, num_threads):
    make = FILTERS[name]
    whole = make(interactions, block_size=NUM_USERS, num_threads=1).fit().scores(ALL_USERS)
    blocks = make(interactions, block_size=block_size, num_threads=num_threads).fit().scores(ALL_USERS)
    torch.testing.assert_close(blocks, whole, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", FILTERS)
def test_a_batch_in_any_order_gets_its_rows_of_the_full_scores(interactions, name):
    model = FILTERS[name](interactions, block_size=4).fit()
    whole = model.scores(ALL_USERS)
    batch = torch.tensor([7, 2, 11, 2, 0])
    torch.testing.assert_close(model.scores(batch), whole[batch], rtol=1e-6, atol=1e-6)
    buffer = torch.full((len(batch), NUM_ITEMS), float("nan"))
    assert model.scores(batch, out=buffer) is buffer
    torch.testing.assert_close(buffer, whole[batch], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", FILTERS)
def test_history_scores_of_the_training_rows_are_the_scores(interactions, name):
    model = FILTERS[name](interactions).fit()
    torch.testing.assert_close(model.history_scores(interactions), model.scores(ALL_USERS),
                               rtol=1e-6, atol=1e-6)


def test_history_scores_use_the_given_rows_with_the_training_filters(interactions):
    histories = sp.csr_matrix(np.eye(3, NUM_ITEMS, k=2, dtype=np.float32) * 5.0)  # values count as 1
    _, linear, ideal = dense_filters(interactions, 3)
    scores = GFCF(interactions, alpha=0.3, num_factors=3).fit().history_scores(histories)
    rows = np.eye(3, NUM_ITEMS, k=2)
    assert_close(scores, rows @ (linear + 0.3 * ideal))


@pytest.mark.parametrize("name", FILTERS)
def test_same_seed_same_scores_bit_for_bit(interactions, name):
    first = FILTERS[name](interactions).fit().scores(ALL_USERS)
    again = FILTERS[name](interactions).fit().scores(ALL_USERS)
    assert torch.equal(first, again)


def test_another_seed_gives_the_same_filter(interactions):
    # the seed picks ARPACK's start vector; V_k V_kᵀ does not depend on it (distinct singular values)
    first = GFCF(interactions, num_factors=3, seed=0).fit().scores(ALL_USERS)
    other = GFCF(interactions, num_factors=3, seed=7).fit().scores(ALL_USERS)
    torch.testing.assert_close(first, other, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", FILTERS)
def test_a_user_and_an_item_without_interactions_score_zero(name):
    matrix = random_interactions().tolil()
    matrix[4, :] = 0
    matrix[:, 6] = 0
    matrix = matrix.tocsr()
    model = FILTERS[name](matrix).fit()
    scores = model.scores(ALL_USERS)
    assert torch.isfinite(scores).all()
    assert torch.all(scores[4] == 0)
    assert torch.all(scores[:, 6] == 0)


def test_duplicates_and_values_count_as_one_interaction(interactions):
    weighted = interactions.copy()
    weighted.data[:] = 4.0
    coo = interactions.tocoo()
    repeated = sp.coo_matrix((np.r_[coo.data, coo.data], (np.r_[coo.row, coo.row], np.r_[coo.col, coo.col])),
                             shape=coo.shape)  # every interaction listed twice
    base = GFCF(interactions, num_factors=3).fit().scores(ALL_USERS)
    torch.testing.assert_close(GFCF(weighted, num_factors=3).fit().scores(ALL_USERS), base)
    torch.testing.assert_close(GFCF(repeated, num_factors=3).fit().scores(ALL_USERS), base)


# --- EASE's memory bound and the errors --------------------------------------------------------


def test_ease_max_items_is_the_square_root_of_a_quarter_of_the_budget():
    assert ease_max_items(8 * 2**30) == 46_340
    for budget in (4 * 99**2, 4 * 99**2 + 3, 10**9):
        largest = ease_max_items(budget)
        assert 4 * largest**2 <= budget < 4 * (largest + 1) ** 2


def test_ease_refuses_a_catalogue_over_its_memory_budget():
    matrix = sp.csr_matrix((3, 40_981), dtype=np.float32)
    with pytest.raises(ConfigError, match=r"EASE on 40,981 items needs one dense 40,981 × 40,981 float32 "
                                          r"matrix, 4·I² = 6,717,769,444 bytes \(6\.26 GiB\); "
                                          r"memory_budget_bytes = 4,294,967,296 \(4\.00 GiB\) allows at "
                                          r"most 32,768 items"):
        EASE(matrix, memory_budget_bytes=4 * 2**30)
    EASE(matrix)  # the default 8 GiB budget allows 46,340 items: Gowalla fits


def test_ease_bound_error_names_small_sizes_in_bytes():
    with pytest.raises(ConfigError, match=r"EASE on 100 items .* 4·I² = 40,000 bytes \(39\.06 KiB\); "
                                          r"memory_budget_bytes = 39,204 \(38\.29 KiB\) allows at most "
                                          r"99 items"):
        EASE(sp.csr_matrix((3, 100), dtype=np.float32), memory_budget_bytes=4 * 99**2)


@pytest.mark.parametrize(("make", "message"), [
    (lambda m: GFCF(m, alpha=-1.0),
     r"The 'alpha' parameter of GFCF must be a finite float in the range \[0, inf\)\. Got -1\.0 instead\."),
    (lambda m: GFCF(m, alpha=float("nan")), r"'alpha' parameter of GFCF .* Got nan instead"),
    (lambda m: GFCF(m, num_factors=9),
     r"The 'num_factors' parameter of GFCF must be an int in the range \[1, 8\]\. Got 9 instead\."),
    (lambda m: GFCF(m, num_factors=2.0), r"'num_factors' parameter of GFCF must be an int"),
    (lambda m: GFCF(m, block_size=0),
     r"'block_size' parameter of GFCF must be an int in the range \[1, inf\)"),
    (lambda m: GFCF(m, num_factors=3, num_threads=0), r"'num_threads' parameter of GFCF"),
    (lambda m: BSPM(m, num_factors=4, sharpening_method="dopri5"),
     r"The 'sharpening_method' parameter of BSPM must be one of \['euler', 'rk4'\]\. Got 'dopri5' instead\."),
    (lambda m: BSPM(m, num_factors=4, sharpening_time=0.0),
     r"'sharpening_time' parameter of BSPM must be a finite float in the range \(0, inf\)"),
    (lambda m: BSPM(m, num_factors=4, blurring_steps=0), r"'blurring_steps' parameter of BSPM"),
    (lambda m: BSPM(m, num_factors=4, ideal_weight=True), r"'ideal_weight' parameter of BSPM .* Got True"),
    (lambda m: EASE(m, num_threads=0), r"'num_threads' parameter of EASE"),
    (lambda m: EASE(m, regularization=0.0),
     r"The 'regularization' parameter of EASE must be a finite float in the range \(0, inf\)"),
    (lambda m: GFCF(m.toarray()), r"GFCF needs the training interactions as a 2-D scipy sparse matrix"),
])
def test_bad_arguments_are_config_errors(interactions, make, message):
    with pytest.raises(ConfigError, match=message):
        make(interactions)


@pytest.mark.parametrize("name", FILTERS)
def test_scoring_errors(interactions, name):
    model = FILTERS[name](interactions)
    with pytest.raises(RecforgeError, match=r"is not fitted yet; call fit\(\) before scoring"):
        model.scores(ALL_USERS)
    model.fit()
    with pytest.raises(RecforgeError, match=r"user ids must lie in \[0, 12\), got min 0 and max 12"):
        model.scores(torch.tensor([0, 12]))
    with pytest.raises(RecforgeError, match="users must be a 1-D tensor of integer ids"):
        model.scores(torch.tensor([0.0, 1.0]))
    with pytest.raises(RecforgeError, match="histories must have 9 item columns, got 8"):
        model.history_scores(sp.csr_matrix((2, 8), dtype=np.float32))
    with pytest.raises(RecforgeError, match=r"out must be a contiguous float32 CPU tensor of shape \(2, 9\)"):
        model.scores(torch.tensor([0, 1]), out=torch.empty(2, 8))


def test_an_svd_that_does_not_converge_is_a_recforge_error(interactions, monkeypatch):
    from scipy.sparse.linalg import ArpackNoConvergence

    from recforge.models import filters

    def no_convergence(*args: object, **kwargs: object) -> None:
        raise ArpackNoConvergence("ARPACK error -1: No convergence", np.empty(0), np.empty((0, 0)))

    monkeypatch.setattr(filters, "svds", no_convergence)
    with pytest.raises(RecforgeError, match=r"truncated SVD .* \(k=3\) did not converge; lower num_factors"):
        GFCF(interactions, num_factors=3).fit()


# --- fitted state: what a run directory saves, and restoring it without the slow part ----------


@pytest.mark.parametrize(
    "make",
    [
        lambda m: GFCF(m, alpha=0.4, num_factors=4, seed=3),
        lambda m: BSPM(m, num_factors=4, ideal_weight=0.3, seed=3),
        lambda m: EASE(m, regularization=2.0),
    ],
    ids=["gfcf", "bspm", "ease"],
)
def test_restored_filter_scores_bit_for_bit_like_the_fitted_one(interactions, make):
    fitted = make(interactions).fit()
    tensors = {name: tensor.clone() for name, tensor in fitted.fitted_tensors().items()}
    restored = make(interactions).restore(tensors)
    assert torch.equal(restored.scores(ALL_USERS), fitted.scores(ALL_USERS))


def test_restore_refuses_state_of_another_shape_or_with_nan(interactions):
    state = GFCF(interactions, num_factors=4).fit().fitted_tensors()
    with pytest.raises(RecforgeError, match="right_singular_vectors' must be float32 \\(9, 3\\)"):
        GFCF(interactions, num_factors=3).restore(state)
    with pytest.raises(RecforgeError, match="'weights' must be float32 \\(9, 9\\), found missing"):
        EASE(interactions).restore(state)
    poisoned = {"right_singular_vectors": state["right_singular_vectors"].clone()}
    poisoned["right_singular_vectors"][0, 0] = float("nan")
    with pytest.raises(RecforgeError, match="NaN or inf"):
        GFCF(interactions, num_factors=4).restore(poisoned)
