"""Tests of the ML-1M (BERT4Rec preprocessing) reader."""

from __future__ import annotations

import gzip
import hashlib
import pickle

import numpy as np
import pytest

from recforge.data.dataset import Fold
from recforge.data.readers import ml1m_seq
from recforge.data.readers.ml1m_seq import read_ml1m_seq
from recforge.errors import DataFormatError


def test_real_counts_and_titles(shared_data):
    dataset = read_ml1m_seq(shared_data / "ml-1m-seq")
    assert (dataset.num_users, dataset.num_items, len(dataset.interactions)) == (6_040, 3_706, 1_000_209)
    assert np.bincount(dataset.fold, minlength=3).tolist() == [988_129, 6_040, 6_040]
    lengths = np.bincount(dataset.interactions.users)
    assert (lengths.min(), lengths.max()) == (20, 2_314)
    # each user's sequence ends with the valid item then the test item
    last = np.cumsum(lengths) - 1
    assert (dataset.fold[last] == Fold.TEST).all()
    assert (dataset.fold[last - 1] == Fold.VALID).all()
    assert dataset.interactions.timestamps[last].tolist() == (lengths - 1).tolist()
    titles = dict(zip(dataset.item_ids.tolist(), dataset.item_titles.tolist(), strict=True))
    assert titles["1"] == "Toy Story (1995)"
    assert titles["73"] == "Misérables, Les (1995)"  # ISO-8859-1 decoded
    assert dataset.item_features["genres"].shape[0] == 3_706
    assert set(dataset.user_features) == {"gender", "age", "occupation", "zip_code"}


def make_directory(tmp_path, payload, monkeypatch, movies=None):
    """A dataset.pkl whose checksum the reader is made to know (as if it were a published file)."""
    directory = tmp_path / "ml-1m-seq"
    directory.mkdir()
    (directory / "dataset.pkl").write_bytes(pickle.dumps(payload))
    sha = hashlib.sha256((directory / "dataset.pkl").read_bytes()).hexdigest()
    monkeypatch.setattr(ml1m_seq, "KNOWN_ML1M_SHA256", frozenset({sha}))
    if movies is not None:
        (directory / "movies.dat.gz").write_bytes(gzip.compress(movies.encode("iso-8859-1")))
    return directory


def test_small_known_payload(tmp_path, monkeypatch):
    payload = {"train": {0: [1, 0], 1: [0]}, "val": {0: [2], 1: [1]}, "test": {0: [0], 1: [2]},
               "umap": {10: 0, 20: 1}, "smap": {5: 0, 7: 1, 9: 2}}
    movies = "5::Café (1990)::Drama\n9::Nine::Comedy|War\n"
    directory = make_directory(tmp_path, payload, monkeypatch, movies=movies)
    dataset = read_ml1m_seq(directory, name="tiny")
    assert dataset.user_ids.tolist() == ["10", "20"]
    assert dataset.item_ids.tolist() == ["5", "7", "9"]
    assert dataset.interactions.items.tolist() == [1, 0, 2, 0, 0, 1, 2]
    assert dataset.fold.tolist() == [0, 0, 1, 2, 0, 1, 2]
    assert dataset.interactions.timestamps.tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert dataset.item_titles.tolist() == ["Café (1990)", "", "Nine"]
    assert dataset.item_features["genres"].tolist() == [["Drama", ""], ["", ""], ["Comedy", "War"]]
    assert "movies.dat.gz: 1 items have no title" in dataset.notes
    assert "1 interaction rows repeat an earlier (user, item) pair; all are kept " \
           "(0 within one fold, 1 across folds)" in dataset.notes


def test_unknown_pickle_is_refused(tmp_path):
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    (directory / "dataset.pkl").write_bytes(pickle.dumps({"train": {}}))
    with pytest.raises(DataFormatError, match=r"dataset\.pkl: not a known pickle .*read_sequences"):
        read_ml1m_seq(directory)


def test_wrong_structure(tmp_path, monkeypatch):
    directory = make_directory(tmp_path, {"train": {}}, monkeypatch)
    with pytest.raises(DataFormatError, match=r"dataset\.pkl: expected a dict with keys train, "
                       r"val, test, umap, smap"):
        read_ml1m_seq(directory)


def test_item_outside_smap(tmp_path, monkeypatch):
    payload = {"train": {0: [3]}, "val": {}, "test": {}, "umap": {1: 0}, "smap": {1: 0}}
    with pytest.raises(DataFormatError, match=r"item ids must lie in 0\.\.0 \(the smap range\)"):
        read_ml1m_seq(make_directory(tmp_path, payload, monkeypatch))


def test_malformed_movies_line(tmp_path, monkeypatch):
    payload = {"train": {0: [0]}, "val": {}, "test": {}, "umap": {1: 0}, "smap": {1: 0}}
    directory = make_directory(tmp_path, payload, monkeypatch, movies="1::Toy Story::Animation\n2::Broken\n")
    with pytest.raises(DataFormatError, match=r"movies\.dat\.gz:2: expected 3 '::'-separated fields, got 2"):
        read_ml1m_seq(directory)


def test_movies_and_users_outside_the_dataset_are_noted(tmp_path, monkeypatch):
    payload = {"train": {0: [0]}, "val": {}, "test": {}, "umap": {1: 0}, "smap": {1: 0}}
    directory = make_directory(tmp_path, payload, monkeypatch, movies="1::One::Drama\n2::Two::War\n")
    (directory / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    notes = read_ml1m_seq(directory).notes
    assert "movies.dat.gz: 1 movies are not in the dataset (smap); not loaded" in notes
    assert "users.dat: 1 users are not in the dataset (umap); not loaded" in notes


def test_not_a_directory(tmp_path):
    with pytest.raises(DataFormatError, match=r"nowhere: not a directory"):
        read_ml1m_seq(tmp_path / "nowhere")
