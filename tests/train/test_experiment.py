import numpy as np
import pytest
import torch

from recforge.config import config_from_dict
from recforge.data.dataset import Interactions
from recforge.data.split import Split
from recforge.device import resolve_device
from recforge.errors import ConfigError, UnknownNameError
from recforge.recipes import RECIPES, graph_inputs, recipe_of
from recforge.train.experiment import prepare_data, split_parameters


def ratings_csv(tmp_path, num_users=30, num_items=12, per_user=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = ["userId,movieId,ts"]
    for user in range(num_users):
        for position, item in enumerate(rng.choice(num_items, size=per_user, replace=False)):
            rows.append(f"u{user},m{item},{1000 + position}")
    rows.append("u0,m999,5000")  # an item only user 0 has: k-core removes it
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def config_for(path, **data):
    return config_from_dict(
        {
            "name": "csv",
            "data": {
                "name": str(path),
                **data,
                "options": {"user": "userId", "item": "movieId", "timestamp": "ts"},
            },
            "model": {"name": "mf", "dim": 4},
        }
    )


def test_prepare_data_reads_a_csv_with_column_options_filters_and_splits(tmp_path):
    config = config_for(
        ratings_csv(tmp_path), filter={"min_item_interactions": 2}, split={"protocol": "leave_one_out"}
    )
    prepared = prepare_data(config, tmp_path / "split.npz")
    assert prepared.dataset.num_users == 30
    assert prepared.dataset.num_items == 12  # m999 removed by the 2-core on items
    assert any("k-core" in note for note in prepared.notes)
    assert len(prepared.split.test) == 30  # one held-out item per user
    assert (tmp_path / "split.npz").is_file()
    again = prepare_data(config, tmp_path / "split.npz")  # reloaded, not re-made
    assert again.split.content_hash == prepared.split.content_hash


def test_unknown_reader_option_is_a_config_error(tmp_path):
    config = config_from_dict(
        {
            "name": "csv",
            "data": {"name": str(ratings_csv(tmp_path)), "options": {"usr": "userId"}},
            "model": {"name": "mf"},
        }
    )
    with pytest.raises(ConfigError, match="unexpected keyword argument 'usr'"):
        prepare_data(config, tmp_path / "split.npz")


def test_split_parameters_per_protocol():
    config = config_from_dict(
        {
            "name": "x",
            "data": {"name": "gowalla", "split": {"protocol": "given", "valid_ratio": 0.1}},
            "model": {"name": "mf"},
        }
    )
    assert split_parameters(config.data.split, 5) == {"valid_ratio": 0.1, "seed": 5}
    temporal = config.data.split.model_copy(update={"protocol": "temporal"})
    assert split_parameters(temporal, 5) == {"ratios": (0.8, 0.1, 0.1)}


def test_recipe_builds_the_encoder_from_config_hyperparameters():
    config = config_from_dict(
        {"name": "x", "data": {"name": "gowalla"}, "model": {"name": "lightgcn", "dim": 8, "num_layers": 2}}
    )
    recipe = recipe_of(config.model.name)
    assert isinstance(config.model, recipe.config)  # the model section is the recipe's own class
    model = recipe.build(config.model, num_users=3, num_items=4)
    assert repr(model) == "LightGCN(users=3, items=4, dim=8, layers=2)"
    with pytest.raises(UnknownNameError, match=r"unknown model 'lightgnc'; choose one of: .*lightgcn"):
        recipe_of("lightgnc")


def tiny_split(num_users=6, num_items=9):
    rng = np.random.default_rng(0)
    folds = []
    for per_user in (4, 1, 1):
        users = np.repeat(np.arange(num_users), per_user)
        folds.append(
            Interactions(
                users=users, items=rng.integers(0, num_items, len(users)), timestamps=np.arange(len(users))
            )
        )
    train, valid, test = folds
    valid = Interactions(valid.users, valid.items, valid.timestamps + 100)
    test = Interactions(test.users, test.items, test.timestamps + 200)
    return Split(num_users, num_items, train, valid, test, protocol="tiny")


SMALL = {
    "mf": {},
    "lightgcn": {"num_layers": 1},
    "gat": {"num_heads": 1},
    "rgt": {"anchors": 2},
    "sasrec": {"max_length": 5, "num_heads": 1, "inner_dim": 8},
    "gru4rec": {"max_length": 5, "hidden_dim": 8},
    "gsau": {"max_length": 5, "num_heads": 1, "inner_dim": 8},
    "text_sasrec": {"max_length": 5, "num_heads": 1, "inner_dim": 8},
}
SEQUENTIAL = ("sasrec", "gru4rec", "gsau", "text_sasrec")


# the friend-graph GAT needs node features of a square graph: tests/train/test_friend_training.py
@pytest.mark.parametrize("name", sorted(set(RECIPES) - {"feature_gat"}))
def test_every_recipe_builds_and_scores_every_user_and_item(name):
    split = tiny_split()
    config = config_from_dict(
        {
            "name": "x",
            "data": {"name": "gowalla"},
            "model": {"name": name, "dim": 4, **SMALL[name]},
            "objective": {"terms": {"ce" if name in SEQUENTIAL else "bpr": {"weight": 1}}},
        }
    )
    recipe = RECIPES[name]
    model = recipe.build(config.model, split.num_users, split.num_items)
    graph = graph_inputs(recipe, model, split.csr("train"), torch.device("cpu"))
    scorer = recipe.scorer(model, config.model, graph)
    width = 384 if name == "text_sasrec" else 4  # the text teacher scores in the titles' space
    for fold in ("valid", "test", None):
        queries, items = scorer.embeddings(split, fold)
        assert queries.shape == (split.num_users, width)
        assert items.shape == (split.num_items, width)
        assert not queries.requires_grad
        assert not items.requires_grad
        assert torch.isfinite(queries).all()
        assert torch.isfinite(items).all()
    assert scorer.reads_histories == (name in SEQUENTIAL)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="is not a device name"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


def test_held_out_ids_absent_from_training_are_counted_in_the_notes():
    import numpy as np

    from recforge.data.dataset import Interactions
    from recforge.data.split import Split
    from recforge.train.experiment import cold_start_notes

    def part(users, items):
        return Interactions(users=np.array(users), items=np.array(items))

    split = Split(4, 6, part([0, 1], [0, 1]), part([0], [4]), part([3, 1], [5, 1]), protocol="given")
    assert cold_start_notes(split) == [
        "2 items of the valid/test folds never occur in train; they are kept and scored with untrained "
        "embeddings (cold start)",
        "1 users of the valid/test folds never occur in train; they are kept and scored with untrained "
        "embeddings (cold start)",
    ]
    assert cold_start_notes(Split(2, 2, part([0, 1], [0, 1]), part([0], [1]), part([1], [0]), "given")) == []
