from __future__ import annotations

from functools import partial

import pytest
import torch

from recforge.models.propagation import sparse_propagate, sparse_transpose


def random_sparse(rows: int, columns: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    dense = torch.rand(rows, columns, generator=generator, dtype=dtype)
    dense = dense * (torch.rand(rows, columns, generator=generator) < 0.3)
    return dense


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_gradcheck_non_symmetric(layout):
    dense = random_sparse(5, 4, seed=0)
    adjacency = dense.to_sparse_csr() if layout == "csr" else dense.to_sparse_coo()
    transpose = sparse_transpose(adjacency)
    assert transpose.layout == adjacency.layout
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(partial(sparse_propagate, adjacency, adjacency_transpose=transpose), (x,))


def test_equals_dense_matmul_forward_and_backward():
    dense = random_sparse(6, 5, seed=1, dtype=torch.float32)
    adjacency = dense.to_sparse_csr()
    x = torch.randn(5, 4, requires_grad=True)
    weights = torch.randn(6, 4)
    output = sparse_propagate(adjacency, x, adjacency_transpose=sparse_transpose(adjacency))
    (output * weights).sum().backward()
    x_dense = x.detach().clone().requires_grad_()
    expected = dense @ x_dense
    (expected * weights).sum().backward()
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(x.grad, x_dense.grad)


def test_symmetric_matrix_is_its_own_transpose():
    dense = random_sparse(5, 5, seed=2)
    dense = dense + dense.T
    adjacency = dense.to_sparse_csr()
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(partial(sparse_propagate, adjacency, adjacency_transpose=adjacency), (x,))


def test_errors():
    adjacency = random_sparse(3, 2, seed=3).to_sparse_csr()
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match=r"adjacency_transpose has shape \(3, 2\), expected \(2, 3\)"):
        sparse_propagate(adjacency, x, adjacency_transpose=adjacency)
    needs_grad = random_sparse(3, 2, seed=3).to_sparse_coo().requires_grad_()
    with pytest.raises(ValueError, match="adjacency gets no gradient"):
        sparse_propagate(needs_grad, x, adjacency_transpose=sparse_transpose(needs_grad.detach()))
