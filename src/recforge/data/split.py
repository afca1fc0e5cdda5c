"""An explicit train / valid / test split, saved with a content hash and reloaded bit-for-bit.

Two runs (or two libraries) are comparable only on exactly the same split, so a split is an
artifact: ``Split.save`` writes an ``.npz`` (arrays only, no pickle) whose name-independent
``content_hash`` identifies it; checkpoints record that hash and refuse a different split.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recforge.data.dataset import Interactions
from recforge.errors import DataFormatError
from recforge.files import atomic_write

FOLDS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    """Train / valid / test interactions over one id space.

    Attributes:
        num_users / num_items: size of the id space (ids absent from a fold still count).
        train / valid / test: the interactions of each fold.
        protocol: one line saying how the split was made (shown in results, e.g.
            "given train/test; valid = 10% of each user's train, seed 2020").
    """

    num_users: int
    num_items: int
    train: Interactions
    valid: Interactions
    test: Interactions
    protocol: str
    provenance: dict[str, object] | None = None
    """What the split was made from and how (the data's fingerprint, the protocol and its
    parameters; see :func:`recforge.data.splitting.split_provenance`): a saved split is reused only
    for the same provenance. Not part of :attr:`content_hash`, which identifies the folds."""
    excludes_self: bool = False
    """Users and items are one set (a friend graph: ``links`` splits), so user u is never
    recommended item u: evaluation and inference treat it as seen. Part of :attr:`content_hash`."""

    def seen_with_self(self, seen: sp.csr_matrix) -> sp.csr_matrix:
        """``seen`` (a user x item matrix of known interactions) plus each user itself where
        :attr:`excludes_self`; unchanged otherwise."""
        if not self.excludes_self:
            return seen
        own = sp.eye(self.num_users, self.num_items, dtype=np.float32, format="csr")
        return sp.csr_matrix(((seen + own) > 0).astype(np.float32))

    def fold(self, name: str) -> Interactions:
        if name not in FOLDS:
            raise ValueError(f"fold must be one of {FOLDS}, got {name!r}")
        return getattr(self, name)

    def csr(self, name: str) -> sp.csr_matrix:
        """Binary user×item matrix of one fold."""
        return self._csr[name]

    @cached_property
    def _csr(self) -> dict[str, sp.csr_matrix]:
        return {name: self.fold(name).to_csr(self.num_users, self.num_items) for name in FOLDS}

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the sizes and the (user, item) arrays of each fold, in order."""
        digest = hashlib.sha256()
        digest.update(np.array([self.num_users, self.num_items], dtype=np.int64).tobytes())
        for name in FOLDS:
            part = self.fold(name)
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(part.users, dtype=np.int64).tobytes())
            digest.update(np.ascontiguousarray(part.items, dtype=np.int64).tobytes())
        if self.excludes_self:  # only then: the hashes of every other split stay as they were
            digest.update(b"excludes_self")
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, object]:
        return {
            "protocol": self.protocol,
            "hash": self.content_hash,
            **{f"{name} interactions": len(self.fold(name)) for name in FOLDS},
        }

    def save(self, path: str | Path) -> Path:
        """Write the split to ``path`` (``.npz``, arrays only), through a temporary file renamed into
        place, so a crash or a full disk never leaves a torn split. Returns the path written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for name in FOLDS:
            part = self.fold(name)
            arrays[f"{name}_users"] = part.users
            arrays[f"{name}_items"] = part.items
            if part.timestamps is not None:
                arrays[f"{name}_timestamps"] = part.timestamps
            if part.ratings is not None:
                arrays[f"{name}_ratings"] = part.ratings
        meta = {
            "num_users": self.num_users,
            "num_items": self.num_items,
            "protocol": self.protocol,
            "content_hash": self.content_hash,
            "provenance": self.provenance,
            "excludes_self": self.excludes_self,
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

        def write(target: Path) -> None:
            with target.open("wb") as handle:
                np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]  # numpy stubs: **kwds

        atomic_write(path, write)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Split:
        """Read a split written by :meth:`save`; the stored hash must match the arrays."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(archive["meta"].tobytes().decode())
                folds = {
                    name: Interactions(
                        users=archive[f"{name}_users"].astype(np.int64),
                        items=archive[f"{name}_items"].astype(np.int64),
                        timestamps=archive.get(f"{name}_timestamps"),
                        ratings=archive.get(f"{name}_ratings"),
                    )
                    for name in FOLDS
                }
        except (
            OSError,
            KeyError,
            ValueError,
            EOFError,
            RuntimeError,
            NotImplementedError,
            zlib.error,
            zipfile.BadZipFile,
        ) as error:
            raise DataFormatError(
                path, f"not a readable recforge split file ({error}); delete it to make the split anew"
            ) from error
        split = cls(
            num_users=int(meta["num_users"]),
            num_items=int(meta["num_items"]),
            protocol=str(meta["protocol"]),
            provenance=meta.get("provenance"),
            excludes_self=bool(meta.get("excludes_self", False)),
            **folds,
        )
        if split.content_hash != meta["content_hash"]:
            raise DataFormatError(
                path,
                f"content hash {split.content_hash} does not match the stored "
                f"{meta['content_hash']}: the file was altered",
            )
        return split
