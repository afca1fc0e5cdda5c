"""Tests of the checksum-gated, allow-listed unpickler."""

from __future__ import annotations

import hashlib
import os
import pickle

import pytest

from recforge.data.readers import gformer, known_pickle, ml1m_seq
from recforge.data.readers.known_pickle import SPARSE_MATRIX_GLOBALS, load_known_pickle
from recforge.errors import DataFormatError


class _RunsCode:
    """A pickle payload that would create a file when unpickled by a plain pickle.load."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def dump(path, value):
    path.write_bytes(pickle.dumps(value))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_known_plain_pickle_loads(tmp_path):
    sha = dump(tmp_path / "data.pkl", {"train": {0: [1, 2]}})
    assert load_known_pickle(tmp_path / "data.pkl", {sha}) == {"train": {0: [1, 2]}}


def test_unknown_checksum_is_refused_with_advice(tmp_path):
    sha = dump(tmp_path / "data.pkl", [1, 2])
    with pytest.raises(DataFormatError, match=rf"data\.pkl: not a known pickle \(sha256 {sha}\).*runs code\. "
                       r"Convert it"):
        load_known_pickle(tmp_path / "data.pkl", {"0" * 64}, how_to_convert="Convert it.")


def test_class_outside_the_allow_list_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    sha = dump(tmp_path / "evil.pkl", _RunsCode(marker))
    with pytest.raises(DataFormatError, match=r"evil\.pkl: cannot unpickle \(refers to \w+\.mkdir, which is "
                       r"not on the allow-list\)"):
        load_known_pickle(tmp_path / "evil.pkl", {sha}, allowed_globals=SPARSE_MATRIX_GLOBALS)
    assert not marker.exists()


def test_a_manifest_beside_the_data_vouches_for_nothing(tmp_path):
    """Issue 10: whoever controls the data folder must not be able to allow-list their own pickle."""
    directory = tmp_path / "ds"
    directory.mkdir()
    sha = dump(directory / "a.pkl", [1])
    manifest = f"file\tbytes_on_disk\tuncompressed_sha256\nds/a.pkl\t1\t{sha}\n"
    (tmp_path / "MANIFEST.tsv").write_text(manifest)
    (directory / "MANIFEST.tsv").write_text(manifest)
    with pytest.raises(DataFormatError, match=rf"a\.pkl: not a known pickle \(sha256 {sha}\)"):
        load_known_pickle(directory / "a.pkl", set())
    assert not hasattr(known_pickle, "manifest_checksums")


def test_checksums_are_package_constants():
    for known in (gformer.KNOWN_GFORMER_SHA256, ml1m_seq.KNOWN_ML1M_SHA256):
        assert isinstance(known, frozenset)
        assert known
        assert all(len(sha) == 64 and int(sha, 16) >= 0 for sha in known)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"nothing\.pkl: no such file"):
        load_known_pickle(tmp_path / "nothing.pkl", set())


def test_directory_instead_of_a_file(tmp_path):
    (tmp_path / "d.pkl").mkdir()
    with pytest.raises(DataFormatError, match=r"d\.pkl: is a directory, expected a pickle file"):
        load_known_pickle(tmp_path / "d.pkl", set())
