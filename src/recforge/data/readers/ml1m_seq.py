"""MovieLens-1M as preprocessed for BERT4Rec: ``dataset.pkl`` plus the original ``movies.dat``.

The BERT4Rec-VAE-Pytorch preprocessing (Sun et al., CIKM 2019, re-implemented by jaywonchung) keeps
every rating of users with at least 5, orders each user's items by time, and holds out the last
item for test and the one before for validation. ``dataset.pkl`` is a plain dict::

    {"train": {u: [i, ...]}, "val": {u: [i]}, "test": {u: [i]}, "umap": {UserID: u}, "smap": {MovieID: i}}

with 0-based ``u`` and ``i``. Only the published file (checksum below) is unpickled, and it may
refer to no class at all. Titles and genres come from ``movies.dat`` (ISO-8859-1,
``MovieID::Title::Genres``) and user attributes from ``users.dat``, both through ``smap``/``umap``.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np

from recforge.data.dataset import Dataset, Fold, Interactions
from recforge.data.io import data_file_exists, read_text, resolve_data_file
from recforge.data.readers.common import duplicate_note, padded_strings
from recforge.data.readers.known_pickle import load_known_pickle
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError

# sha256 of deipss/BERT4Rec-VAE-Pytorch@4c1aaec Data/preprocessed/ml-1m_min_rating0-min_uc5-min_sc0-
# splitleave_one_out/dataset.pkl, computed once from the published file; the only pickle read here.
KNOWN_ML1M_SHA256: frozenset[str] = frozenset({
    "5be90868607453a4c81363462aab8fdeace6a8af33a63084b5ed7302640dddd0",
})
MOVIELENS_ENCODING = "iso-8859-1"
_KEYS = ("train", "val", "test", "umap", "smap")
_USER_COLUMNS = ("gender", "age", "occupation", "zip_code")
_HOW_TO_CONVERT = (
    "If you trust the file, write its sequences as text (one 'user item item ...' line per user, "
    "in time order) and read them with read_sequences(..., id_base=0)."
)


@checked_options()
def read_ml1m_seq(directory: str | Path, *, name: str = "ml-1m") -> Dataset:
    """Read ``dataset.pkl`` (and ``movies.dat[.gz]`` / ``users.dat[.gz]`` if present) from ``directory``.

    Each user's interactions are train, then validation, then test items, in that order;
    ``fold`` marks which is which and ``timestamps`` are positions (int64) in the whole sequence.
    Raw ids are the original ML-1M UserID / MovieID. ``item_titles`` come from ``movies.dat``;
    ``item_features["genres"]`` is a 2-D str array (``""``-padded) of each movie's genres;
    ``user_features`` holds ``gender``, ``age``, ``occupation`` and ``zip_code`` as the file's strings.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, "not a directory: expected the directory holding dataset.pkl "
                              "(and movies.dat, users.dat)")
    pickle_path = directory / "dataset.pkl"
    payload = load_known_pickle(pickle_path, KNOWN_ML1M_SHA256, how_to_convert=_HOW_TO_CONVERT)
    if not isinstance(payload, dict) or not all(key in payload for key in _KEYS):
        raise DataFormatError(pickle_path, f"expected a dict with keys {', '.join(_KEYS)}")
    user_raw = _inverse_map(pickle_path, payload["umap"], "umap")
    item_raw = _inverse_map(pickle_path, payload["smap"], "smap")
    num_users, num_items = len(user_raw), len(item_raw)

    folds = [(Fold.TRAIN, payload["train"]), (Fold.VALID, payload["val"]), (Fold.TEST, payload["test"])]
    for fold, sequences in folds:
        unknown = set(sequences) - set(range(num_users))
        if unknown:
            raise DataFormatError(pickle_path, f"{len(unknown)} users (e.g. {min(unknown)}) are not in umap",
                                  field=fold.name.lower())
    # lists[u][f] is user u's item list in fold f; one flat pass builds every column.
    lists = [[sequences.get(user, ()) for _, sequences in folds] for user in range(num_users)]
    lengths = np.array([[len(part) for part in parts] for parts in lists], dtype=np.int64)
    lengths = lengths.reshape(num_users, 3)
    total = int(lengths.sum())
    try:
        items = np.fromiter(chain.from_iterable(chain.from_iterable(lists)), dtype=np.int64, count=total)
    except (TypeError, ValueError) as error:
        raise DataFormatError(pickle_path, f"item ids must be integers ({error})") from error
    if total and (items.min() < 0 or items.max() >= num_items):
        raise DataFormatError(pickle_path, f"item ids must lie in 0..{num_items - 1} (the smap range)")
    per_user = lengths.sum(axis=1)
    users = np.repeat(np.arange(num_users), per_user)
    fold_codes = np.array([fold for fold, _ in folds], dtype=np.int8)
    fold_column = np.repeat(np.tile(fold_codes, num_users), lengths.ravel())
    positions = np.arange(total) - np.repeat(np.cumsum(per_user) - per_user, per_user)

    notes = ["timestamps are positions in each user's sequence (train, then valid, then test)"]
    duplicates = duplicate_note(users, items, fold_column)
    if duplicates:
        notes.append(duplicates)
    titles, genres = _read_movies(directory, item_raw, notes)
    user_features = _read_users(directory, user_raw, notes)
    return Dataset(
        name=name,
        interactions=Interactions(users=users, items=items, timestamps=positions),
        user_ids=user_raw,
        item_ids=item_raw,
        fold=fold_column,
        item_titles=titles,
        item_features={} if genres is None else {"genres": genres},
        user_features=user_features,
        notes=notes,
    )


def _inverse_map(path: Path, mapping: object, key: str) -> np.ndarray:
    """``raw[dense] = str(original id)`` from an ``{original: dense}`` dict whose values are 0..n-1."""
    if not isinstance(mapping, dict) or not mapping:
        raise DataFormatError(path, "expected a non-empty dict {original id: dense id}", field=key)
    dense = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
    if not np.array_equal(np.sort(dense), np.arange(len(dense))):
        raise DataFormatError(path, f"dense ids must be 0..{len(dense) - 1}, each once", field=key)
    raw = np.empty(len(dense), dtype=object)
    raw[dense] = [str(original) for original in mapping]
    return raw.astype(str)


def _read_colon_file(path: Path, num_fields: int) -> list[list[str]]:
    """Rows of a MovieLens ``a::b::c`` file; a row with another field count is an error."""
    rows = []
    for number, line in enumerate(read_text(path, encoding=MOVIELENS_ENCODING).split("\n"), start=1):
        if not line:
            continue
        fields = line.split("::")
        if len(fields) != num_fields:
            raise DataFormatError(path, f"expected {num_fields} '::'-separated fields, got {len(fields)}",
                                  line=number)
        rows.append(fields)
    return rows


def _read_movies(directory: Path, item_raw: np.ndarray, notes: list[str]) -> tuple[np.ndarray | None,
                                                                                  np.ndarray | None]:
    movies = directory / "movies.dat"
    if not data_file_exists(movies):
        notes.append("no movies.dat: items have no titles")
        return None, None
    path = resolve_data_file(movies)
    dense_of = {raw: dense for dense, raw in enumerate(item_raw.tolist())}
    titles = np.full(len(item_raw), "", dtype=object)
    genre_lists: list[list[str]] = [[] for _ in item_raw]
    unused = 0
    for movie_id, title, genres in _read_colon_file(path, 3):
        dense = dense_of.get(movie_id)
        if dense is not None:
            titles[dense] = title
            genre_lists[dense] = genres.split("|")
        else:
            unused += 1
    if unused:
        notes.append(f"{path.name}: {unused} movies are not in the dataset (smap); not loaded")
    untitled = int(np.count_nonzero(titles == ""))
    if untitled:
        notes.append(f"{path.name}: {untitled} items have no title")
    return titles.astype(str), padded_strings(genre_lists)


def _read_users(directory: Path, user_raw: np.ndarray, notes: list[str]) -> dict[str, np.ndarray]:
    users_file = directory / "users.dat"
    if not data_file_exists(users_file):
        return {}
    path = resolve_data_file(users_file)
    dense_of = {raw: dense for dense, raw in enumerate(user_raw.tolist())}
    columns = {column: np.full(len(user_raw), "", dtype=object) for column in _USER_COLUMNS}
    unused = 0
    for user_id, *values in _read_colon_file(path, 1 + len(_USER_COLUMNS)):
        dense = dense_of.get(user_id)
        if dense is not None:
            for column, value in zip(_USER_COLUMNS, values, strict=True):
                columns[column][dense] = value
        else:
            unused += 1
    if unused:
        notes.append(f"{path.name}: {unused} users are not in the dataset (umap); not loaded")
    missing = int(np.count_nonzero(columns["gender"] == ""))
    if missing:
        notes.append(f"{path.name}: {missing} users have no attributes")
    return {column: values.astype(str) for column, values in columns.items()}

