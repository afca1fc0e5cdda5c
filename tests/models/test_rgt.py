"""RGT's parts against naive loops: anchor position encoding, edge attention, switches."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recforge.data.graph import normalized_adjacency
from recforge.models.rgt import RGT, AnchorPositionEncoding, EdgeAttention

NUM_USERS, NUM_ITEMS, DIM = 4, 5, 6


def test_position_encoding_is_gformers_concat_linear_mean():
    """GFormer: h_v = mean_a Linear([w_va e_a ; e_v]); ours computes the same mean as one product."""
    torch.manual_seed(0)
    layer = AnchorPositionEncoding(DIM)
    nodes = torch.randn(7, DIM)
    anchors = torch.tensor([1, 4, 6])
    weights = torch.rand(7, 3)
    weights[2] = 0.0  # a node far from every anchor
    hidden = torch.nn.Linear(2 * DIM, DIM)  # GFormer's linear_hidden, from our two maps
    with torch.no_grad():
        hidden.weight.copy_(torch.cat([layer.from_anchors.weight, layer.from_self.weight], dim=1))
        hidden.bias.copy_(layer.from_self.bias)
    expected = torch.stack(
        [
            torch.stack(
                [hidden(torch.cat([weights[v, a] * nodes[anchors[a]], nodes[v]])) for a in range(3)]
            ).mean(0)
            for v in range(7)
        ]
    )
    encoded = layer(nodes, nodes[anchors], weights)
    torch.testing.assert_close(encoded, expected)
    torch.testing.assert_close(encoded[2], layer.from_self(nodes[2]))
    subset = torch.tensor([5, 2])  # rows encode on their own
    torch.testing.assert_close(layer(nodes[subset], nodes[anchors], weights[subset]), expected[subset])


def test_edge_attention_against_loops():
    torch.manual_seed(1)
    layer = EdgeAttention(DIM, num_heads=2)
    nodes = torch.randn(5, DIM)
    rows = torch.tensor([0, 0, 1, 2, 2, 2, 4])  # node 3 receives nothing
    cols = torch.tensor([1, 2, 0, 0, 3, 4, 4])
    messages, attention = layer(nodes, rows, cols)
    query, key, value = layer.query_key_value(layer.norm(nodes)).chunk(3, dim=-1)  # pre-norm
    head = DIM // 2
    expected = torch.zeros(5, DIM)
    for h in range(2):
        part = slice(h * head, (h + 1) * head)
        for u in range(5):
            incoming = [e for e in range(len(rows)) if rows[e] == u]
            if not incoming:
                continue
            logits = torch.stack([query[u, part] @ key[cols[e], part] / head**0.5 for e in incoming])
            alpha = torch.softmax(logits, dim=0)
            for weight, e in zip(alpha, incoming, strict=True):
                assert attention[e, h].item() == pytest.approx(weight.item(), rel=1e-5)
                expected[u, part] += weight * value[cols[e], part]
    torch.testing.assert_close(messages, expected)
    assert (messages[3] == 0).all()  # no neighbour, no message


def graph() -> sp.csr_matrix:
    rows, cols = [0, 0, 1, 2, 3, 3], [0, 1, 1, 2, 3, 4]
    return sp.csr_matrix((np.ones(6, dtype=np.float32), (rows, cols)), shape=(NUM_USERS, NUM_ITEMS))


def edges_with_loops() -> torch.Tensor:
    coo = graph().tocoo()
    users, items = (
        torch.as_tensor(coo.row, dtype=torch.long),
        torch.as_tensor(coo.col, dtype=torch.long) + NUM_USERS,
    )
    loops = torch.arange(NUM_USERS + NUM_ITEMS)
    return torch.stack([torch.cat([users, items, loops]), torch.cat([items, users, loops])])


def build(**overrides) -> RGT:
    return RGT(**({"num_users": NUM_USERS, "num_items": NUM_ITEMS, "dim": DIM, "num_anchors": 3} | overrides))


@pytest.mark.parametrize("position_encoding", [True, False])
@pytest.mark.parametrize("masked_autoencoding", [True, False])
def test_scores_are_the_encoder_and_the_decoder_is_gated(position_encoding, masked_autoencoding):
    torch.manual_seed(2)
    model = build(position_encoding=position_encoding, masked_autoencoding=masked_autoencoding)
    model.set_anchors(np.array([0, 4, 7]), np.random.default_rng(0).random((9, 3)).astype(np.float32))
    adjacency = normalized_adjacency(graph())
    users, items = model(adjacency)
    assert users.shape == (NUM_USERS, DIM)
    assert items.shape == (NUM_ITEMS, DIM)
    encoded = model.encode(adjacency)
    torch.testing.assert_close(torch.cat([users, items]), encoded)  # scores: LightGCN layer mean
    every_node = torch.arange(NUM_USERS + NUM_ITEMS)
    torch.testing.assert_close(
        model.decode(encoded, edges_with_loops(), every_node), encoded
    )  # gates start at 0
    with torch.no_grad():
        model.position_gate.fill_(0.5)
        model.transformer_gate.fill_(0.5)
    decoded = model.decode(encoded, edges_with_loops(), every_node)
    changed = not torch.allclose(decoded, encoded)
    assert changed == (position_encoding or masked_autoencoding)
    decoded.sum().backward()
    assert (model.position is not None) == position_encoding
    assert (model.transformer.query_key_value.weight.grad is not None) == masked_autoencoding
    assert model.embedding.grad is not None
    assert torch.isfinite(model.embedding.grad).all()


@pytest.mark.parametrize("position_encoding", [True, False])
@pytest.mark.parametrize("masked_autoencoding", [True, False])
def test_decoding_targets_equals_decoding_every_node(position_encoding, masked_autoencoding):
    """decode() touches only the targets and their senders; the rows must be those of decoding
    the whole graph by hand: encoder + gate·positions + gate·messages from every node."""
    torch.manual_seed(5)
    model = build(position_encoding=position_encoding, masked_autoencoding=masked_autoencoding)
    model.set_anchors(np.array([0, 4, 7]), np.random.default_rng(1).random((9, 3)).astype(np.float32))
    with torch.no_grad():
        model.position_gate.fill_(0.7)
        model.transformer_gate.fill_(0.3)
    encoded = torch.randn(NUM_USERS + NUM_ITEMS, DIM)
    edges = edges_with_loops()
    positions = model.positions()
    inputs = encoded if positions is None else encoded + 0.7 * positions
    if masked_autoencoding:
        inputs = inputs + 0.3 * model.transformer(inputs, edges[0], edges[1])[0]
    targets = torch.tensor([6, 1, 6, 3, 8])  # unsorted, with a repeat
    torch.testing.assert_close(model.decode(encoded, edges, targets), inputs[targets])


def test_edge_importance_sums_heads_per_edge():
    torch.manual_seed(3)
    model = build(num_heads=2)
    edges = edges_with_loops()
    importance = model.edge_importance(edges)
    _, weights = model.transformer(model.topology_aware(), edges[0], edges[1])
    torch.testing.assert_close(importance, weights.sum(-1))
    per_node = torch.zeros(NUM_USERS + NUM_ITEMS).index_add_(0, edges[0], importance)
    torch.testing.assert_close(per_node, torch.full_like(per_node, 2.0))  # softmax rows sum to 1 per head


def test_seeded_construction_equals_seeded_reset_and_anchors_are_saved():
    torch.manual_seed(4)
    first = build()
    torch.manual_seed(4)
    second = build()
    torch.manual_seed(4)
    second.reset_parameters()
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    first.set_anchors(np.array([1, 2, 3]), np.ones((9, 3), dtype=np.float32))
    assert "anchor_ids" in first.state_dict()
    assert "anchor_weights" in first.state_dict()
    with pytest.raises(ValueError, match="expected 3 anchors"):
        first.set_anchors(np.array([1, 2]), np.ones((9, 2), dtype=np.float32))


def test_errors():
    with pytest.raises(ValueError, match="divisible"):
        build(num_heads=4)
    with pytest.raises(ValueError, match=r"expected \(9, 9\)"):
        build()(normalized_adjacency(sp.csr_matrix((2, 2), dtype=np.float32)))
