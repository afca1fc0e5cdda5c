"""L2 regularisation of the embeddings a batch touches (as the LightGCN and NGCF authors do)."""

from __future__ import annotations

from torch import Tensor


def l2_ego(*tensors: Tensor, batch_size: int) -> Tensor:
    r"""Half the squared norm of the batch's layer-0 ("ego") embeddings, per training pair.

    .. math::  \frac{1}{2B} \sum_{T} \lVert T \rVert_F^2

    This is the LightGCN authors' ``reg_loss`` (their PyTorch code: ``(1/2) (‖e_u‖² + ‖e_p‖² +
    ‖e_n‖²) / len(users)``): it penalises only the rows in the batch, before propagation, so its
    weight ``λ`` (1e-4 in the paper) plays the role of weight decay on the free parameters.

    Args:
        tensors: the ego embeddings of the batch's users, positives and negatives, any shapes
            ((B, d), (B, n, d), ...).
        batch_size: B, the number of training pairs in the batch.

    Returns:
        Scalar.
    """
    if not tensors:
        raise ValueError("l2_ego: needs at least one tensor")
    total = tensors[0].pow(2).sum()
    for tensor in tensors[1:]:
        total = total + tensor.pow(2).sum()
    return 0.5 * total / batch_size
