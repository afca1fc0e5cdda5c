"""The embedding contract, checked for every registered encoder (as scikit-learn checks estimators)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from recforge.models.registry import MODELS, build_model, model_inputs

NUM_USERS, NUM_ITEMS, DIM = 7, 9, 6
NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)]


@pytest.fixture
def train() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    matrix = sp.random(NUM_USERS, NUM_ITEMS, density=0.3, random_state=rng, format="csr")
    matrix.data[:] = 1.0
    return matrix


def build(name: str) -> torch.nn.Module:
    return build_model(name, num_users=NUM_USERS, num_items=NUM_ITEMS, dim=DIM)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("device", DEVICES)
def test_embedding_contract(name, device, train):
    model = build(name).to(device)
    users, items = model(**model_inputs(model, train, device))
    assert users.shape == (NUM_USERS, DIM)
    assert items.shape == (NUM_ITEMS, DIM)
    assert users.device.type == items.device.type == device
    scores = users @ items.T  # the contract: any encoder is scored by dot products
    assert scores.shape == (NUM_USERS, NUM_ITEMS)
    assert torch.isfinite(scores).all()
    scores.sum().backward()
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad is not None, parameter_name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_initial_embeddings_are_parameter_rows(name):
    model = build(name)
    users, items = model.initial_embeddings()
    assert users.shape == (NUM_USERS, DIM)
    assert items.shape == (NUM_ITEMS, DIM)
    assert users.requires_grad
    assert items.requires_grad


@pytest.mark.parametrize("name", sorted(MODELS))
def test_seeded_reset_parameters_is_reproducible(name):
    model = build(name)
    torch.manual_seed(123)
    model.reset_parameters()
    first = {key: value.clone() for key, value in model.state_dict().items()}
    model.reset_parameters()  # unseeded: the next draw differs
    assert any(not torch.equal(first[key], value) for key, value in model.state_dict().items())
    torch.manual_seed(123)
    model.reset_parameters()
    for key, value in model.state_dict().items():
        assert torch.equal(first[key], value), key
    torch.manual_seed(123)
    fresh = build(name)  # the constructor initialises the same way
    for key, value in fresh.state_dict().items():
        assert torch.equal(first[key], value), key


@pytest.mark.parametrize("name", sorted(MODELS))
def test_safetensors_round_trip(name, train, tmp_path):
    model = build(name)
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), str(path))
    restored = build(name)
    restored.load_state_dict(load_file(str(path)))
    inputs = model_inputs(model, train, "cpu")
    for got, expected in zip(restored(**inputs), model(**inputs), strict=True):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hyperparameters_are_stored_and_shown(name):
    spec = MODELS[name]
    signature = inspect.signature(spec.cls)
    assert set(signature.parameters) == {"num_users", "num_items", *spec.parameters}
    model = build(name)
    for key in ("num_users", "num_items", *spec.parameters):
        assert hasattr(model, key), key
    assert f"users={NUM_USERS}, items={NUM_ITEMS}, dim={DIM}" in repr(model)
