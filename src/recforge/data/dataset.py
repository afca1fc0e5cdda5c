"""The dataset container: integer-indexed users and items, their interactions, and side data.

Every reader produces a :class:`Dataset`; every split, sampler and model reads one. Users and items
are dense integer ids ``0..num_users-1`` / ``0..num_items-1``; ``user_ids``/``item_ids`` map them back
to the raw ids of the source file, so results can always be reported in the user's own terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
import scipy.sparse as sp

from recforge.errors import RecforgeError


class Fold(IntEnum):
    """Which part of a predefined split an interaction belongs to (for datasets shipped pre-split)."""

    TRAIN = 0
    VALID = 1
    TEST = 2


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays of (user, item[, timestamp][, rating]) events, one row per interaction.

    ``users`` and ``items`` are int64 dense ids. ``timestamps`` (int64 or float64) and ``ratings``
    (float32) are optional. The row order is meaningful: for sequence files without timestamps the
    file order *is* the chronological order, and :meth:`sequences` keeps it for ties.
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None = None
    ratings: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.users)
        for name in ("items", "timestamps", "ratings"):
            column = getattr(self, name)
            if column is not None and len(column) != n:
                raise RecforgeError(f"Interactions.{name} has {len(column)} rows, users has {n}")

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> Interactions:
        """The interactions at ``rows`` (an index array or a boolean mask), in that order."""
        return Interactions(
            users=self.users[rows],
            items=self.items[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            ratings=None if self.ratings is None else self.ratings[rows],
        )

    @staticmethod
    def concatenate(parts: list[Interactions]) -> Interactions:
        """Stack several interaction sets; optional columns survive only if every part has them."""

        def stack(name: str) -> np.ndarray | None:
            columns = [getattr(part, name) for part in parts]
            return None if any(c is None for c in columns) else np.concatenate(columns)

        return Interactions(
            users=np.concatenate([p.users for p in parts]).astype(np.int64, copy=False),
            items=np.concatenate([p.items for p in parts]).astype(np.int64, copy=False),
            timestamps=stack("timestamps"),
            ratings=stack("ratings"),
        )

    def to_csr(self, num_users: int, num_items: int) -> sp.csr_matrix:
        """Binary user×item matrix (float32, duplicates collapsed to 1)."""
        matrix = sp.csr_matrix(
            (np.ones(len(self), dtype=np.float32), (self.users, self.items)), shape=(num_users, num_items)
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def chronological_order(self) -> np.ndarray:
        """Row order sorted by user, then timestamp, then original row (a stable, documented tie-break)."""
        if self.timestamps is None:
            return np.argsort(self.users, kind="stable")
        return np.lexsort((np.arange(len(self)), self.timestamps, self.users))

    def sequences(self, num_users: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-user chronological item sequences in CSR form: ``items[indptr[u]:indptr[u+1]]``.

        Ties in timestamps keep file order, so the result is deterministic.
        """
        order = self.chronological_order()
        counts = np.bincount(self.users, minlength=num_users)
        indptr = np.zeros(num_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, self.items[order]


@dataclass
class Dataset:
    """Interactions over dense user/item ids, with the maps back to raw ids and optional side data.

    Attributes:
        name: a short label used in logs and results.
        interactions: every interaction the source holds (all folds, if the source is pre-split).
        user_ids / item_ids: raw id (as a string) of each dense id; ``user_ids[u]`` is user ``u``.
        fold: for sources that ship their own split, the :class:`Fold` of each interaction; else None.
        item_titles: optional human-readable title per item (``""`` where unknown).
        item_features / user_features: optional named per-item / per-user arrays (first axis = id).
        notes: what the reader did that a user should know (rows deduplicated, ids shifted, ...).
    """

    name: str
    interactions: Interactions
    user_ids: np.ndarray
    item_ids: np.ndarray
    fold: np.ndarray | None = None
    item_titles: np.ndarray | None = None
    item_features: Mapping[str, np.ndarray] = field(default_factory=dict)
    user_features: Mapping[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        inter = self.interactions
        if len(inter) and (inter.users.min() < 0 or inter.users.max() >= self.num_users):
            raise RecforgeError(f"dataset '{self.name}': user ids must lie in [0, {self.num_users})")
        if len(inter) and (inter.items.min() < 0 or inter.items.max() >= self.num_items):
            raise RecforgeError(f"dataset '{self.name}': item ids must lie in [0, {self.num_items})")
        if self.fold is not None and len(self.fold) != len(inter):
            raise RecforgeError(
                f"dataset '{self.name}': fold has {len(self.fold)} rows, expected {len(inter)}"
            )
        if self.item_titles is not None and len(self.item_titles) != self.num_items:
            raise RecforgeError(
                f"dataset '{self.name}': {len(self.item_titles)} titles for {self.num_items} items"
            )

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def has_timestamps(self) -> bool:
        return self.interactions.timestamps is not None

    def csr(self) -> sp.csr_matrix:
        """Binary user×item matrix of all interactions."""
        return self.interactions.to_csr(self.num_users, self.num_items)

    def sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-user chronological sequences (see :meth:`Interactions.sequences`)."""
        return self.interactions.sequences(self.num_users)

    def with_interactions(self, interactions: Interactions, fold: np.ndarray | None, note: str) -> Dataset:
        """A copy over the same id space with other interactions (used by filters)."""
        return replace(self, interactions=interactions, fold=fold, notes=[*self.notes, note])

    def summary(self) -> dict[str, object]:
        """Counts a user wants at a glance (`recforge data info`)."""
        inter = self.interactions
        per_user = np.bincount(inter.users, minlength=self.num_users)
        per_item = np.bincount(inter.items, minlength=self.num_items)
        info: dict[str, object] = {
            "name": self.name,
            "users": self.num_users,
            "items": self.num_items,
            "interactions": len(inter),
            "density": len(inter) / max(self.num_users * self.num_items, 1),
            "interactions per user (min/median/max)": _min_median_max(per_user),
            "interactions per item (min/median/max)": _min_median_max(per_item),
            "timestamps": self.has_timestamps,
            "ratings": inter.ratings is not None,
            "item titles": self.item_titles is not None,
        }
        if self.fold is not None:
            counts = np.bincount(self.fold, minlength=3)
            info["predefined split (train/valid/test)"] = "/".join(str(int(c)) for c in counts)
        if self.item_features:
            info["item features"] = ", ".join(sorted(self.item_features))
        if self.user_features:
            info["user features"] = ", ".join(sorted(self.user_features))
        return info


def _min_median_max(counts: np.ndarray) -> str:
    if len(counts) == 0:
        return "-"
    return f"{int(counts.min())}/{float(np.median(counts)):g}/{int(counts.max())}"


def dense_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map raw ids to dense ``0..n-1`` ids in order of first appearance.

    Returns ``(dense, raw_ids)`` with ``raw_ids[dense] == raw``. First-appearance order (rather than
    sorted order) keeps ids stable when a file is appended to.
    """
    uniques, first_index, inverse = np.unique(raw, return_index=True, return_inverse=True)
    order = np.argsort(first_index, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse].astype(np.int64), uniques[order].astype(str)
