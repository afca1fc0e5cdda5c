"""DE-RRD's CiteULike leave-one-out split (four pickles of plain values).

DE-RRD (Kang et al., CIKM 2020; ``SeongKu-Kang/DE-RRD_CIKM20@97b6bf6`` ``Dataset/citeULike/LOO/``)
publishes its split as four pickles of plain Python values::

    counts          (num_users, num_items)           the sizes the authors' code allocates
    train_mat_0     {user: {item: 1, ...}, ...}       the training interactions
    valid_sample_0  {user: item, ...}                 one validation item per user
    test_sample_0   {user: item, ...}                 one test item per user

Ids are 0-based and already dense, so the dataset's ids *are* the file's ids: user ``u`` of the
files is user ``u`` here, item ``i`` is item ``i`` (raw ids ``"u"``, ``"i"``). The id space is the
ids the files use (for the published draw: users 0..5218, items 0..25180, i.e. 5,219 × 25,181);
``counts`` is one larger in each direction, as the authors' code allocates, and is only checked to
hold every id. The files carry no timestamps (and the leave-one-out item is the authors' draw,
not the latest), so the dataset has none; ``fold`` marks train / valid / test, and
``data.split.protocol: given`` reproduces the authors' split exactly.

Only the published files (checksums below, constants of recforge) are unpickled, and with an empty
allow-list: they may build dicts, ints and tuples and no class at all
(:mod:`~recforge.data.readers.known_pickle`). The authors' sampled test candidates
(``candidates_0``) were not published in usable form; :class:`~recforge.evaluation.Evaluator`'s
``sampled_negatives=499`` draws the same protocol (one held-out item against 499 unseen items).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain
from pathlib import Path

import numpy as np

from recforge.data.dataset import Dataset, Fold, Interactions
from recforge.data.readers.common import duplicate_note
from recforge.data.readers.known_pickle import load_known_pickle
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError

COUNTS_FILE = "counts"
FOLD_FILES: dict[Fold, str] = {Fold.TRAIN: "train_mat_0", Fold.VALID: "valid_sample_0",
                               Fold.TEST: "test_sample_0"}

# sha256 of SeongKu-Kang/DE-RRD_CIKM20@97b6bf6 Dataset/citeULike/LOO/{counts,train_mat_0,valid_sample_0,
# test_sample_0}, computed once from the published files; the only pickles read_derrd unpickles.
KNOWN_DERRD_SHA256: frozenset[str] = frozenset({
    "c40bc00288a6a4dbd58980572ae71e0ccc2619b4f3b3da2de02305fc3e831dc6",  # counts
    "b69e4a93a0a3f01dfe7668358d96eb866af9a28b61461798c19958af5750aedd",  # train_mat_0
    "8f258804ffeb3ddc5aff8d669e5ed98377010346cedbf3186f18c0523499d441",  # valid_sample_0
    "34f3ab9dba594c0b8ff43145e6d7e08e121fc6217b9bd13444a1c27f93a4f0b1",  # test_sample_0
})

_HOW_TO_CONVERT = (
    "If you trust the files, convert them once in your own session to trnMat.npz, valMat.npz and "
    "tstMat.npz (scipy.sparse.save_npz of each fold's user×item matrix) and read that directory with "
    "format 'gformer', which unpickles nothing."
)


@checked_options()
def read_derrd(directory: str | Path, *, name: str | None = None) -> Dataset:
    """Read the four DE-RRD pickles in ``directory`` (known checksums only) into a pre-split dataset.

    Rows are the training interactions (users in file order, each user's items in file order),
    then the validation items, then the test items; ``fold`` says which is which. See the module
    docstring for the id mapping.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, "not a directory: a DE-RRD dataset is a directory holding "
                              f"{COUNTS_FILE}, {', '.join(FOLD_FILES.values())}")
    counts_path = directory / COUNTS_FILE
    counts = _load(counts_path)
    if (not isinstance(counts, tuple) or len(counts) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)):
        raise DataFormatError(counts_path, f"expected a (num_users, num_items) tuple of ints, got {counts!r}")
    train = _train_interactions(directory / FOLD_FILES[Fold.TRAIN])
    held_out = [_held_out_interactions(directory / FOLD_FILES[fold]) for fold in (Fold.VALID, Fold.TEST)]
    parts = [train, *held_out]
    interactions = Interactions.concatenate(parts)
    fold_column = np.repeat(np.array([Fold.TRAIN, Fold.VALID, Fold.TEST], dtype=np.int8),
                            [len(part) for part in parts])

    num_users = int(interactions.users.max()) + 1 if len(interactions) else 0
    num_items = int(interactions.items.max()) + 1 if len(interactions) else 0
    for size, allocated, kind in ((num_users, counts[0], "user"), (num_items, counts[1], "item")):
        if size > allocated:
            raise DataFormatError(counts_path, f"says {allocated} {kind}s, but the folds use {kind} id "
                                  f"{size - 1}", field=f"{kind}s")
    notes = ["no timestamps: the files hold the authors' leave-one-out draw (one valid and one test item "
             "per user), not an order in time"]
    duplicates = duplicate_note(interactions.users, interactions.items, fold_column)
    if duplicates:
        notes.append(duplicates)
    return Dataset(
        name=name or directory.name,
        interactions=interactions,
        user_ids=np.arange(num_users).astype(str),
        item_ids=np.arange(num_items).astype(str),
        fold=fold_column,
        notes=notes,
    )


def _load(path: Path) -> object:
    # dicts, ints and tuples only: the allow-list of classes is empty
    return load_known_pickle(path, KNOWN_DERRD_SHA256, how_to_convert=_HOW_TO_CONVERT)


def _ids(path: Path, values: Iterable[object], count: int, field: str) -> np.ndarray:
    """``count`` ids as int64, refusing bools, floats, strings and negatives."""
    listed = list(values)
    bad = [value for value in listed if not isinstance(value, int) or isinstance(value, bool)]
    if bad:
        raise DataFormatError(path, f"ids must be ints, got {bad[0]!r} ({type(bad[0]).__name__})",
                              field=field)
    ids = np.fromiter(listed, dtype=np.int64, count=count)
    if count and ids.min() < 0:
        raise DataFormatError(path, f"ids must be >= 0, got {int(ids.min())}", field=field)
    return ids


def _train_interactions(path: Path) -> Interactions:
    """``{user: {item: 1}}`` as (user, item) rows, users and items in file order."""
    payload = _load(path)
    if not isinstance(payload, dict) or not all(isinstance(row, dict) for row in payload.values()):
        raise DataFormatError(path, "expected a dict {user: {item: 1, ...}}")
    lengths = np.fromiter((len(row) for row in payload.values()), dtype=np.int64, count=len(payload))
    total = int(lengths.sum())
    users = np.repeat(_ids(path, payload.keys(), len(payload), "user"), lengths)
    items = _ids(path, chain.from_iterable(payload.values()), total, "item")
    values = set(chain.from_iterable(row.values() for row in payload.values()))
    others = sorted(values - {1}, key=repr)  # 1 and True compare equal: either means "interacted"
    if others:
        raise DataFormatError(path, f"every value must be 1 (an interaction), got {others}")
    return Interactions(users=users, items=items)


def _held_out_interactions(path: Path) -> Interactions:
    """``{user: item}`` as (user, item) rows in file order."""
    payload = _load(path)
    if not isinstance(payload, dict):
        raise DataFormatError(path, "expected a dict {user: item}")
    return Interactions(users=_ids(path, payload.keys(), len(payload), "user"),
                        items=_ids(path, payload.values(), len(payload), "item"))
