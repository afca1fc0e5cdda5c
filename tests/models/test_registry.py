from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.errors import ConfigError, UnknownNameError
from recforge.models import MF, MODELS, LightGCN, build_model, model_inputs


@pytest.fixture
def train() -> sp.csr_matrix:
    return sp.csr_matrix(np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32))


def test_registered_names():
    assert sorted(MODELS) == ["gat", "lightgcn", "mf"]


def test_build_with_defaults_and_params():
    model = build_model("lightgcn", num_users=2, num_items=3)
    assert isinstance(model, LightGCN)
    assert (model.dim, model.num_layers) == (64, 3)
    model = build_model("lightgcn", num_users=2, num_items=3, dim=8, num_layers=np.int64(0))
    assert repr(model) == "LightGCN(users=2, items=3, dim=8, layers=0)"
    assert type(model.num_layers) is int
    assert isinstance(build_model("mf", num_users=2, num_items=3, dim=4), MF)


def test_unknown_name_lists_choices():
    with pytest.raises(UnknownNameError, match="unknown model 'ngcf'; choose one of: gat, lightgcn, mf"):
        build_model("ngcf", num_users=2, num_items=3)


def test_unknown_parameter():
    message = "model 'mf' has no parameter 'num_layers'; its parameters are: dim"
    with pytest.raises(ConfigError, match=message):
        build_model("mf", num_users=2, num_items=3, num_layers=2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dim": 0}, "'dim' parameter of model 'lightgcn' must be an int >= 1, got 0"),
        ({"dim": 8.0}, "'dim' parameter of model 'lightgcn' must be an int >= 1, got 8.0"),
        ({"num_layers": -1}, "'num_layers' parameter of model 'lightgcn' must be an int >= 0, got -1"),
        ({"num_layers": True}, "'num_layers' parameter of model 'lightgcn' must be an int >= 0, got True"),
    ],
)
def test_invalid_parameter_values(params, message):
    with pytest.raises(ConfigError, match=message):
        build_model("lightgcn", num_users=2, num_items=3, **params)


def test_invalid_sizes():
    with pytest.raises(ConfigError, match="'num_users' parameter of model 'mf' must be an int >= 0, got -2"):
        build_model("mf", num_users=-2, num_items=3)


def test_model_inputs_by_name_and_by_model(train):
    assert model_inputs("mf", train, "cpu") == {}
    by_name = model_inputs("lightgcn", train, "cpu")
    assert set(by_name) == {"normalized_adjacency"}
    adjacency = by_name["normalized_adjacency"]
    assert adjacency.shape == (5, 5)
    assert adjacency.dtype == torch.float32
    model = build_model("lightgcn", num_users=2, num_items=3, dim=4).double()
    by_model = model_inputs(model, train, torch.device("cpu"))["normalized_adjacency"]
    assert by_model.dtype == torch.float64  # follows the model's parameters
    torch.testing.assert_close(by_model.to_dense().float(), adjacency.to_dense())
    model(**model_inputs(model, train, "cpu"))


def test_model_inputs_errors(train):
    with pytest.raises(UnknownNameError, match="unknown model 'ngcf'"):
        model_inputs("ngcf", train, "cpu")
    message = "unknown model class 'Linear'; choose one of: GAT, LightGCN, MF"
    with pytest.raises(UnknownNameError, match=message):
        model_inputs(torch.nn.Linear(2, 2), train, "cpu")
    with pytest.raises(ValueError, match="2 users × 3 items, the model was built for 4 × 3"):
        model_inputs(MF(num_users=4, num_items=3), train, "cpu")
