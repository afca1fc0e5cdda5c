"""The ``links`` split protocol of friend graphs: every friendship in one fold with both its
directions, no user befriends themself at evaluation or inference, and a whole run (Adamic–Adar)
goes through the usual pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from recforge.config import config_from_dict
from recforge.data.social import SocialGraph, social_dataset
from recforge.data.split import Split
from recforge.data.splitting import links_split, split_dataset
from recforge.errors import ConfigError
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train


def friend_graph(nodes: int = 40, edges: int = 160, seed: int = 0) -> SocialGraph:
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, nodes, (edges, 2))
    return SocialGraph.from_pairs(pairs[pairs[:, 0] != pairs[:, 1]], nodes, name="toy")


def pairs_of(split: Split, fold: str) -> set[tuple[int, int]]:
    part = split.fold(fold)
    return set(zip(part.users.tolist(), part.items.tolist(), strict=True))


def test_each_friendship_lies_in_one_fold_with_both_directions():
    split = links_split(social_dataset(friend_graph()), ratios=(0.6, 0.2, 0.2), seed=3)
    assert split.excludes_self
    folds = {fold: pairs_of(split, fold) for fold in ("train", "valid", "test")}
    for pairs in folds.values():
        assert pairs == {(v, u) for u, v in pairs}  # symmetric
    undirected = {fold: {frozenset(p) for p in pairs} for fold, pairs in folds.items()}
    assert not undirected["train"] & undirected["valid"]
    assert not undirected["train"] & undirected["test"]
    assert not undirected["valid"] & undirected["test"]
    assert len(folds["valid"]) > 0
    assert len(folds["test"]) > 0
    again = links_split(social_dataset(friend_graph()), ratios=(0.6, 0.2, 0.2), seed=3)
    assert again.content_hash == split.content_hash  # seeded


def test_the_split_file_keeps_the_self_exclusion(tmp_path):
    split = split_dataset(social_dataset(friend_graph()), "links", ratios=(0.8, 0.1, 0.1), seed=1)
    loaded = Split.load(split.save(tmp_path / "split.npz"))
    assert loaded.excludes_self
    assert loaded.content_hash == split.content_hash
    from dataclasses import replace

    assert replace(split, excludes_self=False).content_hash != split.content_hash
    seen = split.seen_with_self(split.csr("train"))
    assert (seen.diagonal() == 1).all()


def test_a_user_item_dataset_is_refused(write_events):
    from recforge.data.registry import read_path

    dataset = read_path(write_events(5, 7, 3, seed=0), user="user", item="item", timestamp="timestamp")
    with pytest.raises(ConfigError, match="not a user-user graph"):
        links_split(dataset, seed=0)


def test_a_friend_run_never_recommends_a_user_to_themself(tmp_path):
    graph = friend_graph(nodes=30, edges=150, seed=5)
    rows = ["user,item"] + [f"n{u},n{v}\nn{v},n{u}" for u, v in graph.edges.tolist()]
    data = tmp_path / "friends.csv"
    data.write_text("\n".join(rows) + "\n")
    config = config_from_dict(
        {
            "name": "friends",
            "output_dir": str(tmp_path / "run"),
            "data": {
                "name": str(data),
                "options": {"user": "user", "item": "item"},
                "split": {"protocol": "links", "ratios": [0.8, 0.1, 0.1]},
            },
            "model": {"name": "common_neighbours"},
            "evaluation": {"ks": [5], "metrics": ["recall"]},
        }
    )
    train(config, show_progress=False)
    recommender = load_recommender(tmp_path / "run", device="cpu")
    users = recommender.user_ids
    for user, items in zip(users, recommender.recommend(users, k=5), strict=True):
        assert user not in [r.item for r in items]


@pytest.mark.integration
def test_adamic_adar_on_lastfm_social(shared_data, tmp_path):
    from recforge.config import load_config

    config = load_config(
        "configs/lastfm-social/adamic-adar.yaml",
        [f"output_dir={tmp_path / 'run'}", f"data.root={shared_data}"],
    )
    result = train(config, show_progress=False)
    assert result.data.split.excludes_self
    assert 0.2 < result.test.metrics["recall@20"] < 0.4  # measured 0.279 (seed 2020)


def test_a_friend_list_read_apart_is_renumbered_and_a_user_item_list_refused(write_events):
    from recforge.data.registry import read_path
    from recforge.data.social import align_friend_ids

    dataset = read_path(write_events(5, 7, 3, seed=0), user="user", item="item", timestamp="timestamp")
    with pytest.raises(ConfigError, match="not one set of people"):
        align_friend_ids(dataset)
    graph = social_dataset(friend_graph(nodes=6, edges=20))
    shuffled = graph.item_ids[::-1].copy()
    inverse = {raw: dense for dense, raw in enumerate(shuffled)}
    moved = graph.interactions.items.copy()
    moved[:] = [inverse[graph.item_ids[i]] for i in graph.interactions.items]
    from dataclasses import replace

    apart = replace(graph, item_ids=shuffled, interactions=replace(graph.interactions, items=moved))
    aligned = align_friend_ids(apart)
    assert np.array_equal(aligned.item_ids, aligned.user_ids)
    assert np.array_equal(aligned.interactions.items, graph.interactions.items)


def test_new_users_keep_one_friend_and_move_the_rest_to_test():
    dataset = social_dataset(friend_graph(nodes=60, edges=400, seed=8))
    plain = links_split(dataset, ratios=(0.8, 0.1, 0.1), seed=2)
    cold = links_split(dataset, ratios=(0.8, 0.1, 0.1), seed=2, new_users=0.2, new_user_keep=1)
    train_degree = np.diff(cold.csr("train").indptr)
    plain_degree = np.diff(plain.csr("train").indptr)
    made_new = (train_degree <= 1) & (plain_degree >= 2)
    assert made_new.sum() >= 0.15 * (plain_degree >= 2).sum()  # about 20% of the eligible users
    valid_rows = np.diff(cold.csr("valid").indptr)
    assert (valid_rows[made_new] == 0).all()  # a new user is queried in test only
    assert len(cold.fold("test")) > len(plain.fold("test"))
    assert cold.excludes_self
    for pairs in (pairs_of(cold, fold) for fold in ("train", "valid", "test")):
        assert pairs == {(v, u) for u, v in pairs}
    with pytest.raises(ConfigError, match=r"new_users must lie in \[0, 1\)"):
        links_split(dataset, seed=2, new_users=1.0)


def test_new_users_need_the_links_protocol():
    from recforge.errors import RecforgeError

    with pytest.raises(RecforgeError, match="need protocol: links"):
        config_from_dict(
            {
                "name": "x",
                "data": {"name": "ml-100k", "split": {"protocol": "random", "new_users": 0.1}},
                "model": {"name": "mf"},
                "objective": {"terms": {"bpr": {"weight": 1.0}}},
            }
        )
