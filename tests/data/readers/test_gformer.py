"""Tests of the GFormer reader: known pickles, .npz without pickle, folds."""

from __future__ import annotations

import pickle
import shutil
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data.dataset import Fold
from recforge.data.readers.gformer import FOLD_FILES, read_gformer
from recforge.errors import DataFormatError


@pytest.mark.parametrize(
    ("directory", "shape", "folds"),
    [
        ("gformer-lastfm", (1_889, 15_376), [51_987, 3_714, 18_567]),
        ("gformer-yelp", (42_712, 26_822), [182_357, 13_025, 65_128]),
    ],
)
def test_real_splits_match_the_readme(shared_data, directory, shape, folds):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old-scipy DeprecationWarning must be silenced locally
        dataset = read_gformer(shared_data / directory)
    assert (dataset.num_users, dataset.num_items) == shape
    assert np.bincount(dataset.fold, minlength=3).tolist() == folds
    assert dataset.interactions.ratings is None  # all values are 1
    assert dataset.notes == []  # no duplicates, folds do not overlap


def write_npz(directory, matrices):
    directory.mkdir(exist_ok=True)
    for fold, matrix in matrices.items():
        sp.save_npz(directory / f"{FOLD_FILES[fold]}.npz", matrix)


def test_npz_gives_the_same_dataset_as_the_known_pickles(shared_data, tmp_path):
    from_pickles = read_gformer(shared_data / "gformer-lastfm")
    converted = {fold: sp.coo_matrix((np.ones((from_pickles.fold == fold).sum()),
                                      (from_pickles.interactions.users[from_pickles.fold == fold],
                                       from_pickles.interactions.items[from_pickles.fold == fold])),
                                     shape=(1_889, 15_376)) for fold in FOLD_FILES}
    write_npz(tmp_path / "lastfm", converted)
    from_npz = read_gformer(tmp_path / "lastfm")
    assert np.array_equal(from_npz.fold, from_pickles.fold)
    assert np.array_equal(from_npz.interactions.users, from_pickles.interactions.users)
    assert np.array_equal(from_npz.interactions.items, from_pickles.interactions.items)


def test_small_npz_split(tmp_path):
    matrices = {
        Fold.TRAIN: sp.coo_matrix(([1.0, 1.0], ([0, 1], [1, 2])), shape=(2, 3)),
        Fold.VALID: sp.coo_matrix(([1.0], ([0], [0])), shape=(2, 3)),
        Fold.TEST: sp.coo_matrix(([1.0], ([1], [0])), shape=(2, 3)),
    }
    write_npz(tmp_path / "small", matrices)
    dataset = read_gformer(tmp_path / "small")
    assert dataset.name == "small"
    assert dataset.interactions.users.tolist() == [0, 1, 0, 1]
    assert dataset.interactions.items.tolist() == [1, 2, 0, 0]
    assert dataset.fold.tolist() == [0, 0, 1, 2]


def test_values_other_than_one_become_ratings(tmp_path):
    ones = sp.coo_matrix(([1.0], ([0], [0])), shape=(1, 2))
    write_npz(tmp_path / "rated", {Fold.TRAIN: sp.coo_matrix(([4.0], ([0], [1])), shape=(1, 2)),
                                   Fold.VALID: ones, Fold.TEST: ones})
    dataset = read_gformer(tmp_path / "rated")
    assert dataset.interactions.ratings.tolist() == [4.0, 1.0, 1.0]
    assert "matrix values are not all 1; kept as ratings" in dataset.notes


def test_unknown_pickle_is_refused_with_conversion_advice(tmp_path):
    directory = tmp_path / "mine"
    directory.mkdir()
    for stem in FOLD_FILES.values():
        (directory / f"{stem}.pkl").write_bytes(pickle.dumps(sp.coo_matrix(np.eye(2))))
    with pytest.raises(DataFormatError, match=r"trnMat\.pkl: not a known pickle .*scipy\.sparse\.save_npz\("
                       r"'trnMat\.npz'"):
        read_gformer(directory)


def test_shapes_must_agree(tmp_path):
    write_npz(tmp_path / "bad", {Fold.TRAIN: sp.coo_matrix(np.eye(2)), Fold.VALID: sp.coo_matrix(np.eye(2)),
                                 Fold.TEST: sp.coo_matrix(np.eye(3))})
    with pytest.raises(DataFormatError, match=r"bad: the fold matrices disagree on the user×item shape: "
                       r"trnMat 2x2, valMat 2x2, tstMat 3x3"):
        read_gformer(tmp_path / "bad")


def test_missing_fold(shared_data, tmp_path):
    directory = tmp_path / "gformer-lastfm"
    directory.mkdir()
    shutil.copy(shared_data / "gformer-lastfm" / "trnMat.pkl", directory)
    with pytest.raises(DataFormatError, match=r"gformer-lastfm: missing valMat\.npz or valMat\.pkl"):
        read_gformer(directory)


def test_shape_far_beyond_the_entries_is_refused(tmp_path):
    """Issue 10, defect 3 for matrices: a 2**40-row .npz was a MemoryError."""
    matrix = sp.coo_matrix(([1.0], ([0], [1])), shape=(2**40, 2))
    write_npz(tmp_path / "d", dict.fromkeys(FOLD_FILES, matrix))
    with pytest.raises(DataFormatError,
                       match=r"trnMat\.npz: field 'users': the matrix has 1099511627776 rows: "
                       r"the file's ids are used as dense user indices"):
        read_gformer(tmp_path / "d")


def test_not_a_directory(tmp_path):
    with pytest.raises(DataFormatError, match=r"nowhere: not a directory: a GFormer dataset is a directory"):
        read_gformer(tmp_path / "nowhere")
