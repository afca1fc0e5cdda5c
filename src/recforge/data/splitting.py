"""Split protocols: turn a :class:`Dataset` into a saved train / valid / test :class:`Split`.

Each protocol is a function returning a ``Split`` whose ``protocol`` string says exactly what was
done (ratios, rounding, seed, who was left in train), because a number in a results table means
nothing without it. Every interaction lands in exactly one fold. Per-user work is vectorized: one
sort by (user, key) gives every row its rank within its user, and comparing ranks with per-user
quotas assigns folds without a Python loop over users.

Rounding, shared by :func:`random_split` and :func:`given_split`: a user with ``n`` interactions
gives ``floor(n * ratio + 0.5)`` of them to a held-out fold (halves round up), capped so that at
least one interaction stays in train; when the cap bites, test is served before valid.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from recforge.data.dataset import Dataset, Fold
from recforge.data.split import Split
from recforge.errors import ConfigError, RecforgeError, UnknownNameError

_TRAIN, _VALID, _TEST = int(Fold.TRAIN), int(Fold.VALID), int(Fold.TEST)


def given_split(dataset: Dataset, *, valid_ratio: float | None = None, seed: int | None = None) -> Split:
    """The split the source ships with (``dataset.fold``), optionally carving valid out of train.

    Many benchmarks (LightGCN's Gowalla, for one) ship only train and test. Model selection must not
    read test, so with ``valid_ratio`` each user's train rows give a seeded random
    ``floor(n * valid_ratio + 0.5)`` of themselves to valid, always leaving one in train (a user with
    a single train interaction keeps it). Without ``valid_ratio`` such a source is an error rather
    than a split with an empty valid fold.
    """
    if dataset.fold is None:
        raise ConfigError(
            f"split 'given': dataset '{dataset.name}' has no predefined split (its fold is None); "
            "use 'random', 'leave_one_out' or 'temporal'"
        )
    fold = np.asarray(dataset.fold, dtype=np.int64)
    has_valid = bool((fold == _VALID).any())
    if has_valid:
        if valid_ratio is not None:
            raise ConfigError(
                f"split 'given': dataset '{dataset.name}' ships its own validation rows; "
                f"valid_ratio={valid_ratio} would ignore them, so leave it unset"
            )
        return _split_by_fold(dataset, fold, "given train/valid/test")
    if valid_ratio is None:
        raise ConfigError(
            f"split 'given': dataset '{dataset.name}' ships train/test only and no valid rows; set "
            "valid_ratio (e.g. 0.1) to carve validation out of each user's train interactions"
        )
    if not 0.0 < valid_ratio < 1.0:
        raise ConfigError(f"split 'given': valid_ratio must lie in (0, 1), got {valid_ratio}")
    rng = _rng("given", seed)

    train_rows = np.flatnonzero(fold == _TRAIN)
    train_users = dataset.interactions.users[train_rows]
    rank, counts = _rank_within_user(train_users, rng.random(len(train_rows)), dataset.num_users)
    num_valid = np.minimum(_round_half_up(counts * valid_ratio), counts - 1)
    fold = fold.copy()
    fold[train_rows[rank < num_valid[train_users]]] = _VALID
    protocol = (
        f"given train/test; valid = {valid_ratio * 100:g}% of each user's train interactions, seed {seed}"
    )
    return _split_by_fold(dataset, fold, protocol)


def random_split(dataset: Dataset, *, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int) -> Split:
    """A seeded random per-user split: each user's interactions divided by ``ratios``.

    For a user with ``n`` interactions: ``test = floor(n * ratios[2] + 0.5)`` capped at ``n - 1``,
    then ``valid = floor(n * ratios[1] + 0.5)`` capped at ``n - 1 - test``; the rest is train. So
    every user with an interaction keeps one in train, and users with few interactions (fewer than
    5 at 0.8/0.1/0.1) keep all of them in train.
    """
    _, valid_ratio, test_ratio = _check_ratios("random", ratios)
    rng = _rng("random", seed)
    users = dataset.interactions.users
    rank, counts = _rank_within_user(users, rng.random(len(users)), dataset.num_users)
    num_test = np.minimum(_round_half_up(counts * test_ratio), np.maximum(counts - 1, 0))
    num_valid = np.minimum(_round_half_up(counts * valid_ratio), np.maximum(counts - 1 - num_test, 0))
    fold = _folds_from_quota(rank, num_test[users], num_valid[users])
    protocol = (
        f"random per-user split {_percentages(ratios)} train/valid/test, seed {seed} "
        "(per user of n: test = round(n*test), valid = round(n*valid), halves up, at least 1 in train)"
    )
    return _split_by_fold(dataset, fold, protocol)


def leave_one_out_split(dataset: Dataset) -> Split:
    """Each user's last interaction to test, the second-to-last to valid, the rest to train.

    "Last" is by timestamp with ties kept in file order; without timestamps the file order is the
    time order (sequence files are written that way), and the protocol string says so. Users with
    fewer than 3 interactions cannot give one to each fold and keep all of theirs in train; their
    number is in the protocol string.
    """
    inter = dataset.interactions
    order = inter.chronological_order()
    counts = np.bincount(inter.users, minlength=dataset.num_users)
    rank = _ranks_from_order(inter.users, order, counts)
    from_last = counts[inter.users] - 1 - rank
    eligible = counts[inter.users] >= 3
    fold = np.full(len(inter), _TRAIN, dtype=np.int64)
    fold[eligible & (from_last == 0)] = _TEST
    fold[eligible & (from_last == 1)] = _VALID
    kept_in_train = int(((counts > 0) & (counts < 3)).sum())
    basis = "timestamp (ties keep file order)" if dataset.has_timestamps else "file order (no timestamps)"
    protocol = (
        f"leave-one-out by {basis}: last interaction -> test, second-to-last -> valid; "
        f"{kept_in_train} users with fewer than 3 interactions kept entirely in train"
    )
    return _split_by_fold(dataset, fold, protocol)


def temporal_split(dataset: Dataset, *, ratios: Sequence[float] = (0.8, 0.1, 0.1)) -> Split:
    """Global time cut-offs: the oldest ``ratios[0]`` of interactions train, the newest test.

    The cut-offs are timestamps, not row counts: ``valid_from`` is the timestamp of the row at
    position ``floor(n * ratios[0] + 0.5)`` of all rows sorted by time, ``test_from`` likewise at
    ``floor(n * (ratios[0] + ratios[1]) + 0.5)``; train is ``t < valid_from``, valid
    ``valid_from <= t < test_from``, test ``t >= test_from``. So no train event is simultaneous with
    or later than an evaluation event, and fold sizes differ from the ratios only by ties at a
    cut-off. Users and items first seen after a cut-off are cold in that fold, as in deployment.
    """
    train_ratio, valid_ratio, _ = _check_ratios("temporal", ratios)
    timestamps = dataset.interactions.timestamps
    if timestamps is None:
        raise ConfigError(
            f"split 'temporal': dataset '{dataset.name}' has no timestamps; "
            "use 'leave_one_out' (which falls back to file order) or 'random'"
        )
    n = len(timestamps)
    sorted_times = np.sort(timestamps)

    def cutoff(fraction: float) -> float | int:
        position = int(_round_half_up(np.array([n * fraction]))[0])
        return sorted_times[position].item() if position < n else np.inf

    valid_from, test_from = cutoff(train_ratio), cutoff(train_ratio + valid_ratio)
    fold = np.full(n, _TRAIN, dtype=np.int64)
    fold[timestamps >= valid_from] = _VALID
    fold[timestamps >= test_from] = _TEST
    protocol = (
        f"temporal split {_percentages(ratios)} train/valid/test at global timestamp quantiles: "
        f"valid from t >= {valid_from}, test from t >= {test_from}"
    )
    return _split_by_fold(dataset, fold, protocol)


def links_split(
    dataset: Dataset,
    *,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int,
    new_users: float = 0.0,
    new_user_keep: int = 1,
) -> Split:
    """A friend graph's link split without leakage (:func:`recforge.data.social.assign_edge_folds`):
    each undirected friendship {u, v} lies in one fold with both its directions, owned by a seeded
    endpoint that holds out its share; every user with a friend keeps one in train. Users and items
    are the same nodes (:func:`recforge.data.social.social_dataset`), so a user is never recommended
    themself (:attr:`Split.excludes_self`). A pair listed in one direction only counts as a friendship.

    ``new_users`` > 0 then makes that seeded share of the users with at least two training
    friendships *new* (:func:`recforge.data.social.new_user_split`): each keeps ``new_user_keep``
    training friendships (0: features only) and its others move to test, so the cold-start slice
    ``<= new_user_keep`` training friends (``evaluation.activity_slices``) holds them."""
    from recforge.data.social import LinkSplit, assign_edge_folds, new_user_split

    _, valid_share, test_share = _check_ratios("links", ratios)
    inter = dataset.interactions
    if dataset.num_users != dataset.num_items or not np.array_equal(dataset.user_ids, dataset.item_ids):
        raise ConfigError(
            f"split 'links': dataset '{dataset.name}' is not a user-user graph (its users and items "
            "differ); use a friend graph (twitch-*, lastfm-social) or another protocol"
        )
    if seed is None:
        raise ConfigError("split 'links' needs a seed")
    low, high = np.minimum(inter.users, inter.items), np.maximum(inter.users, inter.items)
    if (low == high).any():
        raise ConfigError(
            f"split 'links': dataset '{dataset.name}' has self-loops (u, u); readers drop them"
        )
    keys = low * dataset.num_users + high
    distinct, edge_of_row = np.unique(keys, return_inverse=True)
    edges = np.stack([distinct // dataset.num_users, distinct % dataset.num_users], axis=1)
    fold, _, restored = assign_edge_folds(
        edges, dataset.num_users, valid_share=valid_share, test_share=test_share, seed=seed
    )
    protocol = (
        f"links {valid_share * 100:g}% valid / {test_share * 100:g}% test of each user's friendships, seed "
        f"{seed}; every friendship in one fold, both directions; {restored} returned to train so every "
        "user with a friend keeps one; a user is never their own candidate"
    )
    if not 0 <= new_users < 1:
        raise ConfigError(f"split 'links': new_users must lie in [0, 1), got {new_users}")
    if new_users > 0:
        train, valid, test = (edges[fold == code] for code in (_TRAIN, _VALID, _TEST))
        links = LinkSplit(dataset.num_users, train, valid, test, protocol)
        degree = np.bincount(links.train_edges.ravel(), minlength=dataset.num_users)
        eligible = np.flatnonzero(degree >= 2)
        rng = _rng("links", seed)
        chosen = rng.choice(eligible, size=round(new_users * len(eligible)), replace=False)
        links = new_user_split(links, chosen, keep=new_user_keep, seed=seed)
        fold = np.full(len(edges), _TRAIN, dtype=np.int64)
        for code, moved in ((_VALID, links.valid_edges), (_TEST, links.test_edges)):
            fold[np.searchsorted(distinct, moved[:, 0] * dataset.num_users + moved[:, 1])] = code
        protocol = links.protocol
    return replace(_split_by_fold(dataset, fold[edge_of_row], protocol), excludes_self=True)


SPLITTERS: dict[str, Callable[..., Split]] = {
    "given": given_split,
    "random": random_split,
    "leave_one_out": leave_one_out_split,
    "temporal": temporal_split,
    "links": links_split,
}


def split_dataset(dataset: Dataset, protocol: str, **params: object) -> Split:
    """Split ``dataset`` with the protocol named ``protocol`` (a key of :data:`SPLITTERS`).

    ``params`` are the protocol's keyword arguments, as a config gives them; a name the protocol
    does not take is a :class:`ConfigError` listing the ones it does.
    """
    if protocol not in SPLITTERS:
        raise UnknownNameError("split protocol", protocol, list(SPLITTERS))
    splitter = SPLITTERS[protocol]
    parameters = {name: p for name, p in inspect.signature(splitter).parameters.items() if name != "dataset"}
    unknown = sorted(set(params) - set(parameters))
    if unknown:
        takes = ", ".join(parameters) if parameters else "no parameters"
        raise ConfigError(
            f"split protocol '{protocol}' does not take {', '.join(unknown)}; it takes: {takes}"
        )
    missing = [name for name, p in parameters.items() if p.default is p.empty and name not in params]
    if missing:
        raise ConfigError(f"split protocol '{protocol}' needs {', '.join(missing)}")
    return splitter(dataset, **params)


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 (16 hex digits) over the id space and every interaction (user, item, timestamp, and
    the source's fold where it ships one): two datasets with the same fingerprint split alike."""
    digest = hashlib.sha256(np.array([dataset.num_users, dataset.num_items], dtype=np.int64).tobytes())
    inter = dataset.interactions
    for column in (inter.users, inter.items, inter.timestamps, dataset.fold):
        digest.update(b"|" if column is None else np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()[:16]


def split_provenance(dataset: Dataset, protocol: str, **params: object) -> dict[str, object]:
    """What a split of ``dataset`` by ``protocol`` with ``params`` is made from, JSON-ready."""
    normalised = {
        key: list(value) if isinstance(value, tuple) else value for key, value in sorted(params.items())
    }
    return {"data": dataset_fingerprint(dataset), "protocol": protocol, "params": normalised}


def load_or_create_split(dataset: Dataset, protocol: str, path: str | Path, **params: object) -> Split:
    """The split saved at ``path`` if it was made from this data by this protocol with these
    parameters, else a new one, saved there when no file exists.

    Reusing the file is what makes two runs comparable; reusing it for other data or settings would
    train and test on folds the config does not describe, so a file with another provenance is an
    error that says what differs.
    """
    path = Path(path)
    provenance = split_provenance(dataset, protocol, **params)
    if not path.exists():
        split = replace(split_dataset(dataset, protocol, **params), provenance=provenance)
        split.save(path)
        return split
    split = Split.load(path)
    if split.provenance != provenance:
        raise RecforgeError(
            f"{path}: this saved split was made {_differences(split.provenance, provenance)}; "
            "delete the file (and the run directory's results with it) to split anew, or use "
            "another output_dir"
        )
    return split


def _differences(found: dict[str, object] | None, wanted: dict[str, object]) -> str:
    if found is None:
        return "by an older recforge that did not record how"
    changes = []
    if found.get("data") != wanted["data"]:
        changes.append(f"from other data (fingerprint {found.get('data')}, now {wanted['data']})")
    if found.get("protocol") != wanted["protocol"]:
        changes.append(f"by protocol '{found.get('protocol')}', not '{wanted['protocol']}'")
    found_params, wanted_params = _as_dict(found.get("params")), _as_dict(wanted["params"])
    for key in sorted(set(found_params) | set(wanted_params)):
        if found_params.get(key) != wanted_params.get(key):
            changes.append(f"with {key} {found_params.get(key)}, not {wanted_params.get(key)}")
    return ", ".join(changes) or "differently"


def _as_dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _split_by_fold(dataset: Dataset, fold: np.ndarray, protocol: str) -> Split:
    inter = dataset.interactions
    return Split(
        num_users=dataset.num_users,
        num_items=dataset.num_items,
        train=inter.take(np.flatnonzero(fold == _TRAIN)),
        valid=inter.take(np.flatnonzero(fold == _VALID)),
        test=inter.take(np.flatnonzero(fold == _TEST)),
        protocol=protocol,
    )


def _rank_within_user(users: np.ndarray, key: np.ndarray, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's 0-based rank by ``key`` among its user's rows, and every user's row count."""
    counts = np.bincount(users, minlength=num_users)
    return _ranks_from_order(users, np.lexsort((key, users)), counts), counts


def _ranks_from_order(users: np.ndarray, order: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Ranks within user given ``order``, a row order sorted by user (any order within a user)."""
    group_start = np.cumsum(counts) - counts
    rank = np.empty(len(users), dtype=np.int64)
    rank[order] = np.arange(len(users)) - group_start[users[order]]
    return rank


def _folds_from_quota(rank: np.ndarray, num_test: np.ndarray, num_valid: np.ndarray) -> np.ndarray:
    """Rows ranked first in their user go to test, the next ones to valid, the rest to train."""
    fold = np.full(len(rank), _TRAIN, dtype=np.int64)
    fold[rank < num_test + num_valid] = _VALID
    fold[rank < num_test] = _TEST
    return fold


def _round_half_up(values: np.ndarray) -> np.ndarray:
    # round to 9 decimals first, so that 90 * 0.35 = 31.499999999999996 rounds up as the 31.5 it
    # stands for (and 15 * 0.1 = 1.5000000000000002 as 1.5)
    return np.floor(np.round(values, 9) + 0.5).astype(np.int64)


def _check_ratios(protocol: str, ratios: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(r) for r in ratios)
    if len(values) != 3:
        raise ConfigError(f"split '{protocol}': ratios must be (train, valid, test), got {list(ratios)}")
    if any(not np.isfinite(r) or r < 0 for r in values):
        raise ConfigError(f"split '{protocol}': ratios must be >= 0, got {list(ratios)}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(
            f"split '{protocol}': ratios must sum to 1, got {list(ratios)} (sum {sum(values):g})"
        )
    if values[0] == 0:
        raise ConfigError(f"split '{protocol}': the train ratio must be > 0, got {list(ratios)}")
    return values[0], values[1], values[2]


def _rng(protocol: str, seed: int | None) -> np.random.Generator:
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(
            f"split '{protocol}': needs an int seed so the split can be reproduced, got {seed!r}"
        )
    return np.random.default_rng(seed)


def _percentages(ratios: Sequence[float]) -> str:
    return "/".join(f"{float(r) * 100:g}" for r in ratios)
