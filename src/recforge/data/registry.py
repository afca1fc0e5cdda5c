"""Named datasets and the one entry point that reads a dataset by name or by path.

``load_dataset("gowalla")`` finds the benchmark under the data root; ``load_dataset("my/ratings.csv")``
picks a reader from the file itself. The registry is an explicit dict from name to spec (what it
is, where it lives, which function reads it), so ``recforge data info`` can list it and an unknown
name is an error that lists the valid ones.

Data root, first found: the ``root`` argument, ``$RECFORGE_DATA``, then ``shared/data`` in the
current directory or any parent (the layout of a recforge checkout beside the shared data).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recforge.data.dataset import Dataset
from recforge.data.io import data_file_exists
from recforge.data.movielens import load_ml100k, read_ml100k_directory
from recforge.data.readers import (
    read_atomic,
    read_counted,
    read_derrd,
    read_gformer,
    read_lightgcn,
    read_ml1m_seq,
    read_sequences,
    read_table,
)
from recforge.data.readers.common import looks_counted, read_integer_lines
from recforge.data.readers.options import checked_options
from recforge.data.readers.tabular import TABLE_SUFFIXES
from recforge.errors import ConfigError, DataFormatError, RecforgeError, UnknownNameError

DATA_ENV = "RECFORGE_DATA"


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: a one-line description, its directory under the data root (None when it
    does not live there), the function reading it, and the keyword options that function takes."""

    description: str
    directory: str | None
    load: Callable[..., Dataset]
    options: tuple[str, ...] = ()


def _ml100k(directory: Path | None, **options: Any) -> Dataset:
    return load_ml100k(**options)


def _gowalla(directory: Path) -> Dataset:
    return read_lightgcn(
        directory / "train.txt", directory / "test.txt",
        item_list=directory / "item_list.txt", user_list=directory / "user_list.txt", name="gowalla",
    )


def _gformer_lastfm(directory: Path) -> Dataset:
    return read_gformer(directory, name="gformer-lastfm")


def _gformer_yelp(directory: Path) -> Dataset:
    return read_gformer(directory, name="gformer-yelp")


def _amazon_beauty(directory: Path) -> Dataset:
    return read_sequences(directory / "Beauty.txt", id_base=1, name="amazon-beauty",
                          item_attributes=directory / "Beauty_item2attributes.json")


def _amazon_toys(directory: Path) -> Dataset:
    return read_sequences(directory / "Toys_and_Games.txt", id_base=1, name="amazon-toys",
                          item_attributes=directory / "Toys_and_Games_item2attributes.json")


def _friend_graph(name: str) -> Callable[..., Dataset]:
    """A friend graph of :data:`recforge.data.social.SOCIAL_DATASETS` as a user-user Dataset
    (imported on use: the social module reads the data root through this one)."""

    def load(directory: Path, **options: Any) -> Dataset:
        from recforge.data.social import SOCIAL_DATASETS, social_dataset

        return social_dataset(SOCIAL_DATASETS[name].load(directory, **options))

    return load


_FRIEND_GRAPHS = {
    "twitch-de": ("MUSAE Twitch DE friendships: 9,498 users, 153,138 friendships, games as features", ()),
    "twitch-engb": ("MUSAE Twitch ENGB friendships: 7,126 users, 35,324 friendships, games as features", ()),
    "twitch-es": ("MUSAE Twitch ES friendships: 4,648 users, 59,382 friendships, games as features", ()),
    "twitch-fr": ("MUSAE Twitch FR friendships: 6,549 users, 112,666 friendships, games as features", ()),
    "twitch-ptbr": ("MUSAE Twitch PTBR friendships: 1,912 users, 31,299 friendships, games as features", ()),
    "twitch-ru": ("MUSAE Twitch RU friendships: 4,385 users, 37,304 friendships, games as features", ()),
    "lastfm-social": (
        "Last.fm friendships: 1,892 users, 12,717 friendships, log1p listening counts over 4,489 artists",
        ("listens", "transform"),
    ),
}


def _ml1m(directory: Path) -> Dataset:
    return read_ml1m_seq(directory, name="ml-1m")


def _citeulike_derrd(directory: Path) -> Dataset:
    return read_derrd(directory, name="citeulike-derrd")


DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        "MovieLens-100K: 943 users, 1,682 movies, 100,000 ratings with timestamps, titles, user "
        "attributes (path, cache, GroupLens or the RecBole wheel)", None, _ml100k, ("path", "cache_dir")),
    "gowalla": DatasetSpec(
        "Gowalla check-ins, LightGCN split: 29,858 users, 40,981 items, train 810,128 / test 217,242",
        "lightgcn-gowalla", _gowalla),
    "gformer-lastfm": DatasetSpec(
        "LastFM, GFormer 70:5:25 split: 1,889 users, 15,376 items, 74,268 interactions",
        "gformer-lastfm", _gformer_lastfm),
    "gformer-yelp": DatasetSpec(
        "Yelp (sparse), GFormer 70:5:25 split: 42,712 users, 26,822 items, 260,510 interactions",
        "gformer-yelp", _gformer_yelp),
    "amazon-beauty": DatasetSpec(
        "Amazon Beauty sequences (S3-Rec, 5-core, time order): 22,363 users, 12,101 items, 198,502 "
        "interactions, item attributes", "s3rec-beauty", _amazon_beauty),
    "amazon-toys": DatasetSpec(
        "Amazon Toys and Games sequences (S3-Rec, 5-core, time order): 19,412 users, 11,924 items, "
        "167,597 interactions, item attributes", "s3rec-toys", _amazon_toys),
    "ml-1m": DatasetSpec(
        "MovieLens-1M sequences (BERT4Rec preprocessing, leave-one-out): 6,040 users, 3,706 items, "
        "1,000,209 interactions, titles", "ml-1m-seq", _ml1m),
    "citeulike-derrd": DatasetSpec(
        "CiteULike, DE-RRD leave-one-out split: 5,219 users, 25,181 items, train 115,142 / valid 5,219 / "
        "test 5,219, no timestamps (the authors evaluate against 499 sampled negatives)",
        "citeulike-derrd", _citeulike_derrd),
    **{
        name: DatasetSpec(
            description, "lastfm-social" if name == "lastfm-social" else "musae-twitch",
            _friend_graph(name), options,
        )
        for name, (description, options) in _FRIEND_GRAPHS.items()
    },
}


@checked_options()
def load_dataset(name_or_path: str | Path, *, root: str | Path | None = None, **options: Any) -> Dataset:
    """Read a registered dataset by name, or any supported file or directory by path.

    Args:
        name_or_path: a key of :data:`DATASETS`, or a path (tried as given, then under the data root).
        root: the data root holding the named datasets (see the module docstring).
        **options: for ``ml-100k``: ``path``, ``cache_dir``. For a path: ``format`` (one of
            :data:`FORMATS`) to override detection, and the chosen reader's keyword arguments
            (e.g. ``user=``, ``item=`` for a table).

    Raises:
        UnknownNameError: neither a registered name nor an existing path.
        ConfigError: an option the dataset or reader does not take, or one of the wrong type.
        RecforgeError: the data root is needed and cannot be found.
    """
    name = str(name_or_path)
    spec = DATASETS.get(name)
    if spec is not None:
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            takes = f"takes only {', '.join(spec.options)}" if spec.options else "takes no options"
            raise ConfigError(f"dataset '{name}' {takes}; got {', '.join(unknown)} "
                              "(format= applies to paths, not to named datasets)")
        if spec.directory is None:
            return spec.load(None, **options)
        directory = resolve_data_root(root) / spec.directory
        if not directory.is_dir():
            raise RecforgeError(f"dataset '{name}': {directory} does not exist (is the data root right?)")
        return spec.load(directory, **options)
    path = _existing_path(Path(name_or_path), root)
    if path is None:
        if "/" in name or Path(name).suffix:  # meant as a path, not as a name
            raise RecforgeError(
                f"{name}: no such file or directory (and not a named dataset: {', '.join(sorted(DATASETS))})"
            )
        raise UnknownNameError("dataset", name, list(DATASETS))
    return read_path(path, **options)


def _existing_path(path: Path, root: str | Path | None) -> Path | None:
    """``path`` itself if it exists, else ``<data root>/path`` if that exists (a relative path)."""
    if path.exists() or data_file_exists(path):
        return path
    if path.is_absolute():
        return None
    try:
        under_root = resolve_data_root(root) / path
    except RecforgeError:
        return None
    return under_root if under_root.exists() or data_file_exists(under_root) else None


def resolve_data_root(root: str | Path | None = None) -> Path:
    """The directory holding the named datasets: ``root``, else ``$RECFORGE_DATA``, else the first
    ``shared/data`` in the current directory or a parent. An explicit root or variable that is
    not a directory is an error (never silently replaced by a search)."""
    if root is not None:
        if not Path(root).is_dir():
            raise RecforgeError(f"data root {root} is not a directory")
        return Path(root)
    from_env = os.environ.get(DATA_ENV)
    if from_env:
        if not Path(from_env).is_dir():
            raise RecforgeError(f"${DATA_ENV}={from_env} is not a directory")
        return Path(from_env)
    cwd = Path.cwd()
    searched = [f"${DATA_ENV} (not set)"]
    for parent in (cwd, *cwd.parents):
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
        searched.append(str(candidate))
    raise RecforgeError(
        "no data root found. Searched:\n  - " + "\n  - ".join(searched) + "\n"
        f"Set {DATA_ENV} to the directory holding the datasets (export {DATA_ENV}=/path/to/data) "
        "or pass root=..."
    )


# --- reading a path ---------------------------------------------------------------------------------


@checked_options()
def _read_atomic_path(path: Path, **options: Any) -> Dataset:
    """An ``.inter`` file (or a directory holding one); ``.item`` / ``.user`` beside it are used."""
    if path.is_dir():
        inters = sorted({p.name.removesuffix(".gz") for p in path.iterdir() if ".inter" in p.suffixes})
        if len(inters) != 1:
            raise RecforgeError(f"{path}: expected one .inter file, found {len(inters)}")
        path = path / inters[0]
    stem = path.with_name(path.name.removesuffix(".gz").removesuffix(".inter"))
    sides: dict[str, Any] = {}
    for option, suffix in (("item_path", ".item"), ("user_path", ".user")):
        side = stem.with_name(stem.name + suffix)
        if option not in options and data_file_exists(side):
            sides[option] = side
    return read_atomic(path, **sides, **options)


@checked_options()
def _read_lightgcn_directory(path: Path, **options: Any) -> Dataset:
    """``train.txt`` (required), ``test.txt``, ``user_list.txt``, ``item_list.txt`` (each optional)."""
    if not path.is_dir():
        return read_lightgcn(path, **options)
    present = {name: path / f"{name}.txt" for name in ("test", "user_list", "item_list")
               if data_file_exists(path / f"{name}.txt")}
    options.setdefault("name", path.name)
    return read_lightgcn(
        path / "train.txt", present.get("test"),
        user_list=present.get("user_list"), item_list=present.get("item_list"), **options,
    )


@checked_options()
def _read_ml100k_path(path: Path) -> Dataset:
    return read_ml100k_directory(path)


FORMATS: dict[str, Callable[..., Dataset]] = {
    "atomic": _read_atomic_path,
    "table": read_table,
    "lightgcn": _read_lightgcn_directory,
    "sequences": read_sequences,
    "counted": read_counted,
    "derrd": read_derrd,
    "gformer": read_gformer,
    "ml-1m-seq": read_ml1m_seq,
    "movielens-100k": _read_ml100k_path,
}


@checked_options()
def read_path(path: str | Path, *, format: str | None = None, **options: Any) -> Dataset:
    """Read a file or directory with the reader ``format`` names, or the one :func:`detect_format` picks.

    Each reader checks the types of its own options (:mod:`recforge.data.readers.options`).
    """
    path = Path(path)
    chosen = format or detect_format(path)
    if chosen not in FORMATS:
        raise UnknownNameError("format", chosen, list(FORMATS))
    reader = FORMATS[chosen]
    try:  # check the options against the reader's signature before reading anything
        inspect.signature(reader).bind(path, **options)
    except TypeError as error:
        raise ConfigError(f"format '{chosen}' ({reader.__name__}): {error}") from error
    return reader(path, **options)


def detect_format(path: Path) -> str:
    """The reader for ``path``, from its suffix (a file) or the files it holds (a directory).

    A ``.txt`` or ``.dat`` file (or one without a suffix) is ambiguous by name; it is taken as
    ``counted`` when every line reads ``count item item ...``
    (:func:`~recforge.data.readers.common.looks_counted`), and otherwise needs ``format=``.
    """
    if path.is_dir():
        names = {p.name.removesuffix(".gz") for p in path.iterdir()}
        if "train.txt" in names:
            return "lightgcn"
        if {"trnMat.pkl", "trnMat.npz"} & names:
            return "gformer"
        if "dataset.pkl" in names:
            return "ml-1m-seq"
        if "train_mat_0" in names:
            return "derrd"
        if any(name.endswith(".inter") for name in names):
            return "atomic"
        if {"u.data", "u.item", "u.user"} <= names:
            return "movielens-100k"
        raise RecforgeError(
            f"{path}: cannot tell the format of this directory (looked for train.txt, trnMat.pkl/.npz, "
            f"dataset.pkl, train_mat_0, *.inter, u.data); pass format= one of {', '.join(FORMATS)}"
        )
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix == ".inter":
        return "atomic"
    if suffix in TABLE_SUFFIXES and suffix != ".txt":
        return "table"
    if suffix in (".txt", ".dat", "") and _is_counted_file(path):
        return "counted"
    raise RecforgeError(
        f"{path}: cannot tell the format from the suffix '{suffix}' (a .txt file may be a LightGCN, a "
        f"sequence, a counted or a tab-separated table file); pass format= one of {', '.join(FORMATS)}"
    )


def _is_counted_file(path: Path) -> bool:
    try:
        lines = read_integer_lines(path, first_field="count", other_field="item_id")
    except DataFormatError:  # not integers at all: some other format
        return False
    return looks_counted(lines)
