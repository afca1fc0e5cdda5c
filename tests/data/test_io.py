"""Tests of recforge.data.io: transparent gzip, the x.txt → x.txt.gz fallback, encodings."""

from __future__ import annotations

import gzip

import pytest

from recforge.data.io import (
    MissingDataFileError,
    data_file_exists,
    open_text,
    read_bytes,
    read_text,
    resolve_data_file,
)
from recforge.errors import DataFormatError, RecforgeError


def test_resolve_finds_the_plain_file(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("0 1\n")
    assert resolve_data_file(path) == path


def test_resolve_falls_back_to_gz(tmp_path):
    compressed = tmp_path / "train.txt.gz"
    compressed.write_bytes(gzip.compress(b"0 1\n"))
    assert resolve_data_file(tmp_path / "train.txt") == compressed
    assert data_file_exists(tmp_path / "train.txt")


def test_resolve_accepts_gz_name_of_a_decompressed_file(tmp_path):
    plain = tmp_path / "train.txt"
    plain.write_text("0 1\n")
    assert resolve_data_file(tmp_path / "train.txt.gz") == plain


def test_missing_file_names_every_candidate(tmp_path):
    with pytest.raises(MissingDataFileError, match=r"train\.txt: no such file \(looked for .*train\.txt, "
                       r".*train\.txt\.gz\)") as caught:
        resolve_data_file(tmp_path / "train.txt")
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value, RecforgeError)
    assert not data_file_exists(tmp_path / "train.txt")


def test_gz_and_plain_read_the_same(tmp_path):
    (tmp_path / "a.txt").write_text("héllo\nworld\n", encoding="utf-8")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress("héllo\nworld\n".encode()))
    assert read_text(tmp_path / "a.txt") == read_text(tmp_path / "b.txt") == "héllo\nworld\n"
    assert read_bytes(tmp_path / "b.txt.gz") == "héllo\nworld\n".encode()
    with open_text(tmp_path / "b.txt") as handle:
        assert handle.readline() == "héllo\n"


def test_gzip_is_detected_by_content_not_suffix(tmp_path):
    path = tmp_path / "movies.dat"  # compressed, but named without .gz
    path.write_bytes(gzip.compress("Café".encode("iso-8859-1")))
    assert read_text(path, encoding="iso-8859-1") == "Café"


def test_latin1_file_with_encoding(tmp_path):
    path = tmp_path / "movies.dat.gz"
    path.write_bytes(gzip.compress("1::Misérables, Les (1995)::Drama\n".encode("iso-8859-1")))
    with open_text(path, encoding="iso-8859-1") as handle:
        assert handle.read().split("::")[1] == "Misérables, Les (1995)"


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "movies.dat"
    path.write_bytes("1::Toy Story\n2::Café\n".encode("iso-8859-1"))
    with pytest.raises(DataFormatError, match=r"movies\.dat:2: not valid utf-8 text .*pass encoding="):
        read_text(path)


def test_crlf_is_normalised(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"0 1\r\n1 2\r\n")
    assert read_text(path) == "0 1\n1 2\n"


def test_corrupt_gzip_is_a_format_error(tmp_path):
    path = tmp_path / "train.txt.gz"
    path.write_bytes(gzip.compress(b"0 1 2 3\n" * 1000)[:50])
    with pytest.raises(DataFormatError, match=r"train\.txt\.gz: corrupt or truncated gzip file"):
        read_bytes(path)


def test_a_directory_is_not_a_missing_file(tmp_path):
    (tmp_path / "train.txt").mkdir()
    with pytest.raises(DataFormatError, match=r"train\.txt: is a directory, expected a file"):
        resolve_data_file(tmp_path / "train.txt")


def test_nul_byte_is_refused_at_its_line(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"line one\nline\x00two\n")
    with pytest.raises(DataFormatError, match=r"a\.txt:2: a NUL byte: this is binary data"):
        read_text(path)


def test_utf8_bom_is_dropped(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfuser_id\n")
    assert read_text(path) == "user_id\n"
