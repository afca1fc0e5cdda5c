"""Tests of the DE-RRD CiteULike reader: the published split, known pickles only, structure checks."""

from __future__ import annotations

import hashlib
import pickle
import shutil

import numpy as np
import pytest

from recforge.data.dataset import Fold
from recforge.data.readers import derrd
from recforge.data.readers.derrd import COUNTS_FILE, FOLD_FILES, KNOWN_DERRD_SHA256, read_derrd
from recforge.data.readers.known_pickle import load_known_pickle
from recforge.data.registry import detect_format, load_dataset
from recforge.data.splitting import given_split
from recforge.errors import DataFormatError


def test_real_split_matches_the_readme(shared_data):
    dataset = read_derrd(shared_data / "citeulike-derrd")
    assert (dataset.num_users, dataset.num_items) == (5_219, 25_181)
    assert np.bincount(dataset.fold, minlength=3).tolist() == [115_142, 5_219, 5_219]
    assert not dataset.has_timestamps
    assert dataset.interactions.ratings is None
    assert dataset.user_ids[[0, -1]].tolist() == ["0", "5218"]  # the files' ids, unchanged
    assert dataset.item_ids[[0, -1]].tolist() == ["0", "25180"]
    inter = dataset.interactions
    train = dataset.fold == Fold.TRAIN
    assert np.bincount(inter.users[train]).min() == 3  # at least 3 training items per user
    for fold in (Fold.VALID, Fold.TEST):  # one held-out item per user, never a training item
        rows = dataset.fold == fold
        assert np.array_equal(np.sort(inter.users[rows]), np.arange(5_219))
    assert [note[:13] for note in dataset.notes] == ["no timestamps"]  # and no duplicate note


def test_given_split_reproduces_the_authors_split(shared_data):
    directory = shared_data / "citeulike-derrd"
    split = given_split(load_dataset("citeulike-derrd", root=shared_data))
    assert split.protocol == "given train/valid/test"
    assert (split.num_users, split.num_items) == (5_219, 25_181)
    assert (len(split.train), len(split.valid), len(split.test)) == (115_142, 5_219, 5_219)
    # the same (user, item) pairs as the pickles, read here without the reader
    for fold, file in FOLD_FILES.items():
        payload = load_known_pickle(directory / file, KNOWN_DERRD_SHA256)
        if fold == Fold.TRAIN:
            expected = {(user, item) for user, row in payload.items() for item in row}
        else:
            expected = set(payload.items())
        part = split.fold(("train", "valid", "test")[fold])
        assert set(zip(part.users.tolist(), part.items.tolist(), strict=True)) == expected
    assert not split.csr("train").multiply(split.csr("valid") + split.csr("test")).nnz
    assert not split.csr("valid").multiply(split.csr("test")).nnz  # valid != test


def test_the_directory_is_detected(shared_data):
    assert detect_format(shared_data / "citeulike-derrd") == "derrd"


def test_checksums_are_those_of_the_shared_files(shared_data):
    directory = shared_data / "citeulike-derrd"
    digests = {hashlib.sha256((directory / name).read_bytes()).hexdigest()
               for name in (COUNTS_FILE, *FOLD_FILES.values())}
    assert digests == KNOWN_DERRD_SHA256


def test_an_altered_file_is_refused(shared_data, tmp_path):
    directory = tmp_path / "citeulike-derrd"
    shutil.copytree(shared_data / "citeulike-derrd", directory)
    test_path = directory / FOLD_FILES[Fold.TEST]
    test_path.chmod(0o644)
    held_out = load_known_pickle(test_path, KNOWN_DERRD_SHA256)
    held_out[0] = held_out[1]  # one held-out item changed: same structure, other bytes
    test_path.write_bytes(pickle.dumps(held_out, protocol=4))
    with pytest.raises(DataFormatError, match=r"test_sample_0: not a known pickle \(sha256 [0-9a-f]{64}\); "
                       r"recforge unpickles only files whose checksum it knows.*format 'gformer'"):
        read_derrd(directory)


def test_an_unknown_pickle_runs_no_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    directory = tmp_path / "d"
    directory.mkdir()
    (directory / COUNTS_FILE).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataFormatError, match=r"counts: not a known pickle"):
        read_derrd(directory)


def write_known(tmp_path, monkeypatch, counts, train, valid, test):
    """Pickles whose checksums the reader is made to know (as if they were published files)."""
    directory = tmp_path / "derrd"
    directory.mkdir()
    digests = set()
    for name, payload in ((COUNTS_FILE, counts), (FOLD_FILES[Fold.TRAIN], train),
                          (FOLD_FILES[Fold.VALID], valid), (FOLD_FILES[Fold.TEST], test)):
        data = pickle.dumps(payload)
        (directory / name).write_bytes(data)
        digests.add(hashlib.sha256(data).hexdigest())
    monkeypatch.setattr(derrd, "KNOWN_DERRD_SHA256", frozenset(digests))
    return directory


def test_small_known_split(tmp_path, monkeypatch):
    directory = write_known(tmp_path, monkeypatch, (3, 5), {0: {2: 1, 0: 1}, 1: {1: 1}}, {0: 3, 1: 0},
                            {0: 1, 1: 2})
    dataset = read_derrd(directory, name="tiny")
    assert dataset.name == "tiny"
    assert (dataset.num_users, dataset.num_items) == (2, 4)  # the ids used, not counts (3, 5)
    assert dataset.interactions.users.tolist() == [0, 0, 1, 0, 1, 0, 1]
    assert dataset.interactions.items.tolist() == [2, 0, 1, 3, 0, 1, 2]
    assert dataset.fold.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert dataset.user_ids.tolist() == ["0", "1"]


def test_duplicates_across_folds_are_noted(tmp_path, monkeypatch):
    directory = write_known(tmp_path, monkeypatch, (1, 3), {0: {0: 1}}, {0: 0}, {0: 1})
    assert "1 interaction rows repeat an earlier (user, item) pair; all are kept (0 within one fold, " \
           "1 across folds)" in read_derrd(directory).notes


@pytest.mark.parametrize(
    ("counts", "train", "valid", "match"),
    [
        ([1, 2], {0: {0: 1}}, {0: 1}, r"counts: expected a \(num_users, num_items\) tuple of ints, "
         r"got \[1, 2\]"),
        ((1, 1), {0: {0: 1}}, {0: 1}, r"counts: field 'items': says 1 items, but the folds use item id 1"),
        ((1, 2), {0: [0]}, {0: 1}, r"train_mat_0: expected a dict \{user: \{item: 1, \.\.\.\}\}"),
        ((1, 2), {0: {0: 2}}, {0: 1}, r"train_mat_0: every value must be 1 \(an interaction\), got \[2\]"),
        ((1, 2), {0: {"a": 1}}, {0: 1}, r"train_mat_0: field 'item': ids must be ints, got 'a' \(str\)"),
        ((1, 2), {0: {0: 1}}, {0: 1.0}, r"valid_sample_0: field 'item': ids must be ints, "
         r"got 1\.0 \(float\)"),
        ((1, 2), {0: {0: 1}}, {-1: 1}, r"valid_sample_0: field 'user': ids must be >= 0, got -1"),
        ((1, 2), {0: {0: 1}}, [1], r"valid_sample_0: expected a dict \{user: item\}"),
    ],
)
def test_structure_errors_name_the_file_and_field(tmp_path, monkeypatch, counts, train, valid, match):
    directory = write_known(tmp_path, monkeypatch, counts, train, valid, {0: 1})
    with pytest.raises(DataFormatError, match=match):
        read_derrd(directory)


def test_missing_file_and_not_a_directory(tmp_path, monkeypatch):
    directory = write_known(tmp_path, monkeypatch, (1, 2), {0: {0: 1}}, {0: 1}, {0: 1})
    (directory / FOLD_FILES[Fold.VALID]).unlink()
    with pytest.raises(DataFormatError, match=r"valid_sample_0: no such file"):
        read_derrd(directory)
    with pytest.raises(DataFormatError, match=r"nowhere: not a directory: a DE-RRD dataset is a directory "
                       r"holding counts, train_mat_0, valid_sample_0, test_sample_0"):
        read_derrd(tmp_path / "nowhere")
