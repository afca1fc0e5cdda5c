r"""User-user friendship graphs with node features, and link splits for friend retrieval.

A friend graph does not fit :class:`~recforge.data.dataset.Dataset` (users × items): the items *are*
the users, and a friendship is one undirected edge, not an interaction of one user. So it has its
own container, :class:`SocialGraph` (dense node ids, raw ids, an ``(E, 2)`` edge array with
``u < v``, a CSR feature matrix, notes), its own named datasets (:data:`SOCIAL_DATASETS`,
:func:`load_social`, which finds the data root as :func:`~recforge.data.registry.load_dataset`
does), and its own split (:class:`LinkSplit`). The experiment pipeline reads a friend graph as a
user-user :class:`~recforge.data.dataset.Dataset` (:func:`social_dataset`) and splits it with the
``links`` protocol (:func:`recforge.data.splitting.links_split`, the same rule), saved as any
``split.npz`` is.

**Reading edges.** Self-loops are dropped and counted; a friendship listed more than once is kept
once and counted, in :attr:`SocialGraph.notes`. ``listing`` says how the file lists an undirected
friendship: ``"once"`` (MUSAE Twitch): a pair seen in both directions is one friendship, and the
note says how many were; ``"both"`` (HetRec Last.fm ``trustnetwork``): every friendship must appear
as (u, v) and (v, u), and a pair without its reverse is a :class:`DataFormatError` (it would be a
one-way follow, not a mutual friendship; read with ``listing="once"`` to take the union). Nodes
without a friendship are kept and counted.

**The link split** (:func:`link_split`). Each undirected friendship lands in exactly one fold:

1. a seeded fair coin picks its *owner*, one of its two endpoints;
2. each owner with ``n`` owned friendships ranks them by a seeded key and holds out the first
   ``floor(n * test_share + U)`` for test and the next ones up to ``floor(n * (valid_share +
   test_share) + U)`` for valid, with ``U`` one uniform draw per owner (systematic sampling). So
   every owner holds out ``n * share`` rounded down or up, exactly in expectation; the fixed
   round-half-up of :mod:`~recforge.data.splitting` would hold out nothing from the many users
   owning fewer than 5 friendships (at 10%) and shrink the held-out share well below the one asked;
3. a user left without any training friendship gets back the held-out friendship with the smallest
   key (returning an edge to train only adds to train, so one pass suffices). So **every user with
   a friend keeps at least one in train**; a user with a single friendship always keeps it, and a
   user without training friends appears only through :func:`new_user_split`.

An edge leaves the message-passing graph in both directions: the training adjacency is built from
the training edges only, symmetrically. A held-out friendship is **evaluated from both
endpoints**: ``positives(fold)`` is symmetric, so u retrieves v and v retrieves u. Both queries are
legitimate (neither endpoint's training graph holds the edge) and this makes every user's positives
all of its held-out friendships, not only those the coin happened to give it. Seen items are the
friendships known before the fold (``history``): train for valid, train + valid for test, as
recforge's filters score test from train + valid.

**Cold start** (:func:`cold_start_slices`, :func:`new_user_split`): query users by degree in the
graph a fold is scored from, and a "new user" split where chosen users keep ``keep`` training
friendships (``keep=0``: features only) and every other friendship of theirs is moved to test.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recforge.data.dataset import Dataset, Interactions
from recforge.data.io import read_text, resolve_data_file
from recforge.data.registry import resolve_data_root
from recforge.errors import ConfigError, DataFormatError, RecforgeError, UnknownNameError

Listing = Literal["once", "both"]
LINK_FOLDS = ("train", "valid", "test")
_TRAIN, _VALID, _TEST = 0, 1, 2

TWITCH_COUNTRIES = ("DE", "ENGB", "ES", "FR", "PTBR", "RU")
TWITCH_NUM_FEATURES = 3170
"""The MUSAE Twitch feature vocabulary (game ids 0..3169), shared by the six country graphs."""

LASTFM_TRANSFORMS = ("log1p", "counts", "binary")


# --- the container -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SocialGraph:
    """An undirected user-user graph over dense node ids, with sparse node features.

    Attributes:
        name: a short label for logs and results.
        node_ids: (N,) raw id (a string) of each dense node id.
        edges: (E, 2) int64 undirected friendships, ``u < v`` in each row, rows sorted and distinct.
        features: (N, F) float32 CSR node features (row u = node u).
        feature_ids: (F,) raw id (a string) of each feature column.
        notes: what the reader did that a user should know (self-loops dropped, duplicates merged, ...).
    """

    name: str
    node_ids: np.ndarray
    edges: np.ndarray
    features: sp.csr_matrix
    feature_ids: np.ndarray
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_edges(self.edges, self.num_nodes, f"graph '{self.name}'")
        if self.features.shape[0] != self.num_nodes:
            raise RecforgeError(f"graph '{self.name}': {self.features.shape[0]} feature rows for "
                                f"{self.num_nodes} nodes")
        if len(self.feature_ids) != self.features.shape[1]:
            raise RecforgeError(f"graph '{self.name}': {len(self.feature_ids)} feature ids for "
                                f"{self.features.shape[1]} feature columns")

    @classmethod
    def from_pairs(
        cls, pairs: np.ndarray | Sequence[tuple[int, int]], num_nodes: int, *, name: str = "graph",
        listing: Listing = "once", features: sp.spmatrix | None = None,
    ) -> SocialGraph:
        """A graph from ``(M, 2)`` dense node pairs, canonicalised as a reader does (module docstring).

        Without ``features`` every node gets an empty feature row (F = 0).
        """
        array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        if len(array) and (array.min() < 0 or array.max() >= num_nodes):
            raise RecforgeError(f"graph '{name}': node ids must lie in [0, {num_nodes})")
        node_ids = np.arange(num_nodes).astype(str)
        edges, notes = undirected_edges(array, num_nodes, listing=listing, source=name, node_ids=node_ids)
        matrix = sp.csr_matrix((num_nodes, 0), dtype=np.float32) if features is None else sp.csr_matrix(
            features, dtype=np.float32)
        return cls(name, node_ids, edges, matrix, np.arange(matrix.shape[1]).astype(str),
                   [*notes, *_isolated_note(edges, num_nodes)])

    @property
    def num_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def num_features(self) -> int:
        return int(self.features.shape[1])

    def degrees(self) -> np.ndarray:
        """(N,) int64 number of friends of each node."""
        return np.bincount(self.edges.ravel(), minlength=self.num_nodes).astype(np.int64)

    def isolated_nodes(self) -> np.ndarray:
        """Dense ids of the nodes without a friendship (kept in the graph, see the notes)."""
        return np.flatnonzero(self.degrees() == 0)

    def adjacency(self) -> sp.csr_matrix:
        """(N, N) symmetric binary float32 CSR of all friendships."""
        return symmetric_adjacency(self.edges, self.num_nodes)

    def summary(self) -> dict[str, object]:
        degrees = self.degrees()
        return {
            "name": self.name,
            "nodes": self.num_nodes,
            "friendships (undirected)": self.num_edges,
            "isolated nodes": int((degrees == 0).sum()),
            "degree (min/median/max)": (f"{int(degrees.min())}/{float(np.median(degrees)):g}/"
                                        f"{int(degrees.max())}" if len(degrees) else "-"),
            "features": self.num_features,
            "feature entries": int(self.features.nnz),
        }


def symmetric_adjacency(edges: np.ndarray, num_nodes: int) -> sp.csr_matrix:
    """(N, N) binary float32 CSR with both (u, v) and (v, u) for every row of ``edges`` (E, 2)."""
    rows = np.concatenate([edges[:, 0], edges[:, 1]])
    cols = np.concatenate([edges[:, 1], edges[:, 0]])
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(num_nodes, num_nodes))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix


def undirected_edges(
    pairs: np.ndarray, num_nodes: int, *, listing: Listing, source: str | Path,
    node_ids: np.ndarray, line_numbers: np.ndarray | None = None, fields: tuple[str, str] = ("from", "to"),
) -> tuple[np.ndarray, list[str]]:
    """The distinct undirected edges ``(E, 2)`` (``u < v``, sorted) of dense ``pairs`` (M, 2), and notes.

    Self-loops are dropped, repeated friendships merged, both counted in the notes. With ``listing``
    ``"both"`` a pair without its reverse is a :class:`DataFormatError` at its line (``line_numbers``:
    the file line of each pair, ``node_ids``: raw ids for the message).
    """
    if listing not in ("once", "both"):
        raise ConfigError(f"listing must be 'once' or 'both', got {listing!r}")
    notes: list[str] = []
    label = Path(source).name if isinstance(source, Path) else str(source)
    loops = pairs[:, 0] == pairs[:, 1]
    if loops.any():
        notes.append(f"{label}: {int(loops.sum())} self-loops (u, u) dropped")
    rows = np.flatnonzero(~loops)
    tail, head = pairs[rows, 0], pairs[rows, 1]
    directed = np.unique(tail * num_nodes + head)
    repeated = len(rows) - len(directed)
    low, high = np.minimum(tail, head), np.maximum(tail, head)
    undirected = np.unique(low * num_nodes + high)
    if listing == "once":
        if repeated:
            notes.append(f"{label}: {repeated} rows repeat an earlier (u, v) row; kept once")
        reversed_pairs = len(directed) - len(undirected)
        if reversed_pairs:
            notes.append(f"{label}: {reversed_pairs} friendships are listed in both directions though "
                         "the file lists each once; (u, v) and (v, u) taken as one undirected friendship")
    else:
        if repeated:
            notes.append(f"{label}: {repeated} rows repeat an earlier (u, v) row; kept once")
        reverse = head * num_nodes + tail
        position = np.searchsorted(directed, reverse).clip(max=max(len(directed) - 1, 0))
        one_way = np.flatnonzero(directed[position] != reverse) if len(directed) else np.empty(0, np.int64)
        if len(one_way):
            first = int(one_way[0])
            line = None if line_numbers is None else int(line_numbers[rows[first]])
            a, b = node_ids[tail[first]], node_ids[head[first]]
            raise DataFormatError(
                source,
                f"friendship ({a}, {b}) has no reverse ({b}, {a}); {len(one_way)} of {len(directed)} "
                "listed pairs are one-way, but this file must list every undirected friendship in both "
                "directions (a one-way pair is a follow, not a mutual friendship); read it with "
                "listing='once' to take every pair as an undirected friendship",
                line=line, field=None if line is None else fields[0],
            )
    edges = np.stack([undirected // num_nodes, undirected % num_nodes], axis=1) if num_nodes else \
        np.empty((0, 2), dtype=np.int64)
    return edges.astype(np.int64), notes


def graph_fingerprint(graph: SocialGraph) -> str:
    """sha256 (16 hex digits) of the node count and the edges: two graphs with the same fingerprint
    split alike."""
    digest = hashlib.sha256(np.array([graph.num_nodes], dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(graph.edges, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


# --- readers -----------------------------------------------------------------------------------------


def read_twitch(directory: str | Path, country: str, *, num_features: int | None = TWITCH_NUM_FEATURES
                ) -> SocialGraph:
    """One MUSAE Twitch country graph: ``<C>_edges.csv`` (``from,to``) and ``<C>_features.json``.

    The features file defines the nodes (its keys are the node ids; dense id = rank of the numeric
    id, the identity for the published files); raw node ids are those ids as strings. An edge whose
    endpoint has no features row is a :class:`DataFormatError`: the two files describe other nodes.
    A node with features but no friendship is kept (isolated, counted). Features are binary
    (the games a user played): a game repeated in a node's list counts once (noted), and the
    columns are the shared vocabulary ``0..num_features-1`` (``None``: the largest id used + 1).
    ``<C>_target.csv`` (labels, Twitch ids) is not read.
    """
    code = str(country).upper()
    if code not in TWITCH_COUNTRIES:
        raise UnknownNameError("Twitch country", str(country), list(TWITCH_COUNTRIES))
    directory = Path(directory)
    features_path = resolve_data_file(directory / f"{code}_features.json")
    edges_path = resolve_data_file(directory / f"{code}_edges.csv")
    raw_nodes, features, notes = _read_game_features(features_path, num_features)
    columns, line_numbers = _read_rows(edges_path, ("from", "to"), delimiter=",", header=True)
    raw_pairs = np.stack([_integers(column, edges_path, line_numbers, name)
                          for column, name in zip(columns, ("from", "to"), strict=True)], axis=1)
    dense = np.searchsorted(raw_nodes, raw_pairs).clip(max=len(raw_nodes) - 1)
    unknown = raw_nodes[dense] != raw_pairs
    if unknown.any():
        row, side = (int(i) for i in np.argwhere(unknown)[0])
        raise DataFormatError(
            edges_path,
            f"node {int(raw_pairs[row, side])} has no row in {features_path.name} "
            f"({len(raw_nodes):,} nodes, ids {int(raw_nodes[0])}..{int(raw_nodes[-1])}); "
            f"{int(unknown.any(axis=1).sum()):,} edges name such nodes: the edge list and the features "
            "file do not describe the same nodes",
            line=int(line_numbers[row]), field=("from", "to")[side],
        )
    node_ids = raw_nodes.astype(str)
    edges, edge_notes = undirected_edges(dense, len(raw_nodes), listing="once", source=edges_path,
                                         node_ids=node_ids, line_numbers=line_numbers)
    return SocialGraph(f"twitch-{code.lower()}", node_ids, edges, features,
                       np.arange(features.shape[1]).astype(str),
                       [*edge_notes, *notes, *_isolated_note(edges, len(raw_nodes))])


def read_lastfm_social(
    directory: str | Path, *, listens: Sequence[str] = ("data1.txt", "test1.txt"),
    transform: str = "log1p",
) -> SocialGraph:
    """HetRec-2011 Last.fm friendships (``trustnetwork.txt``) with listening counts as node features.

    Nodes are the users in the friendship file or the ``listens`` files (``user<TAB>artist<TAB>count``,
    LightGCN-PyTorch's train and test halves by default: a node's features are all its listening,
    the user-artist split is not a friend split); dense id = rank of the numeric id (raw id - 1 for
    the published 1-based ids). Feature columns are the artists that appear (raw artist ids, sorted).
    ``trustnetwork`` lists every friendship in both directions; a one-way pair is an error.

    ``transform``: ``"log1p"`` (default): ``log(1 + count)``; counts run from 1 to over 300,000 with
    a median near 260, so raw counts would let a few heavy listeners dominate a linear projection,
    while log1p keeps every listened artist visible (values about 0.7..12.7). ``"counts"``: the raw
    counts; ``"binary"``: 1 for every listened artist. A user with no listening has an empty row.
    """
    if isinstance(listens, str):
        raise ConfigError(
            f"read_lastfm_social: listens must be a list of file names, got the string {listens!r}")
    if transform not in LASTFM_TRANSFORMS:
        raise UnknownNameError("listening-count transform", str(transform), list(LASTFM_TRANSFORMS))
    directory = Path(directory)
    trust_path = resolve_data_file(directory / "trustnetwork.txt")
    columns, trust_lines = _read_rows(trust_path, ("user_id", "friend_id"), delimiter="\t", header=False)
    raw_pairs = np.stack([_integers(column, trust_path, trust_lines, name)
                          for column, name in zip(columns, ("user_id", "friend_id"), strict=True)], axis=1)
    listen_users, listen_artists, listen_counts, notes = [], [], [], []
    for file_name in listens:
        path = resolve_data_file(directory / file_name)
        (users, artists, counts), lines = _read_rows(path, ("user_id", "artist_id", "count"), delimiter="\t",
                                                     header=False)
        listen_users.append(_integers(users, path, lines, "user_id"))
        listen_artists.append(_integers(artists, path, lines, "artist_id"))
        values, floats = _counts(counts, path, lines)
        listen_counts.append(values)
        if len(floats):
            notes.append(f"{path.name}: {len(floats)} counts are written as floats (e.g. {floats[0]!r}): "
                         "read as written, with the precision written")
    user = np.concatenate(listen_users) if listen_users else np.empty(0, dtype=np.int64)
    artist = np.concatenate(listen_artists) if listen_artists else np.empty(0, dtype=np.int64)
    count = np.concatenate(listen_counts) if listen_counts else np.empty(0, dtype=np.float64)
    raw_nodes = np.unique(np.concatenate([raw_pairs.ravel(), user]))
    raw_artists = np.unique(artist)
    rows, cols = np.searchsorted(raw_nodes, user), np.searchsorted(raw_artists, artist)
    pair_key = rows * max(len(raw_artists), 1) + cols
    repeated = len(pair_key) - len(np.unique(pair_key))
    if repeated:
        notes.append(
            f"{repeated} listening rows repeat an earlier (user, artist) pair; their counts are summed")
    matrix = sp.csr_matrix((count, (rows, cols)), shape=(len(raw_nodes), len(raw_artists)), dtype=np.float64)
    matrix.sum_duplicates()
    matrix.sort_indices()
    if transform == "log1p":
        matrix.data = np.log1p(matrix.data)
    elif transform == "binary":
        matrix.data[:] = 1.0
    features = sp.csr_matrix(matrix, dtype=np.float32)
    without = int((np.diff(features.indptr) == 0).sum())
    if without:
        notes.append(f"{without} users have no listening: their feature rows are empty")
    notes.append(f"features: listening counts over {len(raw_artists):,} artists, transform '{transform}'")
    node_ids = raw_nodes.astype(str)
    edges, edge_notes = undirected_edges(
        np.searchsorted(raw_nodes, raw_pairs), len(raw_nodes), listing="both", source=trust_path,
        node_ids=node_ids, line_numbers=trust_lines, fields=("user_id", "friend_id"))
    return SocialGraph("lastfm-social", node_ids, edges, features, raw_artists.astype(str),
                       [*edge_notes, *notes, *_isolated_note(edges, len(raw_nodes))])


def _read_game_features(path: Path, num_features: int | None) -> tuple[np.ndarray, sp.csr_matrix, list[str]]:
    """Sorted raw node ids, the (N, F) binary feature CSR and notes from a ``{"node": [feature, ...]}``
    JSON file."""
    if num_features is not None and (isinstance(num_features, bool) or not isinstance(num_features, int)
                                     or num_features < 1):
        raise ConfigError(f"read_twitch: num_features must be a positive int or None, got {num_features!r}")
    try:
        pairs = json.loads(read_text(path), object_pairs_hook=lambda items: items)
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"not valid JSON ({error.msg})", line=error.lineno) from error
    if not isinstance(pairs, list) or not all(isinstance(item, tuple) for item in pairs):
        raise DataFormatError(path, 'expected one JSON object {"node_id": [feature_id, ...], ...}')
    if not pairs:
        raise DataFormatError(path, "no nodes: the JSON object is empty")
    keys = [key for key, _ in pairs]
    bad_key = next((key for key in keys if not (key.isascii() and key.isdigit()) or len(key) > 18), None)
    if bad_key is not None:
        raise DataFormatError(path, f"a node id must be a non-negative integer, got {bad_key!r}",
                              field="node_id")
    raw = np.array([int(key) for key in keys], dtype=np.int64)
    order = np.argsort(raw, kind="stable")
    ordered = raw[order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(repeated):
        raise DataFormatError(path, f"node {int(ordered[repeated[0]])} has more than one features entry",
                              field="node_id")
    lists = [value for _, value in pairs]
    bad_list = next((i for i, value in enumerate(lists) if not isinstance(value, list)), None)
    if bad_list is not None:
        raise DataFormatError(path, f"expected a list of feature ids, got {type(lists[bad_list]).__name__}",
                              field=f"node {keys[bad_list]}")
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = list(chain.from_iterable(lists))
    not_int = next((i for i, value in enumerate(flat) if type(value) is not int), None)
    owner = np.repeat(np.arange(len(lists)), lengths)
    if not_int is not None:
        raise DataFormatError(path, f"a feature id must be an integer, got {flat[not_int]!r}",
                              field=f"node {keys[int(owner[not_int])]}")
    feature = np.array(flat, dtype=np.int64)
    width = num_features if num_features is not None else int(feature.max(initial=-1)) + 1
    outside = np.flatnonzero((feature < 0) | (feature >= width))
    if len(outside):
        index = int(outside[0])
        raise DataFormatError(
            path, f"feature id {int(feature[index])} is outside the vocabulary 0..{width - 1} "
            "(pass num_features=None to size it from the file)", field=f"node {keys[int(owner[index])]}")
    rank = np.empty(len(raw), dtype=np.int64)
    rank[order] = np.arange(len(raw))
    matrix = sp.csr_matrix((np.ones(len(feature), dtype=np.float32), (rank[owner], feature)),
                           shape=(len(raw), width))
    matrix.sum_duplicates()
    notes = []
    repeats = len(feature) - matrix.nnz
    if repeats:
        notes.append(f"{path.name}: {repeats} feature ids repeated within a node's list counted once "
                     "(features are binary)")
    matrix.data[:] = 1.0
    empty = int((lengths == 0).sum())
    if empty:
        notes.append(f"{path.name}: {empty} nodes have no features (empty rows)")
    return ordered, matrix, notes


def _read_rows(
    path: Path, names: tuple[str, ...], *, delimiter: str, header: bool
) -> tuple[list[np.ndarray], np.ndarray]:
    """The columns (str arrays) of a delimited text file with ``len(names)`` fields per non-blank line,
    and the 1-based file line of each row. With ``header`` the first non-blank line is a header of
    names (not checked against ``names``, but it must not be data)."""
    lines = read_text(path).split("\n")
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if header:
        if not numbered:
            raise DataFormatError(path, f"empty file: expected a header '{delimiter.join(names)}' and rows")
        number, first = numbered.pop(0)
        fields = [value.strip() for value in first.split(delimiter)]
        if len(fields) != len(names) or any(value.isdigit() for value in fields):
            raise DataFormatError(path, f"expected a header of {len(names)} names like "
                                  f"'{delimiter.join(names)}', got {first!r}", line=number)
    if not numbered:
        raise DataFormatError(path, f"no rows: expected lines of '{delimiter.join(names)}'")
    split = [line.split(delimiter) for _, line in numbered]
    lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
    wrong = np.flatnonzero(lengths != len(names))
    if len(wrong):
        number, line = numbered[int(wrong[0])]
        shown = "tab" if delimiter == "\t" else repr(delimiter)
        raise DataFormatError(path, f"expected {len(names)} {shown}-separated fields "
                              f"({', '.join(names)}), got {int(lengths[wrong[0]])}: {line!r}", line=number)
    table = np.char.strip(np.array(split, dtype=str))
    line_numbers = np.array([number for number, _ in numbered], dtype=np.int64)
    return [table[:, column] for column in range(len(names))], line_numbers


def _integers(column: np.ndarray, path: Path, line_numbers: np.ndarray, name: str) -> np.ndarray:
    """int64 values of a str column of non-negative integers; else an error at the first bad row."""
    ok = np.char.isdigit(column) & (np.char.str_len(column) <= 18)
    if not ok.all():
        row = int(np.flatnonzero(~ok)[0])
        raise DataFormatError(path, f"expected a non-negative integer id, got {str(column[row])!r}",
                              line=int(line_numbers[row]), field=name)
    return column.astype(np.int64)


def _counts(column: np.ndarray, path: Path, line_numbers: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Listening counts (float64, finite, >= 0) and the counts written as floats (``3.2466e+05``)."""
    plain = np.char.isdigit(column)
    values = np.zeros(len(column), dtype=np.float64)
    values[plain] = column[plain].astype(np.float64)
    for row in np.flatnonzero(~plain):  # only the few counts written as 3.2466e+05 take this path
        try:
            values[row] = float(column[row])
        except ValueError:
            values[row] = np.nan
        if not np.isfinite(values[row]) or values[row] < 0:
            raise DataFormatError(path, f"expected a non-negative listening count, got {str(column[row])!r}",
                                  line=int(line_numbers[row]), field="count")
    return values, [str(value) for value in column[~plain]]


def _isolated_note(edges: np.ndarray, num_nodes: int) -> list[str]:
    isolated = num_nodes - len(np.unique(edges))
    return [f"{isolated} nodes have no friendship (isolated); kept"] if isolated else []


# --- named datasets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SocialDatasetSpec:
    """A named friend graph: a one-line description, its directory under the data root, its reader."""

    description: str
    directory: str
    load: Callable[..., SocialGraph]
    options: tuple[str, ...] = ()


def _twitch(country: str) -> Callable[..., SocialGraph]:
    def load(directory: Path) -> SocialGraph:
        return read_twitch(directory, country)

    return load


_TWITCH_COUNTS = {"DE": (9_498, 153_138), "ENGB": (7_126, 35_324), "ES": (4_648, 59_382),
                  "FR": (6_549, 112_666), "PTBR": (1_912, 31_299), "RU": (4_385, 37_304)}

SOCIAL_DATASETS: dict[str, SocialDatasetSpec] = {
    **{
        f"twitch-{code.lower()}": SocialDatasetSpec(
            f"MUSAE Twitch {code} friendships: {nodes:,} users, {edges:,} undirected friendships, games "
            f"played as binary features (shared vocabulary of {TWITCH_NUM_FEATURES:,})",
            "musae-twitch", _twitch(code))
        for code, (nodes, edges) in _TWITCH_COUNTS.items()
    },
    "lastfm-social": SocialDatasetSpec(
        "HetRec-2011 Last.fm friendships: 1,892 users, 12,717 undirected friendships, listening counts "
        "over 4,489 artists as features (log1p by default)", "lastfm-social", read_lastfm_social,
        ("listens", "transform")),
}


def load_social(name: str, root: str | Path | None = None, **options: Any) -> SocialGraph:
    """Read the friend graph registered as ``name`` (a key of :data:`SOCIAL_DATASETS`) under the
    data root, found as :func:`~recforge.data.registry.resolve_data_root` finds it."""
    spec = SOCIAL_DATASETS.get(name)
    if spec is None:
        raise UnknownNameError("social dataset", name, list(SOCIAL_DATASETS))
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        takes = f"takes only {', '.join(spec.options)}" if spec.options else "takes no options"
        raise ConfigError(f"social dataset '{name}' {takes}; got {', '.join(unknown)}")
    directory = resolve_data_root(root) / spec.directory
    if not directory.is_dir():
        raise RecforgeError(f"social dataset '{name}': {directory} does not exist (is the data root right?)")
    return spec.load(directory, **options)


def social_dataset(graph: SocialGraph) -> Dataset:
    """``graph`` as a recforge :class:`~recforge.data.dataset.Dataset` whose users and items are the
    same nodes: every friendship is two interactions, (u, v) and (v, u), so the user-item machinery
    (the ``links`` split, the evaluator, MF/LightGCN/filters on the friendship matrix, serving) reads
    it unchanged. The node features are ``user_features["features"]`` (N, F) CSR."""
    edges = graph.edges
    users = np.concatenate([edges[:, 0], edges[:, 1]]).astype(np.int64)
    items = np.concatenate([edges[:, 1], edges[:, 0]]).astype(np.int64)
    ids = np.asarray(graph.node_ids).astype(str)
    return Dataset(
        name=graph.name,
        interactions=Interactions(users=users, items=items),
        user_ids=ids,
        item_ids=ids.copy(),
        user_features={"features": graph.features},  # sparse rows: indexable like the arrays
        notes=list(graph.notes),
    )


def align_friend_ids(dataset: Dataset) -> Dataset:
    """``dataset`` with its items renumbered to match its users, for a friend list read from a
    plain file (where a reader numbers users and items apart). The two id sets must be one set of
    people; a named friend graph (:func:`social_dataset`) is aligned already and returned as is."""
    users, items = np.asarray(dataset.user_ids).astype(str), np.asarray(dataset.item_ids).astype(str)
    if np.array_equal(users, items):
        return dataset
    order = np.argsort(users)
    position = np.searchsorted(users[order], items).clip(max=len(users) - 1)
    known = users[order][position] == items
    if len(users) != len(items) or not known.all():
        unknown = items[~known][:1].tolist() if not known.all() else []
        example = f" (e.g. '{unknown[0]}' is an item and no user)" if unknown else ""
        raise ConfigError(
            f"split 'links': dataset '{dataset.name}' is not a user-user graph: its {len(users)} users and "
            f"{len(items)} items are not one set of people{example}; list every friendship among users"
        )
    renumber = order[position]
    inter = dataset.interactions
    moved = Interactions(inter.users, renumber[inter.items], inter.timestamps, inter.ratings)
    return replace(dataset, interactions=moved, item_ids=dataset.user_ids.copy(), item_titles=None,
                   item_features={})


# --- the link split ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkSplit:
    """Train / valid / test friendships of one graph (module docstring: how they are drawn).

    Attributes:
        num_nodes: N; every node is a query user and a candidate.
        train_edges / valid_edges / test_edges: (E_f, 2) int64, ``u < v``, sorted; no friendship in
            two folds.
        protocol: one line saying how the split was made.
        new_users: for a :func:`new_user_split`, the users made new (sorted); else None.
        provenance: what it was made from (graph fingerprint, parameters); not in the content hash.
    """

    num_nodes: int
    train_edges: np.ndarray
    valid_edges: np.ndarray
    test_edges: np.ndarray
    protocol: str
    new_users: np.ndarray | None = None
    provenance: dict[str, object] | None = None

    def __post_init__(self) -> None:
        for name in LINK_FOLDS:
            _check_edges(self.edges(name), self.num_nodes, f"link split {name} edges")
        keys = np.concatenate([self.edges(name) @ np.array([self.num_nodes, 1]) for name in LINK_FOLDS])
        if len(np.unique(keys)) != len(keys):
            raise RecforgeError("link split: a friendship lies in two folds")
        if self.new_users is not None:
            users = self.new_users
            if users.ndim != 1 or (len(users) and (users.min() < 0 or users.max() >= self.num_nodes
                                                   or (np.diff(users) <= 0).any())):
                raise RecforgeError(
                    f"link split: new_users must be sorted distinct ids in [0, {self.num_nodes})")

    def edges(self, fold: str) -> np.ndarray:
        """(E_f, 2) friendships of ``fold`` (train, valid or test)."""
        if fold not in LINK_FOLDS:
            raise ValueError(f"fold must be one of {LINK_FOLDS}, got {fold!r}")
        return getattr(self, f"{fold}_edges")

    def adjacency(self, *folds: str) -> sp.csr_matrix:
        """(N, N) symmetric binary CSR of the friendships of ``folds`` together."""
        edges = np.concatenate([self.edges(fold) for fold in folds]).reshape(-1, 2)
        return symmetric_adjacency(edges, self.num_nodes)

    @cached_property
    def train_adjacency(self) -> sp.csr_matrix:
        """The message-passing graph: training friendships only, both directions."""
        return self.adjacency("train")

    def history(self, fold: str) -> sp.csr_matrix:
        """What is known before ``fold``: the graph it is scored from and the friends masked as seen
        (train for valid; train + valid for test)."""
        if fold == "valid":
            return self.train_adjacency
        if fold == "test":
            return self.adjacency("train", "valid")
        raise ValueError(f"fold must be 'valid' or 'test', got {fold!r}")

    def positives(self, fold: str) -> sp.csr_matrix:
        """(N, N) CSR, row u = the friends u must retrieve in ``fold``; symmetric, so every held-out
        friendship is queried from both endpoints."""
        if fold not in ("valid", "test"):
            raise ValueError(f"fold must be 'valid' or 'test', got {fold!r}")
        return self.adjacency(fold)

    def query_users(self, fold: str) -> np.ndarray:
        """Users with at least one friend to retrieve in ``fold`` (sorted)."""
        if fold not in ("valid", "test"):
            raise ValueError(f"fold must be 'valid' or 'test', got {fold!r}")
        return np.unique(self.edges(fold))

    def degrees(self, *folds: str) -> np.ndarray:
        """(N,) friends per user over ``folds``."""
        edges = np.concatenate([self.edges(f) for f in folds]).reshape(-1, 2)
        return np.bincount(edges.ravel(), minlength=self.num_nodes).astype(np.int64)

    @cached_property
    def content_hash(self) -> str:
        """sha256 (16 hex digits) over N, each fold's edges in order, and the new users if any."""
        digest = hashlib.sha256(np.array([self.num_nodes], dtype=np.int64).tobytes())
        for name in LINK_FOLDS:
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(self.edges(name), dtype=np.int64).tobytes())
        if self.new_users is not None:
            digest.update(b"new_users")
            digest.update(np.ascontiguousarray(self.new_users, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, object]:
        info: dict[str, object] = {"protocol": self.protocol, "hash": self.content_hash}
        info.update({f"{name} friendships": len(self.edges(name)) for name in LINK_FOLDS})
        if self.new_users is not None:
            info["new users"] = len(self.new_users)
        return info


def assign_edge_folds(
    edges: np.ndarray, num_nodes: int, *, valid_share: float, test_share: float, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """The fold (0 train, 1 valid, 2 test) of each edge, its owner, and how many held-out edges were
    returned to train (steps 1-3 of the module docstring). Vectorised: two sorts, no loop over users."""
    rng = _seeded("link", seed)
    count = len(edges)
    owner = edges[np.arange(count), rng.integers(0, 2, size=count)]  # draw order: coin, key, offset
    key = rng.random(count)
    offset = rng.random(num_nodes)
    owned = np.bincount(owner, minlength=num_nodes)
    order = np.lexsort((key, owner))
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count) - (np.cumsum(owned) - owned)[owner[order]]
    # 9 decimals first, so 10 * 0.7 = 7.000000000000001 counts as the exact 7 it stands for
    num_test = np.floor(np.round(owned * test_share, 9) + offset).astype(np.int64)[owner]
    num_held = np.floor(np.round(owned * (test_share + valid_share), 9) + offset).astype(np.int64)[owner]
    fold = np.full(count, _TRAIN, dtype=np.int64)
    fold[rank < num_held] = _VALID
    fold[rank < num_test] = _TEST
    # a user whose every friendship was held out gets back the one with the smallest key
    degree = np.bincount(edges.ravel(), minlength=num_nodes)
    train_degree = np.bincount(edges[fold == _TRAIN].ravel(), minlength=num_nodes)
    needy = (degree > 0) & (train_degree == 0)
    if needy.any():
        held = np.flatnonzero(fold != _TRAIN)
        users = np.concatenate([edges[held, 0], edges[held, 1]])
        rows = np.concatenate([held, held])
        chosen = needy[users]
        users, rows = users[chosen], rows[chosen]
        order = np.lexsort((key[rows], users))
        _, first = np.unique(users[order], return_index=True)
        restored = np.unique(rows[order][first])
        fold[restored] = _TRAIN
        return fold, owner, len(restored)
    return fold, owner, 0


def link_split(graph: SocialGraph, *, valid_share: float = 0.1, test_share: float = 0.1, seed: int
               ) -> LinkSplit:
    """A seeded per-user link split of ``graph`` without leakage (the rule: module docstring).

    Every friendship lies in one fold; the training adjacency holds train friendships only, in both
    directions; held-out friendships are queried from both endpoints; every user with a friend keeps
    one in train.
    """
    for label, share in (("valid_share", valid_share), ("test_share", test_share)):
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) \
                or share < 0:
            raise ConfigError(f"link split: {label} must be a finite number >= 0, got {share!r}")
    if valid_share + test_share >= 1:
        raise ConfigError(f"link split: valid_share + test_share must be < 1 (train keeps the rest), got "
                          f"{valid_share} + {test_share}")
    fold, _, restored = assign_edge_folds(graph.edges, graph.num_nodes, valid_share=valid_share,
                                          test_share=test_share, seed=seed)
    protocol = (
        f"link split {valid_share * 100:g}% valid / {test_share * 100:g}% test per user, seed {seed}: each "
        "undirected friendship in one fold, owned by a seeded endpoint holding out floor(n*share + U) of "
        f"its n (U uniform per owner); {restored} held-out friendships returned to train so every user "
        "with a friend keeps one; held-out friendships queried from both endpoints"
    )
    provenance: dict[str, object] = {"graph": graph_fingerprint(graph), "protocol": "link",
                  "params": {"seed": seed, "test_share": test_share, "valid_share": valid_share}}
    return LinkSplit(graph.num_nodes, graph.edges[fold == _TRAIN], graph.edges[fold == _VALID],
                     graph.edges[fold == _TEST], protocol, provenance=provenance)


def new_user_split(split: LinkSplit, users: np.ndarray | Sequence[int], *, keep: int = 1, seed: int
                   ) -> LinkSplit:
    """``split`` with ``users`` made new: each keeps ``keep`` seeded training friendships (``keep=0``:
    none, features only) and its other training and valid friendships move to test.

    So at test time (scored from train + valid) a new user's history is exactly what it kept, and it
    is not queried in valid. Moving (u, v) also removes a friend from v's history and adds one to v's
    positives; v is not new. An edge between two new users stays in train only if both keep it, so a
    new user may keep fewer than ``keep`` (the protocol says how many do); a user with ``keep`` or
    fewer training friendships keeps them all.
    """
    if split.new_users is not None:
        raise RecforgeError("new_user_split: this split already has new users; start from the plain split")
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
        raise ConfigError(f"new_user_split: keep must be an int >= 0, got {keep!r}")
    chosen_ids = np.unique(np.asarray(users, dtype=np.int64))
    if len(chosen_ids) and (chosen_ids[0] < 0 or chosen_ids[-1] >= split.num_nodes):
        raise RecforgeError(f"new_user_split: user ids must lie in [0, {split.num_nodes})")
    rng = _seeded("new_user", seed)
    chosen = np.zeros(split.num_nodes, dtype=bool)
    chosen[chosen_ids] = True
    train = split.train_edges
    key = rng.random(len(train))
    incident = np.concatenate([train[:, 0], train[:, 1]])
    rows = np.concatenate([np.arange(len(train)), np.arange(len(train))])
    mine = chosen[incident]
    incident, rows = incident[mine], rows[mine]
    order = np.lexsort((key[rows], incident))
    counts = np.bincount(incident, minlength=split.num_nodes)
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - (np.cumsum(counts) - counts)[incident[order]]
    hide = np.zeros(len(train), dtype=bool)
    hide[rows[rank >= keep]] = True
    valid = split.valid_edges
    move_valid = chosen[valid].any(axis=1)
    kept_train = train[~hide]
    test = _sorted_edges(np.concatenate([split.test_edges, train[hide], valid[move_valid]]), split.num_nodes)
    kept = np.bincount(kept_train.ravel(), minlength=split.num_nodes)[chosen_ids]
    below = int((kept < np.minimum(keep, counts[chosen_ids])).sum())
    protocol = (
        f"{split.protocol}; then {len(chosen_ids)} new users keep {keep} seeded training friendships each "
        f"(seed {seed}), their other {int(hide.sum())} training and {int(move_valid.sum())} valid "
        f"friendships moved to test; {below} new users keep fewer (an edge between two new users stays "
        "only if both keep it)"
    )
    provenance = None if split.provenance is None else {
        **split.provenance, "new_users": {"hash": _array_hash(chosen_ids), "keep": keep, "seed": seed}}
    return LinkSplit(split.num_nodes, kept_train, valid[~move_valid], test, protocol, new_users=chosen_ids,
                     provenance=provenance)


def cold_start_slices(split: LinkSplit, fold: str = "test", *, max_degree: int = 2) -> dict[str, np.ndarray]:
    """Query users of ``fold`` sliced for per-slice metrics (each a sorted id array).

    ``"all"``: every user with a friend to retrieve in ``fold``; ``"degree<=D"`` / ``"degree>D"``: those
    with at most / more than ``max_degree`` friends in the graph the fold is scored from
    (:meth:`LinkSplit.history`: train for valid, train + valid for test); for a
    :func:`new_user_split`, also ``"new-users"`` and ``"established-users"``.
    """
    if isinstance(max_degree, bool) or not isinstance(max_degree, int) or max_degree < 0:
        raise ConfigError(f"cold_start_slices: max_degree must be an int >= 0, got {max_degree!r}")
    queries = split.query_users(fold)
    history = split.degrees("train") if fold == "valid" else split.degrees("train", "valid")
    cold = history[queries] <= max_degree
    slices = {"all": queries, f"degree<={max_degree}": queries[cold], f"degree>{max_degree}": queries[~cold]}
    if split.new_users is not None:
        new = np.isin(queries, split.new_users)
        slices["new-users"] = queries[new]
        slices["established-users"] = queries[~new]
    return slices


# --- helpers -----------------------------------------------------------------------------------------


def _check_edges(edges: np.ndarray, num_nodes: int, what: str) -> None:
    if not isinstance(edges, np.ndarray) or edges.ndim != 2 or edges.shape[1] != 2 or edges.dtype != np.int64:
        raise RecforgeError(f"{what}: expected an (E, 2) int64 array")
    if not len(edges):
        return
    if edges[:, 0].min() < 0 or edges[:, 1].max() >= num_nodes or (edges[:, 0] >= edges[:, 1]).any():
        raise RecforgeError(f"{what}: every row must be (u, v) with 0 <= u < v < {num_nodes}")
    keys = edges[:, 0] * num_nodes + edges[:, 1]
    if (np.diff(keys) <= 0).any():
        raise RecforgeError(f"{what}: rows must be sorted and distinct")


def _sorted_edges(edges: np.ndarray, num_nodes: int) -> np.ndarray:
    edges = edges.reshape(-1, 2)
    return edges[np.argsort(edges[:, 0] * num_nodes + edges[:, 1], kind="stable")]


def _array_hash(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype=np.int64).tobytes()).hexdigest()[:16]


def _seeded(what: str, seed: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(
            f"{what} split: needs an int seed >= 0 so the split can be reproduced, got {seed!r}")
    # salted by the protocol, so link_split and new_user_split with one seed draw independently
    return np.random.default_rng([int(seed), zlib.crc32(what.encode())])
