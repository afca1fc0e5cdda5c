"""The contract every sequential encoder keeps (as test_contract.py does for the graph encoders).

A query is a left-padded sequence of shifted item ids (0 = padding); ``forward`` gives one state per
position (zero at padding), ``query_embeddings`` the state after the most recent item, and
``item_embeddings`` the item table the scores are dot products with.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from recforge.models.gru4rec import GRU4Rec
from recforge.models.gsau import GSAU
from recforge.models.sasrec import SASRec

NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)]
MAX_LENGTH = 9


def sasrec(**overrides) -> SASRec:
    params = {
        "num_items": 11,
        "dim": 8,
        "max_length": MAX_LENGTH,
        "num_layers": 2,
        "num_heads": 2,
        "inner_dim": 16,
    }
    return SASRec(**(params | overrides))


def gru4rec(**overrides) -> GRU4Rec:
    overrides.pop("attention_dropout", None)  # GRU4Rec has one dropout only
    return GRU4Rec(**({"num_items": 11, "dim": 8, "hidden_dim": 12, "num_layers": 2} | overrides))


def gsau(**overrides) -> GSAU:
    """GSAU as a sequence encoder (its graph half is tested in test_gsau.py)."""
    params = {
        "num_users": 5,
        "num_items": 11,
        "dim": 8,
        "max_length": MAX_LENGTH,
        "num_layers": 2,
        "num_heads": 2,
        "inner_dim": 16,
    }
    return GSAU(**(params | overrides))


ENCODERS = [
    pytest.param(sasrec, id="sasrec"),
    pytest.param(gru4rec, id="gru4rec"),
    pytest.param(gsau, id="gsau"),
]
Factory = Callable[..., nn.Module]


def left_padded(rows: list[list[int]], length: int) -> torch.Tensor:
    return torch.tensor([[0] * (length - len(row)) + row for row in rows])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("build", ENCODERS)
def test_shapes(build: Factory, device: str):
    model = build().to(device)
    sequences = left_padded([[1, 2, 3], [4, 5, 6, 7, 8, 9]], 6).to(device)
    hidden = model(sequences)
    assert hidden.shape == (2, 6, 8)
    assert hidden.device.type == device
    assert model.query_embeddings(sequences).shape == (2, 8)
    assert model.item_embeddings().shape == (11, 8)
    assert torch.equal(hidden[0, :3], torch.zeros(3, 8, device=device))  # padded positions are zero


@pytest.mark.parametrize("build", ENCODERS)
def test_item_table_shares_the_input_rows(build: Factory):
    model = build()
    assert torch.equal(model.item_embeddings(), model.item_embedding.weight[1:])
    assert torch.equal(model.item_embedding.weight[0], torch.zeros(8))
    model(left_padded([[1, 2]], 3)).sum().backward()
    assert torch.equal(model.item_embedding.weight.grad[0], torch.zeros(8))  # padding never learns


@pytest.mark.parametrize("build", ENCODERS)
def test_causal(build: Factory):
    torch.manual_seed(0)
    model = build().eval()
    sequences = left_padded([[1, 2, 3, 4, 5]], 6)
    changed = sequences.clone()
    changed[0, -1] = 9
    before, after = model(sequences), model(changed)
    torch.testing.assert_close(before[:, :-1], after[:, :-1], rtol=0, atol=0)
    assert not torch.allclose(before[:, -1], after[:, -1])


@pytest.mark.parametrize("build", ENCODERS)
def test_left_padding_does_not_change_the_query(build: Factory):
    torch.manual_seed(0)
    model = build().eval()
    rows = [[1, 2, 3], [4], [5, 6, 7, 8]]
    short = model.query_embeddings(left_padded(rows, 4))
    long = model.query_embeddings(left_padded(rows, MAX_LENGTH))
    torch.testing.assert_close(short, long, rtol=0, atol=1e-5)


@pytest.mark.parametrize("build", ENCODERS)
def test_all_padding_row_is_finite(build: Factory):
    model = build()
    sequences = left_padded([[], [1, 2]], 4)
    for mode in (model.train, model.eval):
        mode()
        hidden = model(sequences)
        assert torch.isfinite(hidden).all()
        assert torch.equal(hidden[0], torch.zeros(4, 8))
    model.train()
    model(sequences).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("build", ENCODERS)
def test_seeded_reset_parameters_is_reproducible(build: Factory):
    model = build()
    torch.manual_seed(3)
    model.reset_parameters()
    first = {key: value.clone() for key, value in model.state_dict().items()}
    model.reset_parameters()
    assert any(not torch.equal(first[key], value) for key, value in model.state_dict().items())
    torch.manual_seed(3)
    for key, value in build().state_dict().items():  # a seeded constructor draws the same weights
        assert torch.equal(first[key], value), key


@pytest.mark.parametrize("build", ENCODERS)
def test_safetensors_round_trip(build: Factory, tmp_path):
    model = build().eval()
    path = tmp_path / "encoder.safetensors"
    save_file(model.state_dict(), str(path))
    restored = build().eval()
    restored.load_state_dict(load_file(str(path)))
    sequences = left_padded([[1, 2, 3], [4]], 5)
    assert torch.equal(restored(sequences), model(sequences))


@pytest.mark.parametrize("build", ENCODERS)
def test_overfits_five_sequences(build: Factory):
    torch.manual_seed(0)
    rows = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 1, 3, 5, 7], [2, 4, 6, 8, 10], [9, 11, 10, 3, 1]]
    sequences = torch.tensor(rows)
    inputs, targets = sequences[:, :-1], sequences[:, 1:] - 1  # 0-based next items
    model = build(dropout=0.0, attention_dropout=0.0, dim=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        logits = model(inputs) @ model.item_embeddings().T
        F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1)).backward()
        optimizer.step()
    model.eval()
    predicted = (model(inputs) @ model.item_embeddings().T).argmax(-1)
    assert (predicted == targets).float().mean().item() == 1.0
