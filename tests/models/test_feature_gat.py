"""The feature GAT of friend graphs: sparse and dense features agree, an isolated node has an
embedding from its features alone, the mask token reaches only the masked nodes' neighbourhoods,
and seeded construction equals a seeded reset."""

from __future__ import annotations

import pytest
import torch

from recforge.models.feature_gat import FeatureGAT


def graph() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    features = (torch.rand(5, 12) < 0.3).float()
    # 0-1, 1-2 both directions; 3 and 4 isolated
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    return features, edge_index


def test_sparse_and_dense_features_give_the_same_embeddings():
    features, edge_index = graph()
    model = FeatureGAT(12, dim=8, num_layers=2, num_heads=2).eval()
    dense = model(features, edge_index)
    sparse = model(features.to_sparse(), edge_index)
    assert dense.shape == (5, 8)
    assert torch.allclose(dense, sparse, atol=1e-6)
    assert model.reconstruct(dense).shape == (5, 12)


def test_an_isolated_node_is_its_features():
    features, edge_index = graph()
    model = FeatureGAT(12, dim=8).eval()
    before = model(features, edge_index)
    changed = features.clone()
    changed[3] = 1 - changed[3]
    after = model(changed, edge_index)
    assert not torch.allclose(before[3], after[3])  # node 3 reads its own features
    assert torch.allclose(before[[0, 1, 2, 4]], after[[0, 1, 2, 4]])  # and nobody else does


def test_the_mask_token_reaches_only_the_masked_nodes_neighbourhood():
    features, edge_index = graph()
    model = FeatureGAT(12, dim=8, num_layers=1).eval()
    plain = model(features, edge_index)
    masked = model(features, edge_index, masked=torch.tensor([True, False, False, False, False]))
    differs = ~torch.isclose(plain, masked).all(1)
    assert differs.tolist() == [True, True, False, False, False]  # node 0 and its one-hop neighbour


def test_seeded_construction_equals_seeded_reset():
    torch.manual_seed(5)
    model = FeatureGAT(12, dim=8)
    first = {key: value.clone() for key, value in model.state_dict().items()}
    torch.manual_seed(5)
    model.reset_parameters()
    for key, value in model.state_dict().items():
        assert torch.equal(first[key], value), key
    with pytest.raises(ValueError, match="multiple of num_heads"):
        FeatureGAT(12, dim=9, num_heads=2)
