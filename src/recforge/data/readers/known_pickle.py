"""Loading the few benchmark pickles recforge knows, and nothing else.

Unpickling runs whatever code the file names, so a pickle from a stranger is a program, not data.
Some benchmarks (GFormer, the BERT4Rec ML-1M preprocessing) are published only as pickles, so
recforge loads a pickle only when (1) the sha256 of its bytes is one the calling reader knows, as a
constant in recforge's own source (``KNOWN_GFORMER_SHA256``, ``KNOWN_ML1M_SHA256``), and (2) every
class it refers to is on an explicit allow-list (defence in depth, should a checksum list ever be
wrong). The bytes that are hashed are the bytes that are unpickled, so the file cannot change in
between.

The checksums belong to the package, never to the data: nothing beside the data (a
``MANIFEST.tsv``, a ``.sha256`` file) can add one, because whoever can write the data folder could
then allow-list a pickle of their own. To read another pickle, convert it once, in a session that
trusts it, to a format that needs no unpickling (each reader's error says how).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import warnings
from collections.abc import Collection
from pathlib import Path

from recforge.errors import DataFormatError

# (module, name) pairs a scipy sparse matrix pickle needs, under both the old public module paths
# (scipy < 1.8, numpy < 2, which wrote the GFormer files) and today's private ones.
SPARSE_MATRIX_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {(module, f"{kind}_matrix") for kind in ("coo", "csr", "csc")
     for module in (f"scipy.sparse.{kind}", f"scipy.sparse._{kind}", "scipy.sparse")}
    | {("numpy", "ndarray"), ("numpy", "dtype")}
    | {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
       for name in ("_reconstruct", "scalar")}
)


class _AllowListUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the (module, name) globals it is given."""

    def __init__(self, data: bytes, allowed: frozenset[tuple[str, str]]):
        super().__init__(io.BytesIO(data))
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which is not on the allow-list")
        return super().find_class(module, name)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_known_pickle(
    path: str | Path,
    known_sha256: Collection[str],
    *,
    allowed_globals: frozenset[tuple[str, str]] = frozenset(),
    how_to_convert: str = "",
) -> object:
    """Unpickle ``path`` if its sha256 is in ``known_sha256``.

    Args:
        path: the pickle file.
        known_sha256: hex digests of the files the caller accepts: constants of the calling reader,
            never values read from beside the data (see the module docstring).
        allowed_globals: the (module, name) pairs the pickle may refer to; empty for plain
            dicts/lists/ints.
        how_to_convert: advice appended to the error for an unknown file (how to turn it into a
            format that needs no pickle).

    Raises:
        DataFormatError: unknown checksum, a class outside the allow-list, or a broken pickle.
    """
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(path, "is a directory, expected a pickle file")
    if not path.is_file():
        raise DataFormatError(path, "no such file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataFormatError(path, f"cannot read the file ({error.strerror or error})") from error
    digest = sha256_of(data)
    if digest not in {sha.lower() for sha in known_sha256}:
        raise DataFormatError(
            path,
            f"not a known pickle (sha256 {digest}); recforge unpickles only files whose checksum it "
            f"knows, because unpickling runs code. {how_to_convert}".rstrip(),
        )
    try:
        with warnings.catch_warnings():
            # Old scipy/numpy module paths (scipy.sparse.coo, numpy.core) warn on import; we know.
            warnings.simplefilter("ignore", DeprecationWarning)
            return _AllowListUnpickler(data, allowed_globals).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError, IndexError,
            KeyError, OverflowError) as error:
        raise DataFormatError(path, f"cannot unpickle ({error})") from error
