from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recforge.data.graph import bipartite_edge_index
from recforge.models import GAT
from recforge.models.gat import GATConfig
from recforge.objectives.ranking import bpr
from recforge.recipes import graph_inputs, recipe_of


@pytest.fixture(autouse=True)
def one_thread():
    # tiny graphs: a second thread only adds contention (and these tests share the machine)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def train() -> sp.csr_matrix:
    # 3 users × 4 items; user 2 and item 3 have no interaction
    return sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=np.float32))


def reference_conv(conv, nodes: torch.Tensor, adjacency: np.ndarray) -> torch.Tensor:
    """One GATConv layer written out from the paper: per head and per target node ``i``, a softmax
    over ``j in N(i) ∪ {i}`` of LeakyReLU_0.2(a_dst · W h_i + a_src · W h_j), then the weighted sum of
    the W h_j, heads concatenated, plus the bias. ``adjacency[i, j]`` is the edge j -> i."""
    heads, size = conv.heads, conv.out_channels
    transformed = nodes @ conv.lin.weight.T  # (N, H·C)
    out = torch.zeros_like(transformed)
    for head in range(heads):
        columns = slice(head * size, (head + 1) * size)
        h = transformed[:, columns]
        a_src, a_dst = conv.att_src[0, head], conv.att_dst[0, head]
        for i in range(len(nodes)):
            sources = sorted({*np.flatnonzero(adjacency[i]).tolist(), i})  # the self loop, once
            logits = torch.stack([F.leaky_relu(a_dst @ h[i] + a_src @ h[j], 0.2) for j in sources])
            weights = torch.softmax(logits, 0)
            out[i, columns] = (weights[:, None] * h[sources]).sum(0)
    return out + conv.bias


def dense_adjacency(train: sp.csr_matrix) -> np.ndarray:
    num_users, num_items = train.shape
    adjacency = np.zeros((num_users + num_items,) * 2)
    adjacency[:num_users, num_users:] = train.toarray() != 0
    adjacency[num_users:, :num_users] = (train.toarray() != 0).T
    return adjacency


def reference_gat(model: GAT, train: sp.csr_matrix) -> torch.Tensor:
    adjacency = dense_adjacency(train)
    layer = model.embedding
    layers = [layer]
    for index, conv in enumerate(model.convs):
        layer = reference_conv(conv, layer, adjacency)
        if index < model.num_layers - 1:
            layer = F.elu(layer)
        layers.append(layer)
    return torch.stack(layers).mean(0)


def perturbed(model: GAT) -> GAT:
    """Larger attention vectors, so the softmax is far from uniform and LeakyReLU sees both signs."""
    with torch.no_grad():
        for conv in model.convs:
            conv.att_src.normal_(std=2.0)
            conv.att_dst.normal_(std=2.0)
            conv.bias.normal_(std=0.1)
    return model


@pytest.mark.parametrize("num_heads", [1, 2])
def test_one_layer_matches_the_attention_formula(train, num_heads):
    torch.manual_seed(0)
    model = perturbed(GAT(num_users=3, num_items=4, dim=4, num_layers=1, num_heads=num_heads).double())
    users, items = model(bipartite_edge_index(train))
    with torch.no_grad():
        expected = reference_gat(model, train)
    torch.testing.assert_close(torch.cat([users, items]), expected)
    # by hand once more, for the layer mean: (layer 0 + layer 1) / 2
    conv_out = reference_conv(model.convs[0], model.embedding, dense_adjacency(train))
    torch.testing.assert_close(users[0], ((model.embedding + conv_out) / 2)[0])


def test_attention_is_not_uniform(train):
    # guards the reference test: with uniform attention a wrong logit formula would still pass
    torch.manual_seed(0)
    model = perturbed(GAT(num_users=3, num_items=4, dim=4, num_layers=1, num_heads=1).double())
    # the edge list it returns has the self loops added
    _, (edges, alpha) = model.convs[0](
        model.embedding, bipartite_edge_index(train), return_attention_weights=True
    )
    item_1 = 3 + 1  # neighbours: users 0 and 1, plus itself
    weights = alpha[edges[1] == item_1, 0]
    assert len(weights) == 3
    assert weights.sum().item() == pytest.approx(1.0)
    assert weights.max() - weights.min() > 0.05


def test_two_layers_chain_with_elu_and_average_every_layer(train):
    torch.manual_seed(1)
    model = perturbed(GAT(num_users=3, num_items=4, dim=6, num_layers=2, num_heads=2).double())
    users, items = model(bipartite_edge_index(train))
    with torch.no_grad():
        expected = reference_gat(model, train)
    torch.testing.assert_close(torch.cat([users, items]), expected)


def test_isolated_node_attends_to_itself_only(train):
    torch.manual_seed(2)
    model = perturbed(GAT(num_users=3, num_items=4, dim=4, num_layers=1, num_heads=2).double())
    users, items = model(bipartite_edge_index(train))
    assert torch.isfinite(users).all()
    assert torch.isfinite(items).all()
    conv = model.convs[0]
    for node, got in ((2, users[2]), (3 + 3, items[3])):  # user 2 and item 3 have no edge
        ego = model.embedding[node]
        # softmax over the self loop alone is 1: the layer is W e + b
        expected = (ego + ego @ conv.lin.weight.T + conv.bias) / 2
        torch.testing.assert_close(got, expected)


def test_gradients_reach_every_parameter(train):
    torch.manual_seed(3)
    model = GAT(num_users=3, num_items=4, dim=4, num_layers=2, num_heads=2)
    users, items = model(bipartite_edge_index(train))
    (users.pow(2).sum() + (users @ items.T).sum()).backward()
    names = {name for name, _ in model.named_parameters()}
    assert {"embedding", "convs.1.lin.weight", "convs.1.att_src", "convs.1.att_dst", "convs.1.bias"} <= names
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_bipartite_edge_index_by_hand():
    # 2 users × 3 items: (0, 0), (0, 2) stored twice, (1, 1), and an explicit zero at (1, 2)
    train = sp.coo_matrix(([1.0, 1.0, 1.0, 4.0, 0.0], ([0, 0, 1, 0, 1], [0, 2, 1, 2, 2])), shape=(2, 3))
    edge_index = bipartite_edge_index(train)
    assert edge_index.dtype == torch.int64
    # items are nodes 2, 3, 4; user -> item edges first, then the same edges reversed
    expected = torch.tensor([[0, 0, 1, 2, 4, 3], [2, 4, 3, 0, 0, 1]])
    assert torch.equal(edge_index, expected)
    assert torch.equal(bipartite_edge_index(sp.csr_array(train.toarray()), device="cpu"), expected)
    empty = bipartite_edge_index(sp.csr_matrix((2, 3)))
    assert empty.shape == (2, 0)
    assert empty.dtype == torch.int64


def test_recipe_builds_gat_with_its_edge_index(train):
    recipe = recipe_of("gat")
    model = recipe.build(GATConfig(name="gat", dim=8, num_layers=1, num_heads=4), 3, 4)
    assert repr(model).startswith("GAT(\n  users=3, items=4, dim=8, layers=1, heads=4")
    inputs = graph_inputs(recipe, model.double(), train, torch.device("cpu"))
    assert set(inputs) == {"edge_index"}
    assert torch.equal(inputs["edge_index"], bipartite_edge_index(train))
    users, items = model(**inputs)
    assert users.dtype == items.dtype == torch.float64


def test_dim_must_be_a_multiple_of_the_heads():
    with pytest.raises(ValueError, match=r"dim=6 must be a multiple of num_heads=4"):
        GAT(num_users=2, num_items=3, dim=6, num_heads=4)
    with pytest.raises(ValueError, match=r"num_heads=0"):
        GAT(num_users=2, num_items=3, dim=6, num_heads=0)


@pytest.mark.parametrize(
    ("edge_index", "message"),
    [
        (torch.tensor([[0, 1], [2, 5]]), r"node ids in \[0, 5\], expected ids in \[0, 4\] for 2 users \+ 3"),
        (torch.tensor([[-1], [2]]), r"node ids in \[-1, 2\]"),
        (torch.tensor([[0, 1, 2]]), r"shape \(1, 3\), expected \(2, E\)"),
        (torch.tensor([0, 2]), r"shape \(2,\), expected \(2, E\)"),
        (torch.tensor([[0.0], [2.0]]), "dtype torch.float32, expected torch.int64"),
    ],
)
def test_bad_edge_index(edge_index, message):
    model = GAT(num_users=2, num_items=3, dim=4)
    with pytest.raises(ValueError, match=message):
        model(edge_index)


def planted_blocks(rng: np.random.Generator) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """40 users × 30 items in 2 communities (users 0-19 like items 0-14, users 20-39 items 15-29),
    each in-community pair an interaction with probability 0.5; a fifth of them held out."""
    user_community = np.repeat([0, 1], 20)
    item_community = np.repeat([0, 1], 15)
    same = user_community[:, None] == item_community[None, :]
    interactions = same & (rng.random(same.shape) < 0.5)
    held_out = interactions & (rng.random(same.shape) < 0.2)
    return sp.csr_matrix((interactions & ~held_out).astype(np.float32)), held_out, same


def held_out_wins(model: GAT, edge_index: torch.Tensor, held_out: np.ndarray, same: np.ndarray) -> float:
    """Mean over users of P(held-out in-community item outscores an out-of-community item)."""
    with torch.no_grad():
        users, items = model(edge_index)
    scores = (users @ items.T).numpy()
    wins = [
        (scores[user, held_out[user]][:, None] > scores[user, ~same[user]][None, :]).mean()
        for user in range(len(scores))
        if held_out[user].any()
    ]
    assert len(wins) > 30
    return float(np.mean(wins))


def test_learns_planted_communities_with_bpr():
    rng = np.random.default_rng(0)
    train, held_out, same = planted_blocks(rng)
    torch.manual_seed(0)
    model = GAT(num_users=40, num_items=30, dim=16, num_layers=2, num_heads=2)
    edge_index = bipartite_edge_index(train)
    # untrained, the graph alone gives held-out items little edge (measured 0.53-0.58 over seeds)
    assert held_out_wins(model, edge_index, held_out, same) < 0.7
    users_of_pairs, items_of_pairs = (torch.from_numpy(ids).long() for ids in train.nonzero())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(100):
        users, items = model(edge_index)
        negatives = torch.randint(30, (len(users_of_pairs),))
        loss = bpr(users[users_of_pairs], items[items_of_pairs], items[negatives])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # from about log 2 to about 0.32 (seeds 0-3); half the uniform negatives are in-community
    # non-interactions, which keep BPR well above 0
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10])
    # every user: held-out in-community items against out-of-community items (none in training)
    assert held_out_wins(model, edge_index, held_out, same) > 0.9  # measured 1.0 for seeds 0-3
