"""Tests of the dataset registry: names, the data root, and reading a path by its format."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data import registry
from recforge.data.registry import DATASETS, detect_format, load_dataset, read_path, resolve_data_root
from recforge.errors import ConfigError, DataFormatError, RecforgeError, UnknownNameError


def test_registered_names():
    assert sorted(DATASETS) == ["amazon-beauty", "amazon-toys", "citeulike-derrd", "gformer-lastfm",
                                "gformer-yelp", "gowalla", "lastfm-social", "ml-100k", "ml-1m",
                                "twitch-de", "twitch-engb", "twitch-es", "twitch-fr", "twitch-ptbr",
                                "twitch-ru"]
    assert all(spec.description for spec in DATASETS.values())


def test_unknown_name_lists_the_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'movielens'; choose one of: amazon-beauty, "
                       r"amazon-toys, citeulike-derrd, gformer-lastfm, gformer-yelp, gowalla, "
                       r"lastfm-social, ml-100k, ml-1m, twitch-de"):
        load_dataset("movielens", root=tmp_path)


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("gformer-lastfm", (1_889, 15_376, 74_268)),
        ("amazon-toys", (19_412, 11_924, 167_597)),
        ("citeulike-derrd", (5_219, 25_181, 125_580)),
    ],
)
def test_named_datasets_under_an_explicit_root(shared_data, name, counts):
    dataset = load_dataset(name, root=shared_data)
    assert (dataset.num_users, dataset.num_items, len(dataset.interactions)) == counts
    assert dataset.name == name


def test_amazon_beauty_carries_attributes(shared_data, monkeypatch):
    monkeypatch.setenv(registry.DATA_ENV, str(shared_data))
    dataset = load_dataset("amazon-beauty")
    assert (dataset.num_users, dataset.num_items, len(dataset.interactions)) == (22_363, 12_101, 198_502)
    assert dataset.item_features["attributes"].shape[0] == 12_101


def test_root_from_the_environment(shared_data, monkeypatch):
    monkeypatch.setenv(registry.DATA_ENV, str(shared_data))
    assert resolve_data_root() == shared_data


def test_root_found_in_a_parent_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(registry.DATA_ENV, raising=False)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "checkout" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout" / "sub")
    assert resolve_data_root() == tmp_path / "shared" / "data"


def test_missing_root_names_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.delenv(registry.DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RecforgeError, match=r"no data root found\. Searched:\n  - \$RECFORGE_DATA \(not set\)"
                       rf"\n  - {tmp_path}/shared/data\n(.|\n)*Set RECFORGE_DATA to the directory"):
        load_dataset("gowalla")


def test_explicit_root_and_variable_must_exist(tmp_path, monkeypatch):
    with pytest.raises(RecforgeError, match=r"data root .*nowhere is not a directory"):
        resolve_data_root(tmp_path / "nowhere")
    monkeypatch.setenv(registry.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(RecforgeError, match=r"\$RECFORGE_DATA=.*nowhere is not a directory"):
        resolve_data_root()


def test_named_dataset_rejects_unknown_options(shared_data):
    with pytest.raises(ConfigError, match=r"dataset 'gowalla' takes no options; got format \(format= applies "
                       r"to paths"):
        load_dataset("gowalla", root=shared_data, format="lightgcn")


def test_ml100k_by_name_with_a_path(tmp_path):
    (tmp_path / "ml").mkdir()
    (tmp_path / "ml" / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\n1\t2\t5\n")
    (tmp_path / "ml" / "ml-100k.item").write_text("item_id:token\tmovie_title:token_seq\n1\tA\n2\tB\n")
    (tmp_path / "ml" / "ml-100k.user").write_text("user_id:token\tage:token\n1\t30\n")
    dataset = load_dataset("ml-100k", path=tmp_path / "ml")
    assert dataset.item_titles.tolist() == ["A", "B"]
    assert detect_format(tmp_path / "ml") == "atomic"


def test_path_relative_to_the_data_root(shared_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dataset = load_dataset("s3rec-lastfm/LastFM.txt", root=shared_data, format="sequences")
    assert (dataset.num_users, dataset.num_items, len(dataset.interactions)) == (1_090, 3_646, 52_551)


def test_table_file_detected_with_reader_options(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("who,what\na,x\nb,x\n")
    dataset = load_dataset(path, user="who", item="what")
    assert dataset.user_ids.tolist() == ["a", "b"]
    with pytest.raises(ConfigError, match=r"format 'table' \(read_table\): got an unexpected keyword "
                       r"argument 'users'"):
        load_dataset(path, users="who")


def test_inter_file_picks_up_its_item_file(tmp_path):
    (tmp_path / "shop.inter").write_text("user_id:token\titem_id:token\nu\tb\n")
    item = b"item_id:token\ttitle:token_seq\na\tApple\nb\tBean\n"
    (tmp_path / "shop.item.gz").write_bytes(gzip.compress(item))
    dataset = load_dataset(tmp_path / "shop.inter")
    assert dataset.item_titles.tolist() == ["Apple", "Bean"]


def test_lightgcn_directory(tmp_path):
    (tmp_path / "train.txt.gz").write_bytes(gzip.compress(b"0 1\n1 0 1\n"))
    (tmp_path / "test.txt").write_text("0 0\n")
    dataset = load_dataset(tmp_path)
    assert np.bincount(dataset.fold, minlength=3).tolist() == [3, 0, 1]
    assert dataset.name == tmp_path.name


def test_gformer_directory(tmp_path):
    for stem in ("trnMat", "valMat", "tstMat"):
        sp.save_npz(tmp_path / f"{stem}.npz", sp.coo_matrix(np.eye(2)))
    assert detect_format(tmp_path) == "gformer"
    assert len(read_path(tmp_path).interactions) == 6


def test_txt_file_needs_a_format(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("1 1 2\n")
    with pytest.raises(RecforgeError, match=r"cannot tell the format from the suffix '\.txt'.*pass "
                       r"format= one of atomic, table, lightgcn, sequences"):
        load_dataset(path)
    assert load_dataset(path, format="sequences").num_items == 2


def test_unknown_format(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("1 1 2\n")
    with pytest.raises(UnknownNameError,
                       match=r"unknown format 'csv'; choose one of: atomic, counted, derrd, gformer"):
        load_dataset(path, format="csv")


def test_unrecognised_directory(tmp_path):
    with pytest.raises(RecforgeError, match=r"cannot tell the format of this directory"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("name", ["users.txt", "users.dat", "users.txt.gz"])
def test_counted_file_detected_by_content(tmp_path, name):
    path = tmp_path / name
    content = b"2 5 6\n0\n1 7\n"
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    assert detect_format(path) == "counted"
    assert load_dataset(path).num_users == 3


def test_lightgcn_directory_of_counted_lines_is_refused(tmp_path):
    (tmp_path / "train.txt").write_text("2 5 6\n1 7\n")
    with pytest.raises(DataFormatError, match=r"train\.txt: every line's first field .*format 'counted'"):
        load_dataset(tmp_path)
    assert load_dataset(tmp_path, assume_user_ids=True).num_users == 3


def test_options_of_the_wrong_type(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1 1 2\n")
    with pytest.raises(ConfigError, match=r"read_path: option 'format' must be a string or None, got 3"):
        load_dataset(path, format=3)
    with pytest.raises(ConfigError,
                       match=r"read_sequences: option 'id_base' must be the int 0 or 1, got 'abc'"):
        load_dataset(path, format="sequences", id_base="abc")
    with pytest.raises(ConfigError,
                       match=r"load_dataset: option 'root' must be a path or None, got 7 \(int\)"):
        load_dataset("gowalla", root=7)


def test_a_missing_path_is_called_missing_not_an_unknown_name(tmp_path):
    from recforge.data.registry import load_dataset
    from recforge.errors import RecforgeError, UnknownNameError

    missing = r"ratings\.csv: no such file or directory \(and not a named dataset"
    with pytest.raises(RecforgeError, match=missing):
        load_dataset(str(tmp_path / "ratings.csv"))
    with pytest.raises(UnknownNameError, match="unknown dataset 'gowala'"):
        load_dataset("gowala")
