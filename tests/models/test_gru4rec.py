from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from recforge.models.gru4rec import GRU4Rec

NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)]


def small(**overrides) -> GRU4Rec:
    return GRU4Rec(**({"num_items": 11, "dim": 8, "hidden_dim": 12, "num_layers": 2} | overrides))


def left_padded(rows: list[list[int]], length: int) -> torch.Tensor:
    return torch.tensor([[0] * (length - len(row)) + row for row in rows])


def test_repr():
    first_lines = repr(small()).splitlines()[:2]
    assert first_lines == ["GRU4Rec(", "  items=11, dim=8, hidden_dim=12, layers=2"]


@pytest.mark.parametrize("device", DEVICES)
def test_shapes(device):
    model = small().to(device)
    sequences = left_padded([[1, 2, 3], [4, 5, 6, 7, 8, 9]], 6).to(device)
    hidden = model(sequences)
    assert hidden.shape == (2, 6, 8)
    assert hidden.device.type == device
    assert model.query_embeddings(sequences).shape == (2, 8)
    assert model.item_embeddings().shape == (11, 8)
    assert torch.equal(hidden[0, :3], torch.zeros(3, 8, device=device))


def test_item_table_shares_the_input_rows():
    model = small()
    assert torch.equal(model.item_embeddings(), model.item_embedding.weight[1:])
    assert torch.equal(model.item_embedding.weight[0], torch.zeros(8))


def test_causal():
    torch.manual_seed(0)
    model = small().eval()
    sequences = left_padded([[1, 2, 3, 4, 5]], 6)
    changed = sequences.clone()
    changed[0, -1] = 9
    before, after = model(sequences), model(changed)
    torch.testing.assert_close(before[:, :-1], after[:, :-1], rtol=0, atol=0)
    assert not torch.allclose(before[:, -1], after[:, -1])


def test_left_padding_does_not_change_the_query():
    torch.manual_seed(0)
    model = small().eval()
    rows = [[1, 2, 3], [4], [5, 6, 7, 8]]
    short = model.query_embeddings(left_padded(rows, 4))
    long = model.query_embeddings(left_padded(rows, 9))
    torch.testing.assert_close(short, long, rtol=0, atol=1e-5)


def test_all_padding_row_is_finite_and_zero():
    model = small()
    hidden = model(left_padded([[], [1, 2]], 4))
    assert torch.isfinite(hidden).all()
    assert torch.equal(hidden[0], torch.zeros(4, 8))


def test_seeded_reset_parameters_is_reproducible():
    model = small()
    torch.manual_seed(3)
    model.reset_parameters()
    first = {key: value.clone() for key, value in model.state_dict().items()}
    model.reset_parameters()
    assert any(not torch.equal(first[key], value) for key, value in model.state_dict().items())
    torch.manual_seed(3)
    for key, value in small().state_dict().items():
        assert torch.equal(first[key], value), key


def test_safetensors_round_trip(tmp_path):
    model = small().eval()
    path = tmp_path / "gru4rec.safetensors"
    save_file(model.state_dict(), str(path))
    restored = small().eval()
    restored.load_state_dict(load_file(str(path)))
    sequences = left_padded([[1, 2, 3], [4]], 5)
    assert torch.equal(restored(sequences), model(sequences))


def test_overfits_five_sequences():
    torch.manual_seed(0)
    rows = [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 1, 3, 5, 7], [2, 4, 6, 8, 10], [9, 11, 10, 3, 1]]
    sequences = torch.tensor(rows)
    inputs, targets = sequences[:, :-1], sequences[:, 1:] - 1  # 0-based next items
    model = small(dropout=0.0, dim=16, hidden_dim=32, num_layers=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimizer.zero_grad()
        logits = model(inputs) @ model.item_embeddings().T
        F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1)).backward()
        optimizer.step()
    model.eval()
    predicted = (model(inputs) @ model.item_embeddings().T).argmax(-1)
    assert (predicted == targets).float().mean().item() == 1.0
