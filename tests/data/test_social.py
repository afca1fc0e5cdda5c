"""Tests of friend graphs: the container, the Twitch and Last.fm readers, the link split, cold start."""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recforge.data.social import (
    SOCIAL_DATASETS,
    TWITCH_COUNTRIES,
    LinkSplit,
    SocialGraph,
    assign_edge_folds,
    cold_start_slices,
    link_split,
    load_social,
    new_user_split,
    read_lastfm_social,
    read_twitch,
)
from recforge.errors import ConfigError, DataFormatError, RecforgeError, UnknownNameError


def random_graph(num_nodes: int, num_pairs: int, seed: int) -> SocialGraph:
    rng = np.random.default_rng(seed)
    return SocialGraph.from_pairs(rng.integers(0, num_nodes, size=(num_pairs, 2)), num_nodes, name="random")


def complete_graph(num_nodes: int) -> SocialGraph:
    pairs = [(u, v) for u in range(num_nodes) for v in range(u + 1, num_nodes)]
    return SocialGraph.from_pairs(pairs, num_nodes, name=f"K{num_nodes}")


def edge_set(edges: np.ndarray) -> set[tuple[int, int]]:
    return {(int(u), int(v)) for u, v in edges}


# --- the container -----------------------------------------------------------------------------------


def test_from_pairs_canonicalises_and_counts():
    # 0-1 twice, once reversed, a self-loop on 3, node 4 without a friend
    graph = SocialGraph.from_pairs([(1, 0), (0, 1), (0, 1), (2, 1), (3, 3), (0, 2)], 5, name="toy")
    np.testing.assert_array_equal(graph.edges, [[0, 1], [0, 2], [1, 2]])
    assert graph.edges.dtype == np.int64
    assert graph.notes == [
        "toy: 1 self-loops (u, u) dropped",
        "toy: 1 rows repeat an earlier (u, v) row; kept once",
        "toy: 1 friendships are listed in both directions though the file lists each once; (u, v) and "
        "(v, u) taken as one undirected friendship",
        "2 nodes have no friendship (isolated); kept",
    ]
    np.testing.assert_array_equal(graph.isolated_nodes(), [3, 4])
    np.testing.assert_array_equal(graph.degrees(), [2, 2, 2, 0, 0])
    adjacency = graph.adjacency()
    assert (adjacency != adjacency.T).nnz == 0
    assert adjacency.nnz == 6
    assert graph.features.shape == (5, 0)


def test_from_pairs_listed_both_ways():
    graph = SocialGraph.from_pairs([(0, 1), (1, 0), (1, 2), (2, 1), (2, 1)], 3, listing="both", name="t")
    np.testing.assert_array_equal(graph.edges, [[0, 1], [1, 2]])
    assert graph.notes == ["t: 1 rows repeat an earlier (u, v) row; kept once"]
    with pytest.raises(DataFormatError, match=r"\(1, 2\) has no reverse \(2, 1\); 1 of 3 listed pairs"):
        SocialGraph.from_pairs([(0, 1), (1, 0), (1, 2)], 3, listing="both")


def test_container_refuses_a_malformed_edge_array():
    features = sp.csr_matrix((3, 0), dtype=np.float32)
    ids = np.array(["a", "b", "c"])
    with pytest.raises(RecforgeError, match=r"0 <= u < v < 3"):
        SocialGraph("g", ids, np.array([[1, 0]], dtype=np.int64), features, np.array([], dtype=str))
    with pytest.raises(RecforgeError, match="sorted and distinct"):
        SocialGraph("g", ids, np.array([[0, 1], [0, 1]], dtype=np.int64), features, np.array([], dtype=str))
    with pytest.raises(RecforgeError, match="2 feature rows for 3 nodes"):
        SocialGraph("g", ids, np.empty((0, 2), np.int64), sp.csr_matrix((2, 0)), np.array([], dtype=str))
    with pytest.raises(RecforgeError, match=r"must lie in \[0, 3\)"):
        SocialGraph.from_pairs([(0, 3)], 3)


# --- the link split ----------------------------------------------------------------------------------


def check_no_leakage(graph: SocialGraph, split: LinkSplit) -> None:
    folds = [edge_set(split.edges(name)) for name in ("train", "valid", "test")]
    assert not (folds[0] & folds[1])
    assert not (folds[0] & folds[2])
    assert not (folds[1] & folds[2])
    assert folds[0] | folds[1] | folds[2] == edge_set(graph.edges)
    train = split.train_adjacency
    assert (train != train.T).nnz == 0
    assert train.diagonal().sum() == 0
    assert train.nnz == 2 * len(split.train_edges)
    present = {(int(u), int(v)) for u, v in zip(*train.nonzero(), strict=True)}
    for name in ("valid", "test"):
        held = split.edges(name)
        assert not any((u, v) in present or (v, u) in present for u, v in edge_set(held))  # both ways gone
        positives = split.positives(name)
        assert (positives != positives.T).nnz == 0
        assert positives.nnz == 2 * len(held)
    history = split.history("test")
    assert (history != split.adjacency("train", "valid")).nnz == 0
    assert split.history("valid") is split.train_adjacency
    has_friend = graph.degrees() > 0
    assert (split.degrees("train")[has_friend] >= 1).all()  # every user with a friend keeps one


def test_split_has_no_leakage_and_keeps_a_friend_per_user():
    graph = random_graph(300, 2_500, seed=1)
    split = link_split(graph, valid_share=0.1, test_share=0.2, seed=7)
    check_no_leakage(graph, split)
    assert 0.17 < len(split.test_edges) / graph.num_edges < 0.21
    assert 0.08 < len(split.valid_edges) / graph.num_edges < 0.11


def test_split_is_seeded():
    graph = random_graph(200, 1_500, seed=2)
    first = link_split(graph, valid_share=0.1, test_share=0.1, seed=3)
    again = link_split(graph, valid_share=0.1, test_share=0.1, seed=3)
    other = link_split(graph, valid_share=0.1, test_share=0.1, seed=4)
    assert first.content_hash == again.content_hash
    for name in ("train", "valid", "test"):
        np.testing.assert_array_equal(first.edges(name), again.edges(name))
    assert first.content_hash != other.content_hash


def test_each_owner_holds_out_its_share_within_rounding():
    # K_12: every node has 11 friends, so nobody loses them all and nothing is returned to train
    graph = complete_graph(12)
    for seed in range(5):
        fold, owner, restored = assign_edge_folds(graph.edges, 12, valid_share=0.2, test_share=0.1, seed=seed)
        assert restored == 0
        assert ((owner == graph.edges[:, 0]) | (owner == graph.edges[:, 1])).all()
        owned = np.bincount(owner, minlength=12)
        test = np.bincount(owner[fold == 2], minlength=12)
        held = np.bincount(owner[fold > 0], minlength=12)
        for n, t, h in zip(owned, test, held, strict=True):
            assert math.floor(n * 0.1) <= t <= math.ceil(n * 0.1)
            assert math.floor(round(n * 0.3, 9)) <= h <= math.ceil(round(n * 0.3, 9))


def test_an_integer_share_is_exact():
    # owners of 10 friendships hold out exactly 1 for test and 2 for valid + test: no rounding left
    graph = complete_graph(21)  # 20 friends each; owners own about 10
    fold, owner, _ = assign_edge_folds(graph.edges, 21, valid_share=0.1, test_share=0.1, seed=0)
    owned = np.bincount(owner, minlength=21)
    test = np.bincount(owner[fold == 2], minlength=21)
    exact = owned % 10 == 0
    np.testing.assert_array_equal(test[exact], owned[exact] // 10)


def test_users_with_one_friend_keep_it():
    # a star: every leaf has one friend, so no friendship can leave train
    star = SocialGraph.from_pairs([(0, leaf) for leaf in range(1, 11)], 11)
    # a matching: likewise
    matching = SocialGraph.from_pairs([(2 * k, 2 * k + 1) for k in range(10)], 20)
    for graph in (star, matching):
        split = link_split(graph, valid_share=0.3, test_share=0.3, seed=0)
        np.testing.assert_array_equal(split.train_edges, graph.edges)
        assert len(split.valid_edges) == len(split.test_edges) == 0


def test_toy_graph_by_hand():
    # triangle 0-1-2, pendant 3 on 0, 4 isolated, the pair 5-6: only triangle edges may leave train
    graph = SocialGraph.from_pairs([(0, 1), (0, 2), (1, 2), (0, 3), (5, 6)], 7)
    for seed in range(20):
        split = link_split(graph, valid_share=0.3, test_share=0.3, seed=seed)
        check_no_leakage(graph, split)
        assert {(0, 3), (5, 6)} <= edge_set(split.train_edges)
        assert split.degrees("train", "valid", "test")[4] == 0


def test_held_out_friendship_is_queried_from_both_ends():
    graph = complete_graph(8)
    split = link_split(graph, valid_share=0.2, test_share=0.2, seed=5)
    positives = split.positives("test")
    for u, v in split.test_edges:
        assert positives[u, v] == 1
        assert positives[v, u] == 1
    np.testing.assert_array_equal(split.query_users("test"), np.unique(split.test_edges))


@pytest.mark.parametrize(
    ("shares", "message"),
    [((0.5, 0.5), "must be < 1"), ((-0.1, 0.1), "valid_share must be a finite number >= 0"),
     ((0.1, float("nan")), "test_share must be a finite number >= 0")],
)
def test_split_refuses_bad_shares(shares, message):
    with pytest.raises(ConfigError, match=message):
        link_split(complete_graph(4), valid_share=shares[0], test_share=shares[1], seed=0)


def test_split_needs_an_int_seed():
    with pytest.raises(ConfigError, match="needs an int seed"):
        link_split(complete_graph(4), seed=None)  # type: ignore[arg-type]


def test_split_refuses_a_friendship_in_two_folds():
    edges = np.array([[0, 1]], dtype=np.int64)
    with pytest.raises(RecforgeError, match="a friendship lies in two folds"):
        LinkSplit(2, edges, edges, np.empty((0, 2), np.int64), "bad")


# --- cold start --------------------------------------------------------------------------------------


def hand_split() -> LinkSplit:
    """N=7: train 0-1, 0-2, 0-3, 1-2, 4-5, 5-6; valid 0-4; test 2-3, 1-6, 0-5."""
    pairs = {"train": [(0, 1), (0, 2), (0, 3), (1, 2), (4, 5), (5, 6)], "valid": [(0, 4)],
             "test": [(0, 5), (1, 6), (2, 3)]}
    arrays = {name: np.array(edges, dtype=np.int64) for name, edges in pairs.items()}
    return LinkSplit(7, arrays["train"], arrays["valid"], arrays["test"], "by hand")


def test_cold_start_slices_by_hand():
    split = hand_split()
    # history at test = train + valid: degrees 0:4, 1:2, 2:2, 3:1, 4:2, 5:2, 6:1
    # test queries: 0, 1, 2, 3, 5, 6
    slices = cold_start_slices(split, "test")
    np.testing.assert_array_equal(slices["all"], [0, 1, 2, 3, 5, 6])
    np.testing.assert_array_equal(slices["degree<=2"], [1, 2, 3, 5, 6])
    np.testing.assert_array_equal(slices["degree>2"], [0])
    assert "new-users" not in slices
    # at valid the history is train: 0 has 3 friends, 4 has 1
    valid = cold_start_slices(split, "valid", max_degree=1)
    np.testing.assert_array_equal(valid["all"], [0, 4])
    np.testing.assert_array_equal(valid["degree<=1"], [4])
    with pytest.raises(ConfigError, match="max_degree must be an int >= 0"):
        cold_start_slices(split, max_degree=-1)


def test_new_user_keeps_one_friend_and_the_rest_move_to_test():
    split = hand_split()
    new = new_user_split(split, [0], keep=1, seed=0)
    train = edge_set(new.train_edges)
    kept = {edge for edge in train if 0 in edge}
    assert len(kept) == 1
    assert kept < {(0, 1), (0, 2), (0, 3)}
    assert train - kept == {(1, 2), (4, 5), (5, 6)}
    assert len(new.valid_edges) == 0  # 0-4 moved to test: a new user is not queried in valid
    assert edge_set(new.test_edges) == {(0, 5), (1, 6), (2, 3), (0, 4)} | ({(0, 1), (0, 2), (0, 3)} - kept)
    np.testing.assert_array_equal(new.new_users, [0])
    assert new.degrees("train", "valid")[0] == 1
    slices = cold_start_slices(new, "test")
    np.testing.assert_array_equal(slices["new-users"], [0])
    np.testing.assert_array_equal(slices["established-users"], [1, 2, 3, 4, 5, 6])
    assert new.content_hash != split.content_hash
    assert new_user_split(split, [0], keep=1, seed=0).content_hash == new.content_hash


def test_new_user_with_features_only():
    new = new_user_split(hand_split(), [0, 6], keep=0, seed=0)
    assert edge_set(new.train_edges) == {(1, 2), (4, 5)}
    assert new.degrees("train", "valid")[[0, 6]].tolist() == [0, 0]
    assert "then 2 new users keep 0" in new.protocol


def test_two_new_friends_keep_at_most_one_each():
    split = link_split(complete_graph(6), valid_share=0.1, test_share=0.1, seed=0)
    new = new_user_split(split, [0, 1], keep=1, seed=1)
    assert (new.degrees("train", "valid")[[0, 1]] <= 1).all()
    check_no_leakage(complete_graph(6), new)


def test_new_user_split_refuses_bad_arguments():
    split = hand_split()
    with pytest.raises(RecforgeError, match=r"user ids must lie in \[0, 7\)"):
        new_user_split(split, [7], seed=0)
    with pytest.raises(ConfigError, match="keep must be an int >= 0"):
        new_user_split(split, [1], keep=-1, seed=0)
    with pytest.raises(RecforgeError, match="already has new users"):
        new_user_split(new_user_split(split, [1], seed=0), [2], seed=0)


# --- the Twitch reader on hand-written files ----------------------------------------------------------


def write_twitch(directory, edges: str, features: object, *, gz: bool = False) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(features) if not isinstance(features, str) else features
    if gz:
        (directory / "DE_edges.csv.gz").write_bytes(gzip.compress(edges.encode()))
        (directory / "DE_features.json.gz").write_bytes(gzip.compress(text.encode()))
    else:
        (directory / "DE_edges.csv").write_text(edges)
        (directory / "DE_features.json").write_text(text)


FEATURES = {"0": [1, 2], "1": [2, 2], "2": [3169], "3": [], "4": [0]}


def test_twitch_reader_drops_loops_and_duplicates_keeps_isolated(tmp_path):
    write_twitch(tmp_path, "from,to\n0,1\n1,2\n3,3\n0,1\n1,0\n2,0\n", FEATURES, gz=True)
    graph = read_twitch(tmp_path, "de")
    assert graph.name == "twitch-de"
    np.testing.assert_array_equal(graph.edges, [[0, 1], [0, 2], [1, 2]])
    assert graph.features.shape == (5, 3170)
    assert graph.features.dtype == np.float32
    assert graph.features.toarray()[:, [0, 1, 2, 3169]].tolist() == [
        [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]]
    assert graph.notes == [
        "DE_edges.csv.gz: 1 self-loops (u, u) dropped",
        "DE_edges.csv.gz: 1 rows repeat an earlier (u, v) row; kept once",
        "DE_edges.csv.gz: 1 friendships are listed in both directions though the file lists each once; "
        "(u, v) and (v, u) taken as one undirected friendship",
        "DE_features.json.gz: 1 feature ids repeated within a node's list counted once (features are binary)",
        "DE_features.json.gz: 1 nodes have no features (empty rows)",
        "2 nodes have no friendship (isolated); kept",
    ]
    np.testing.assert_array_equal(graph.node_ids, ["0", "1", "2", "3", "4"])


def test_twitch_node_ids_need_not_be_contiguous(tmp_path):
    write_twitch(tmp_path, "from,to\n10,30\n", {"30": [1], "10": [2], "20": [3]})
    graph = read_twitch(tmp_path, "DE", num_features=None)
    np.testing.assert_array_equal(graph.node_ids, ["10", "20", "30"])
    np.testing.assert_array_equal(graph.edges, [[0, 2]])
    assert graph.features.shape == (3, 4)
    assert graph.features[2, 1] == 1
    assert graph.features[0, 2] == 1


@pytest.mark.parametrize(
    ("edges", "features", "message"),
    [
        ("from,to\n0,1\n1,7\n", FEATURES,
         r"DE_edges.csv:3: field 'to': node 7 has no row in DE_features.json "
         r"\(5 nodes, ids 0..4\); 1 edges name such nodes"),
        ("from,to\n0,1\n1,x\n", FEATURES,
         r"DE_edges.csv:3: field 'to': expected a non-negative integer id, got 'x'"),
        ("from,to\n0,1\n-1,2\n", FEATURES,
         r"DE_edges.csv:3: field 'from': expected a non-negative integer id"),
        ("from,to\n0,1,2\n", FEATURES,
         r"DE_edges.csv:2: expected 2 ','-separated fields \(from, to\), got 3"),
        ("0,1\n1,2\n", FEATURES, r"DE_edges.csv:1: expected a header of 2 names like 'from,to', got '0,1'"),
        ("from,to\n", FEATURES, r"DE_edges.csv: no rows"),
        ("from,to\n0,1\n", {"0": [1], "1": ["a"]},
         r"field 'node 1': a feature id must be an integer, got 'a'"),
        ("from,to\n0,1\n", {"0": [1], "1": [3170]},
         r"field 'node 1': feature id 3170 is outside the vocabulary"),
        ("from,to\n0,1\n", {"0": [1], "1": 5}, r"field 'node 1': expected a list of feature ids, got int"),
        ("from,to\n0,1\n", {"0": [1], "u1": [1]},
         r"field 'node_id': a node id must be a non-negative integer"),
        ("from,to\n0,1\n", '{"0": [1], "1": [2], "1": [3]}', r"node 1 has more than one features entry"),
        ("from,to\n0,1\n", '{"0": [1], ', r"DE_features.json:1: not valid JSON"),
        ("from,to\n0,1\n", "[1, 2]", r"expected one JSON object"),
    ],
)
def test_twitch_bad_input(tmp_path, edges, features, message):
    write_twitch(tmp_path, edges, features)
    with pytest.raises(DataFormatError, match=message):
        read_twitch(tmp_path, "DE")


def test_twitch_unknown_country_and_missing_files(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown Twitch country 'XX'; choose one of: DE, ENGB"):
        read_twitch(tmp_path, "XX")
    with pytest.raises(FileNotFoundError, match=r"DE_features\.json: no such file"):
        read_twitch(tmp_path, "DE")


# --- the Last.fm reader on hand-written files ---------------------------------------------------------


def write_lastfm(directory, trust: str, train: str, test: str = "") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "trustnetwork.txt").write_text(trust)
    (directory / "data1.txt").write_text(train)
    (directory / "test1.txt").write_text(test or "1\t10\t1\r\n")


TRUST = "1\t2\r\n2\t1\r\n2\t3\r\n3\t2\r\n"


def test_lastfm_reader_by_hand(tmp_path):
    write_lastfm(tmp_path, TRUST + "3\t2\r\n", "1\t10\t3\r\n2\t20\t1.5e+01\r\n5\t10\t2\r\n", "1\t20\t7\r\n")
    graph = read_lastfm_social(tmp_path)
    np.testing.assert_array_equal(graph.node_ids, ["1", "2", "3", "5"])  # 5 listens but has no friend
    np.testing.assert_array_equal(graph.feature_ids, ["10", "20"])
    np.testing.assert_array_equal(graph.edges, [[0, 1], [1, 2]])
    np.testing.assert_allclose(graph.features.toarray(),
                               np.log1p([[3, 7], [0, 15], [0, 0], [2, 0]]).astype(np.float32), rtol=1e-6)
    assert graph.notes == [
        "trustnetwork.txt: 1 rows repeat an earlier (u, v) row; kept once",
        "data1.txt: 1 counts are written as floats (e.g. '1.5e+01'): read as written, with the precision "
        "written",
        "1 users have no listening: their feature rows are empty",
        "features: listening counts over 2 artists, transform 'log1p'",
        "1 nodes have no friendship (isolated); kept",
    ]
    counts = read_lastfm_social(tmp_path, transform="counts").features.toarray()
    assert counts.tolist() == [[3, 7], [0, 15], [0, 0], [2, 0]]
    binary = read_lastfm_social(tmp_path, transform="binary", listens=["data1.txt"]).features.toarray()
    assert binary.tolist() == [[1, 0], [0, 1], [0, 0], [1, 0]]


def test_lastfm_repeated_listening_rows_are_summed(tmp_path):
    write_lastfm(tmp_path, TRUST, "1\t10\t3\n1\t10\t4\n")
    graph = read_lastfm_social(tmp_path, transform="counts", listens=["data1.txt"])
    assert graph.features[0, 0] == 7
    assert "1 listening rows repeat an earlier (user, artist) pair; their counts are summed" in graph.notes


@pytest.mark.parametrize(
    ("trust", "train", "message"),
    [
        (TRUST + "1\t3\r\n", "1\t10\t3\n", r"trustnetwork.txt:5: field 'user_id': friendship \(1, 3\) has no "
         r"reverse \(3, 1\); 1 of 5 listed pairs are one-way"),
        ("1\t2\n2\tq\n", "1\t10\t3\n",
         r"trustnetwork.txt:2: field 'friend_id': expected a non-negative integer"),
        (TRUST, "1\t10\n",
         r"data1.txt:1: expected 3 tab-separated fields \(user_id, artist_id, count\), got 2"),
        (TRUST, "1\t10\t-4\n",
         r"data1.txt:1: field 'count': expected a non-negative listening count, got '-4'"),
        (TRUST, "1\t10\tnan\n", r"data1.txt:1: field 'count': expected a non-negative listening count"),
        (TRUST, "", r"data1.txt: no rows"),
    ],
)
def test_lastfm_bad_input(tmp_path, trust, train, message):
    write_lastfm(tmp_path, trust, train)
    with pytest.raises(DataFormatError, match=message):
        read_lastfm_social(tmp_path)


def test_lastfm_options_are_checked(tmp_path):
    write_lastfm(tmp_path, TRUST, "1\t10\t3\n")
    with pytest.raises(UnknownNameError, match="unknown listening-count transform 'log'"):
        read_lastfm_social(tmp_path, transform="log")
    with pytest.raises(ConfigError, match="listens must be a list of file names"):
        read_lastfm_social(tmp_path, listens="data1.txt")


# --- the named datasets ------------------------------------------------------------------------------


def test_registered_social_names():
    assert sorted(SOCIAL_DATASETS) == ["lastfm-social", "twitch-de", "twitch-engb", "twitch-es",
                                       "twitch-fr", "twitch-ptbr", "twitch-ru"]
    assert all(spec.description for spec in SOCIAL_DATASETS.values())


def test_load_social_under_an_explicit_root(tmp_path):
    write_twitch(tmp_path / "musae-twitch", "from,to\n0,1\n", {"0": [1], "1": [2]})
    graph = load_social("twitch-de", root=tmp_path)
    assert (graph.num_nodes, graph.num_edges) == (2, 1)
    with pytest.raises(UnknownNameError, match="unknown social dataset 'twitch'; choose one of: lastfm-soc"):
        load_social("twitch", root=tmp_path)
    with pytest.raises(ConfigError, match="'twitch-de' takes no options; got transform"):
        load_social("twitch-de", root=tmp_path, transform="binary")
    with pytest.raises(RecforgeError, match="does not exist"):
        load_social("lastfm-social", root=tmp_path)


# --- the real files ----------------------------------------------------------------------------------

# nodes, undirected friendships, distinct feature ids used (README section 5a)
TWITCH_COUNTS = {"DE": (9_498, 153_138, 2_514), "ENGB": (7_126, 35_324, 2_545), "ES": (4_648, 59_382, 2_148),
                 "FR": (6_549, 112_666, 2_275), "PTBR": (1_912, 31_299, 1_449), "RU": (4_385, 37_304, 2_224)}


@pytest.fixture(scope="module")
def twitch_graphs(shared_data) -> dict[str, SocialGraph]:
    return {code: load_social(f"twitch-{code.lower()}", root=shared_data) for code in TWITCH_COUNTRIES}


@pytest.mark.integration
@pytest.mark.parametrize("country", TWITCH_COUNTRIES)
def test_twitch_published_counts(twitch_graphs, country):
    graph = twitch_graphs[country]
    nodes, edges, used = TWITCH_COUNTS[country]
    assert (graph.num_nodes, graph.num_edges) == (nodes, edges)
    assert graph.features.shape == (nodes, 3170)
    assert len(np.unique(graph.features.indices)) == used
    assert len(graph.isolated_nodes()) == 0
    # listed once, no self-loops: the only note is about games repeated in a user's list
    assert len(graph.notes) == 1
    assert "feature ids repeated within a node's list" in graph.notes[0]


@pytest.mark.integration
def test_twitch_totals(twitch_graphs):
    assert sum(g.num_nodes for g in twitch_graphs.values()) == 34_118
    assert sum(g.num_edges for g in twitch_graphs.values()) == 429_113


@pytest.mark.integration
def test_lastfm_social_counts(shared_data):
    # the README's 12,717 friendships are undirected: trustnetwork has 25,434 rows, each pair both ways
    with gzip.open(shared_data / "lastfm-social" / "trustnetwork.txt.gz", "rt") as handle:
        assert sum(1 for line in handle if line.strip()) == 25_434
    graph = load_social("lastfm-social", root=shared_data)
    assert (graph.num_nodes, graph.num_edges) == (1_892, 12_717)
    assert graph.features.shape == (1_892, 4_489)
    assert graph.features.nnz == 52_668
    assert int((np.diff(graph.features.indptr) == 0).sum()) == 12  # friends but no listening
    assert len(graph.isolated_nodes()) == 0
    assert graph.features.data.max() == pytest.approx(np.log1p(324_660), rel=1e-6)


@pytest.mark.integration
def test_real_split_has_no_leakage(twitch_graphs):
    graph = twitch_graphs["ENGB"]
    split = link_split(graph, valid_share=0.1, test_share=0.1, seed=0)
    check_no_leakage(graph, split)
    assert 0.09 < len(split.test_edges) / graph.num_edges < 0.11
    slices = cold_start_slices(split)
    assert len(slices["degree<=2"]) > 0
    assert len(slices["degree<=2"]) + len(slices["degree>2"]) == len(slices["all"])
