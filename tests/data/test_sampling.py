"""Tests for recforge.data.sampling: negatives are never positives, uniform, and epochs reproducible."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.data import sampling
from recforge.data.dataset import Interactions
from recforge.data.sampling import TrainingBatches, TripletBatch, sample_negatives
from recforge.errors import ConfigError, RecforgeError


def random_positives(
    seed: int, num_users: int = 50, num_items: int = 20, density: float = 0.6
) -> sp.csr_matrix:
    """A dense-ish matrix, so rejection needs many rounds; every user keeps at least one negative."""
    dense = np.random.default_rng(seed).random((num_users, num_items)) < density
    dense[:, seed % num_items] = False
    return sp.csr_matrix(dense.astype(np.float32))


def pairs(users: torch.Tensor | np.ndarray, items: torch.Tensor | np.ndarray) -> list[tuple[int, int]]:
    return sorted(zip(np.asarray(users).tolist(), np.asarray(items).tolist(), strict=True))


# -- sample_negatives ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_negatives_are_never_positives_and_in_range(seed):
    positives = random_positives(seed)
    users = np.random.default_rng(seed).integers(0, 50, size=300)
    negatives = sample_negatives(positives, users, 7, np.random.default_rng(seed))
    assert negatives.shape == (300, 7)
    assert negatives.dtype == np.int64
    assert negatives.min() >= 0
    assert negatives.max() < 20
    dense = positives.toarray().astype(bool)
    assert not dense[users[:, None], negatives].any()


def test_negatives_are_uniform_over_the_non_positives():
    positives = sp.csr_matrix(np.isin(np.arange(10), [0, 3, 7])[None, :].astype(np.float32))
    negatives = sample_negatives(positives, np.zeros(7000, dtype=np.int64), 10, np.random.default_rng(0))
    counts = np.bincount(negatives.ravel(), minlength=10)
    assert counts[[0, 3, 7]].tolist() == [0, 0, 0]
    allowed = counts[[1, 2, 4, 5, 6, 8, 9]]
    chi_square = ((allowed - 10_000) ** 2 / 10_000).sum()
    assert chi_square < 22.46  # 99.9% quantile of chi-square with 6 degrees of freedom


def test_sample_negatives_is_a_function_of_the_generator_state():
    positives, users = random_positives(3), np.arange(50)
    first = sample_negatives(positives, users, 4, np.random.default_rng(42))
    assert np.array_equal(first, sample_negatives(positives, users, 4, np.random.default_rng(42)))
    assert not np.array_equal(first, sample_negatives(positives, users, 4, np.random.default_rng(43)))


def test_sample_negatives_accepts_non_canonical_csr():
    # duplicates and unsorted column indices: the membership keys must still be sorted and unique
    matrix = sp.csr_matrix(
        (np.ones(5, dtype=np.float32), np.array([3, 1, 3, 0, 2]), np.array([0, 3, 5])), shape=(2, 5)
    )
    assert not matrix.has_canonical_format
    negatives = sample_negatives(matrix, np.array([0, 1] * 500), 3, np.random.default_rng(0))
    assert set(negatives[0::2].ravel().tolist()) == {0, 2, 4}
    assert set(negatives[1::2].ravel().tolist()) == {1, 3, 4}


def test_sample_negatives_edge_cases():
    positives, rng = random_positives(0), np.random.default_rng(0)
    assert sample_negatives(positives, np.arange(5), 0, rng).shape == (5, 0)
    assert sample_negatives(positives, np.array([], dtype=np.int64), 3, rng).shape == (0, 3)
    empty = sp.csr_matrix((3, 4), dtype=np.float32)
    assert sample_negatives(empty, np.array([2, 2]), 2, np.random.default_rng(0)).max() < 4


def test_saturated_user_is_named():
    dense = np.zeros((4, 6), dtype=np.float32)
    dense[2] = 1
    positives, rng = sp.csr_matrix(dense), np.random.default_rng(0)
    with pytest.raises(RecforgeError, match="user 2 interacted with all 6 items, so no negative item exists"):
        sample_negatives(positives, np.array([0, 2, 1, 2]), 1, rng)
    # a saturated user not asked for is no problem
    assert sample_negatives(positives, np.array([0, 1, 3]), 2, rng).shape == (3, 2)


def test_sample_negatives_rejects_bad_arguments():
    positives = random_positives(0)
    with pytest.raises(RecforgeError, match=r"user ids must lie in \[0, 50\), got 0..50"):
        sample_negatives(positives, np.array([0, 50]), 1, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="num_negatives must be an int >= 0, got -1"):
        sample_negatives(positives, np.array([0]), -1, np.random.default_rng(0))


# -- TrainingBatches -------------------------------------------------------------------------------------


def train_interactions(seed: int = 0, rows: int = 1000) -> Interactions:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 40, size=rows)
    items = rng.integers(0, 30, size=rows)
    return Interactions(users, items)  # repeated (user, item) rows included on purpose


def epoch_pairs(batches: TrainingBatches) -> list[tuple[int, int]]:
    collected = list(batches)
    return pairs(torch.cat([b.users for b in collected]), torch.cat([b.positives for b in collected]))


def test_every_training_row_is_visited_once_per_epoch():
    train = train_interactions()
    batches = TrainingBatches(train, 30, batch_size=64, num_negatives=3, seed=0)
    assert len(batches) == 16  # ceil(1000 / 64)
    for _ in range(2):
        collected = list(batches)
        assert [len(b) for b in collected] == [64] * 15 + [40]
        got = pairs(torch.cat([b.users for b in collected]), torch.cat([b.positives for b in collected]))
        assert got == pairs(train.users, train.items)


def test_batches_hold_int64_tensors_of_the_right_shapes_and_true_negatives():
    train = train_interactions()
    positive = train.to_csr(40, 30).toarray().astype(bool)
    for batch in TrainingBatches(train, 30, batch_size=100, num_negatives=5, seed=1):
        assert isinstance(batch, TripletBatch)
        assert batch.users.dtype == batch.positives.dtype == batch.negatives.dtype == torch.int64
        assert batch.negatives.shape == (len(batch), 5)
        assert positive[batch.users.numpy(), batch.positives.numpy()].all()
        assert not positive[batch.users.numpy()[:, None], batch.negatives.numpy()].any()
        assert batch.to("cpu").negatives.shape == (len(batch), 5)


def test_drop_last_leaves_out_the_short_batch():
    batches = TrainingBatches(train_interactions(), 30, batch_size=64, seed=0, drop_last=True)
    collected = list(batches)
    assert len(batches) == len(collected) == 15
    assert all(len(b) == 64 for b in collected)


def test_each_epoch_depends_only_on_seed_and_epoch():
    train = train_interactions()

    def run_epoch(batches: TrainingBatches) -> list[np.ndarray]:
        return [torch.cat([b.users, b.positives, b.negatives.ravel()]).numpy() for b in batches]

    long_run = TrainingBatches(train, 30, batch_size=128, num_negatives=2, seed=5)
    epochs = [run_epoch(long_run) for _ in range(4)]  # each pass advances the epoch
    assert long_run.epoch == 4
    resumed = TrainingBatches(train, 30, batch_size=128, num_negatives=2, seed=5)
    resumed.set_epoch(3)
    assert all(np.array_equal(a, b) for a, b in zip(run_epoch(resumed), epochs[3], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(epochs[2], epochs[3], strict=True))
    other_seed = TrainingBatches(train, 30, batch_size=128, num_negatives=2, seed=6)
    other_seed.set_epoch(3)
    assert not all(np.array_equal(a, b) for a, b in zip(run_epoch(other_seed), epochs[3], strict=True))


def test_epoch_advances_when_iteration_starts_not_when_it_ends():
    batches = TrainingBatches(train_interactions(), 30, batch_size=128, seed=0)
    next(iter(batches))  # a pass abandoned after one batch still counts as the epoch
    assert batches.epoch == 1


def test_negatives_drawn_in_several_blocks(monkeypatch):
    # a draw of 40 negatives covers only 2 batches of 20 (x1 negative): the epoch needs many draws
    monkeypatch.setattr(sampling, "_NEGATIVES_PER_DRAW", 40)
    train = train_interactions(rows=333)
    batches = TrainingBatches(train, 30, batch_size=20, seed=0, drop_last=True)
    assert batches._rows_per_draw == 40
    got = epoch_pairs(batches)
    assert len(got) == 320
    assert set(got) <= set(pairs(train.users, train.items))
    assert epoch_pairs(TrainingBatches(train, 30, batch_size=20, seed=0)) == pairs(train.users, train.items)


def test_csr_and_interactions_give_the_same_batches():
    csr = random_positives(4, num_users=30, num_items=25, density=0.3)
    coo = csr.tocoo()
    train = Interactions(coo.row.astype(np.int64), coo.col.astype(np.int64))  # row-major, like the CSR
    from_csr = TrainingBatches(csr, 25, batch_size=50, num_negatives=2, seed=9)
    from_rows = TrainingBatches(train, 25, batch_size=50, num_negatives=2, seed=9)
    for a, b in zip(from_csr, from_rows, strict=True):
        assert torch.equal(a.users, b.users)
        assert torch.equal(a.positives, b.positives)
        assert torch.equal(a.negatives, b.negatives)


def test_training_batches_errors_and_repr():
    train = train_interactions()
    assert repr(TrainingBatches(train, 30, batch_size=100, seed=0)) == (
        "TrainingBatches(pairs=1000, items=30, batch_size=100, num_negatives=1, batches=10, epoch=0)"
    )
    with pytest.raises(ConfigError, match="batch_size must be an int >= 1, got 0"):
        TrainingBatches(train, 30, batch_size=0, seed=0)
    with pytest.raises(RecforgeError, match=r"item ids must lie in \[0, 20\)"):
        TrainingBatches(train, 20, batch_size=10, seed=0)
    with pytest.raises(RecforgeError, match="the matrix has 30 item columns, num_items is 31"):
        TrainingBatches(train.to_csr(40, 30), 31, batch_size=10, seed=0)
    saturated = Interactions(np.array([0, 0, 1]), np.array([0, 1, 0]))
    with pytest.raises(RecforgeError, match="user 0 interacted with all 2 items"):
        TrainingBatches(saturated, 2, batch_size=10, seed=0)
    assert len(TrainingBatches(saturated, 2, batch_size=10, num_negatives=0, seed=0)) == 1
    nothing = Interactions(np.array([], np.int64), np.array([], np.int64))
    empty = TrainingBatches(nothing, 5, batch_size=4, seed=0)
    assert len(empty) == 0
    assert list(empty) == []


# -- real data -------------------------------------------------------------------------------------------


def read_train_lines(path: Path) -> Interactions:
    """Minimal parse of a LightGCN ``user item item ...`` file (the real reader lives elsewhere)."""
    users, items = [], []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) > 1:
                row_items = np.array(fields[1:], dtype=np.int64)
                items.append(row_items)
                users.append(np.full(len(row_items), int(fields[0]), dtype=np.int64))
    return Interactions(np.concatenate(users), np.concatenate(items))


@pytest.mark.integration
def test_gowalla_negatives(shared_data: Path):
    train = read_train_lines(shared_data / "lightgcn-gowalla" / "train.txt.gz")
    assert len(train) == 810_128
    positives = train.to_csr(29_858, 40_981)
    users = np.random.default_rng(0).permutation(train.users)  # training order: users shuffled
    start = time.perf_counter()
    negatives = sample_negatives(positives, users, 1, np.random.default_rng(0))
    elapsed_s = time.perf_counter() - start
    assert negatives.shape == (810_128, 1)
    assert not np.asarray(positives[users, negatives[:, 0]]).any()
    assert elapsed_s < 5.0  # ~0.08 s on one core; a per-user loop would take far longer
    assert len(TrainingBatches(train, 40_981, batch_size=2048, seed=0)) == 396
