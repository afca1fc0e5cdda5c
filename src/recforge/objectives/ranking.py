r"""Ranking loss terms on embeddings: BPR, sampled softmax (per-row or shared negatives), in-batch softmax.

Each is a plain function of the batch's embeddings returning a scalar (the mean over the batch);
scores are dot products. Cosine similarity is not a flag here: a caller who wants it normalises
the rows first (``F.normalize``), so each function has one meaning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr(user: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    r"""Bayesian personalised ranking (Rendle et al., UAI 2009).

    .. math::  -\frac{1}{Bn} \sum_b \sum_j \log \sigma(u_b \cdot p_b - u_b \cdot n_{bj})

    Args:
        user, positive: (B, d).
        negative: (B, d) for one negative per pair, or (B, n, d): the loss is then the mean over
            the n negatives as well as over the batch.

    Returns:
        Scalar.
    """
    positive_score = (user * positive).sum(-1)  # (B,)
    if negative.dim() == 3:
        _check_negatives("bpr", negative)
        negative_score = torch.einsum("bd,bnd->bn", user, negative)
        margin = positive_score.unsqueeze(1) - negative_score  # (B, n)
    else:
        margin = positive_score - (user * negative).sum(-1)  # (B,)
    return -F.logsigmoid(margin).mean()  # not log(sigmoid(.)): finite when margin << 0


def sampled_softmax(user: Tensor, positive: Tensor, negatives: Tensor, *, temperature: float) -> Tensor:
    r"""Softmax cross-entropy over the positive and n sampled negatives (positive at index 0).

    .. math::  -\frac1B \sum_b \log \frac{\exp(u_b \cdot p_b/\tau)}
               {\exp(u_b \cdot p_b/\tau) + \sum_{j=1}^{n} \exp(u_b \cdot n_{bj}/\tau)}

    Args:
        user, positive: (B, d).
        negatives: (B, n, d), n >= 1.
        temperature: :math:`\tau > 0`.

    Returns:
        Scalar.
    """
    _check_negatives("sampled_softmax", negatives)
    positive_logit = (user * positive).sum(-1, keepdim=True)  # (B, 1)
    negative_logits = torch.einsum("bd,bnd->bn", user, negatives)  # (B, n)
    logits = torch.cat([positive_logit, negative_logits], dim=1) / temperature
    targets = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, targets)


def shared_negatives_softmax(
    user: Tensor,
    positive: Tensor,
    negatives: Tensor,
    *,
    temperature: float,
    positive_ids: Tensor | None = None,
    negative_ids: Tensor | None = None,
) -> Tensor:
    r"""Softmax cross-entropy over the positive and one pool of M negatives shared by the batch.

    .. math::  -\frac1B \sum_b \log \frac{\exp(u_b \cdot p_b/\tau)}
               {\exp(u_b \cdot p_b/\tau) + \sum_{m \in N_b} \exp(u_b \cdot n_m/\tau)}

    The pool is typically every uniform negative sampled for the batch (B·k of them), so each row
    is contrasted with B·k negatives for the cost of one (B, d) × (d, M) matmul instead of a
    (B, M, d) gather: many negatives per row at almost no sampling cost. Given ids, a pool item
    equal to row b's own positive is left out of :math:`N_b` (it would be a false negative).

    Args:
        user, positive: (B, d).
        negatives: (M, d), M >= 1.
        temperature: :math:`\tau > 0`.
        positive_ids / negative_ids: optional (B,) / (M,) item ids, to mask a row's own positive.

    Returns:
        Scalar.
    """
    if negatives.dim() != 2 or len(negatives) == 0:
        raise ValueError(
            f"shared_negatives_softmax: negatives must be (M, d) with M >= 1, got {tuple(negatives.shape)}"
        )
    positive_logit = (user * positive).sum(-1, keepdim=True)  # (B, 1)
    negative_logits = user @ negatives.T  # (B, M)
    if positive_ids is not None and negative_ids is not None:
        own_positive = positive_ids.unsqueeze(1) == negative_ids.unsqueeze(0)
        negative_logits = negative_logits.masked_fill(own_positive, float("-inf"))
    logits = torch.cat([positive_logit, negative_logits], dim=1) / temperature
    targets = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, targets)


def in_batch_softmax(
    user: Tensor,
    positive: Tensor,
    *,
    temperature: float,
    item_ids: Tensor | None = None,
    log_q: Tensor | None = None,
) -> Tensor:
    r"""Softmax cross-entropy where the other rows' positives are the negatives.

    .. math::  -\frac1B \sum_b \log \frac{\exp(u_b \cdot p_b/\tau)}
               {\sum_{c \in C_b} \exp(u_b \cdot p_c/\tau)}

    with :math:`C_b` every row of the batch. A popular item appears as the positive of several
    rows; for row b a copy of its own item at row c ≠ b is a false negative. Given ``item_ids``,
    such copies are left out: :math:`C_b = \{b\} \cup \{c : \text{item}_c \ne \text{item}_b\}`.

    Args:
        user, positive: (B, d).
        temperature: :math:`\tau > 0`.
        item_ids: optional (B,) id of each row's positive item, to mask duplicates.
        log_q: optional (B,) log-probability that each row's positive is drawn into a batch. The
            in-batch candidates are a popularity-biased sample, so a popular item is a negative far
            more often than uniform sampling would make it; subtracting :math:`\log q_c` from
            column c's logit (Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus
            Item Recommendations", RecSys 2019) corrects the softmax toward the full catalogue's.

    Returns:
        Scalar.
    """
    logits = user @ positive.T / temperature  # (B, B), row b's positive on the diagonal
    if log_q is not None:
        logits = logits - log_q.unsqueeze(0)
    if item_ids is not None:
        same_item = item_ids.unsqueeze(0) == item_ids.unsqueeze(1)
        same_item.fill_diagonal_(False)
        logits = logits.masked_fill(same_item, float("-inf"))  # the diagonal stays finite: no NaN
    targets = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits, targets)


def _check_negatives(name: str, negatives: Tensor) -> None:
    if negatives.dim() != 3 or negatives.shape[1] == 0:
        shape = tuple(negatives.shape)
        raise ValueError(f"{name}: negatives must be (B, n, d) with n >= 1, got shape {shape}")
