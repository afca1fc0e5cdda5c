"""GFormer split matrices: ``trnMat`` / ``valMat`` / ``tstMat``, one user×item matrix per fold.

The Yelp, LastFM and iFashion splits of GFormer (Li et al., SIGIR 2023; 70:5:25 train/val/test)
are published as pickled ``scipy.sparse.coo_matrix`` objects. Row = user id, column = item id,
both 0-based, so the dense ids are the matrix indices. Only the published files (checksums below)
are unpickled; any other matrix must be converted to ``.npz`` first, which is read without pickle.
The checksums are constants here, part of recforge; nothing beside the data can add one.

The matrix shape is the id space, so a shape far larger than the users and items that have an
entry (a hostile ``.npz`` of shape ``2**40 × 2``) is refused
(:func:`~recforge.data.readers.common.id_space_limit`).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import cast

import numpy as np
import scipy.sparse as sp

from recforge.data.dataset import Dataset, Fold, Interactions
from recforge.data.readers.common import duplicate_note, id_space_problem
from recforge.data.readers.known_pickle import SPARSE_MATRIX_GLOBALS, load_known_pickle
from recforge.data.readers.options import checked_options
from recforge.errors import DataFormatError

FOLD_FILES: dict[Fold, str] = {Fold.TRAIN: "trnMat", Fold.VALID: "valMat", Fold.TEST: "tstMat"}

# sha256 of the files in HKUDS/GFormer@b2b7baf Datasets/{lastfm,sparse_yelp}/, computed once from the
# published files; the only pickles read_gformer unpickles.
KNOWN_GFORMER_SHA256: frozenset[str] = frozenset({
    "a565856bdc17ef91198832ebc6e98d89de20a1c28042be426fc1b5607a8a1228",  # lastfm/trnMat.pkl
    "6a5b9c9db4018726c2af349b9ba9512b3dbf840b01225617720da87277b3b9d9",  # lastfm/valMat.pkl
    "f831e9a7d548ad9527b9261046b9aa7122e66b55df498add2e2e5c549449040f",  # lastfm/tstMat.pkl
    "299c23b93952c3e4553c17d004a69651fda9419cfcbbce70df9c3f539de4ff43",  # sparse_yelp/trnMat.pkl
    "c27cb28baba07184fa0331412ec7ec64e462b435b29483a94285f525fab74eb9",  # sparse_yelp/valMat.pkl
    "289b445aab82a5059dfd9585f7dec289fd5963a56891e58ea372da5b5edd8d8a",  # sparse_yelp/tstMat.pkl
})

_HOW_TO_CONVERT = (
    "If you trust the file, convert it once in your own session: "
    "`scipy.sparse.save_npz('{stem}.npz', pickle.load(open('{name}', 'rb')))`; "
    "recforge reads {stem}.npz without unpickling."
)


@checked_options()
def read_gformer(directory: str | Path, *, name: str | None = None) -> Dataset:
    """Read ``trnMat`` / ``valMat`` / ``tstMat`` (``.npz`` preferred, else a known ``.pkl``).

    All three must be present and have the same shape (the user×item space). Stored values are
    normally all 1; if any is not, they are kept as ``ratings``. Sets ``fold``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataFormatError(directory, "not a directory: a GFormer dataset is a directory holding "
                              f"{', '.join(FOLD_FILES.values())} (.npz, or the published .pkl)")
    matrices = {fold: load_fold_matrix(directory, stem) for fold, stem in FOLD_FILES.items()}
    shapes = {matrix.shape for matrix in matrices.values()}
    if len(shapes) > 1:
        described = ", ".join(f"{FOLD_FILES[fold]} {m.shape[0]}x{m.shape[1]}" for fold, m in matrices.items())
        raise DataFormatError(directory, f"the fold matrices disagree on the user×item shape: {described}")
    num_users, num_items = matrices[Fold.TRAIN].shape

    parts, folds, values = [], [], []
    for fold, matrix in matrices.items():
        coo = matrix.tocoo()
        parts.append(Interactions(users=coo.row.astype(np.int64), items=coo.col.astype(np.int64)))
        folds.append(np.full(coo.nnz, fold, dtype=np.int8))
        values.append(coo.data)
    interactions = Interactions.concatenate(parts)
    for size, ids, kind, axis in ((num_users, interactions.users, "user", "rows"),
                                  (num_items, interactions.items, "item", "columns")):
        problem = id_space_problem(size, len(np.unique(ids)), kind)
        if problem:
            raise DataFormatError(_fold_file(directory, FOLD_FILES[Fold.TRAIN]), f"the matrix has {size} "
                                  f"{axis}: {problem}", field=f"{kind}s")
    fold_column = np.concatenate(folds)
    data = np.concatenate(values)
    notes = []
    if not np.all(data == 1):
        interactions = Interactions(users=interactions.users, items=interactions.items,
                                    ratings=data.astype(np.float32))
        notes.append("matrix values are not all 1; kept as ratings")
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


def _fold_file(directory: Path, stem: str) -> Path:
    npz = directory / f"{stem}.npz"
    return npz if npz.is_file() else directory / f"{stem}.pkl"


def load_fold_matrix(directory: Path, stem: str) -> sp.spmatrix | sp.sparray:
    """``<stem>.npz`` (read with ``allow_pickle=False``) if present, else ``<stem>.pkl`` if known."""
    npz, pkl = directory / f"{stem}.npz", directory / f"{stem}.pkl"
    if npz.is_file():
        try:
            matrix = sp.load_npz(npz)  # np.load(allow_pickle=False) inside: no code runs
        # A corrupt archive fails in zipfile or zlib with many types (BadZipFile, zlib.error,
        # NotImplementedError for an unknown zip version, RuntimeError for an "encrypted" member).
        except (OSError, ValueError, KeyError, AttributeError, TypeError, EOFError, NotImplementedError,
                RuntimeError, zipfile.BadZipFile, zlib.error) as error:
            raise DataFormatError(npz, f"not a scipy sparse .npz file ({error})") from error
        if getattr(matrix, "ndim", 0) != 2:
            dimensions = getattr(matrix, "ndim", "?")
            raise DataFormatError(npz, f"expected a 2-D sparse matrix, got {dimensions} dimensions")
        return matrix
    if not pkl.is_file():
        raise DataFormatError(directory, f"missing {stem}.npz or {stem}.pkl (a GFormer directory has "
                              f"{', '.join(FOLD_FILES.values())})")
    # load_known_pickle silences the DeprecationWarning of the old scipy.sparse.coo module path.
    matrix = load_known_pickle(
        pkl, KNOWN_GFORMER_SHA256, allowed_globals=SPARSE_MATRIX_GLOBALS,
        how_to_convert=_HOW_TO_CONVERT.format(stem=stem, name=pkl.name),
    )
    if not sp.issparse(matrix) or getattr(matrix, "ndim", 0) != 2:
        raise DataFormatError(pkl, f"expected a 2-D scipy sparse matrix, got {type(matrix).__name__}")
    return cast(sp.spmatrix, matrix)
