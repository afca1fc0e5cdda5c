r"""Next-item loss terms for sequential encoders: full softmax, sampled BCE, DROS.

Each is a plain function returning a scalar (the mean over rows); scores are dot products. The
full-table losses take the (N, I) score matrix itself, which the objective computes once per batch
for every term that needs it (:meth:`~recforge.objectives.outputs.BatchOutputs.item_scores`).
Rows are the positions that are not padding: a caller flattens the (B, L, d) states and keeps the
rows whose target is not 0, then shifts the targets to 0-based item ids.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def next_item_cross_entropy(scores: Tensor, targets: Tensor) -> Tensor:
    r"""Softmax cross-entropy over every item.

    .. math::  -\frac1N \sum_n \log \frac{\exp(s_{n t_n})}{\sum_{i=1}^{I} \exp(s_{ni})},
               \qquad s_{ni} = h_n \cdot e_i

    Args:
        scores: (N, I) state-item scores.
        targets: (N,) next items, 0-based ids into the columns of ``scores``.

    Returns:
        Scalar.
    """
    return F.cross_entropy(scores, targets)


def next_item_bce(hidden: Tensor, positive: Tensor, negatives: Tensor) -> Tensor:
    r"""Binary cross-entropy with sampled negatives (the loss of the original SASRec).

    .. math::

        -\frac1N \sum_n \Big[\log \sigma(h_n \cdot p_n)
        + \sum_{j=1}^{k} \log \sigma(-h_n \cdot n_{nj})\Big]

    Negatives are summed, not averaged: each is its own binary example, so with k = 1 this is
    SASRec's per-position loss. (``BCEWithLogitsLoss`` over the concatenated positive and negative
    logits, as DLLM2Rec writes it, averages over 2N examples: half of this for k = 1.)

    Args:
        hidden, positive: (N, d).
        negatives: (N, k, d), k >= 1.

    Returns:
        Scalar.
    """
    if negatives.dim() != 3 or negatives.shape[1] == 0:
        raise ValueError(
            f"next_item_bce: negatives must be (N, k, d) with k >= 1, got shape {tuple(negatives.shape)}"
        )
    positive_score = (hidden * positive).sum(-1)  # (N,)
    negative_score = torch.einsum("nd,nkd->nk", hidden, negatives)  # (N, k)
    # logsigmoid, not log(sigmoid(.)): finite for scores of large magnitude
    return -(F.logsigmoid(positive_score) + F.logsigmoid(-negative_score).sum(-1)).mean()


def dros_item_weights(target_counts: Tensor, *, exponent: float = 0.05) -> Tensor:
    r"""DROS's popularity weights :math:`w_i = \big((c_i + 1) / \sum_j (c_j + 1)\big)^{\gamma}`.

    Args:
        target_counts: (I,) how often each item is a training target (0-based ids).
        exponent: :math:`\gamma`; 0.05 in DLLM2Rec's ``calcu_propensity_score``, 0.5 in the DROS
            authors' SASRec/GRU scripts.

    Returns:
        (I,) float weights (not renormalised after the power, as in both reference scripts).
    """
    smoothed = target_counts.double() + 1.0  # add-one: an item never seen still has weight
    return (smoothed / smoothed.sum()).pow(exponent).to(torch.get_default_dtype())


def dros(scores: Tensor, targets: Tensor, item_weights: Tensor, *, beta: float = 1.0) -> Tensor:
    r"""Distributionally robust loss of DROS (Yang et al., "A Generic Learning Framework for
    Sequential Recommendation with Distribution Shifts", SIGIR 2023), in the form DLLM2Rec
    (Cui et al., RecSys 2024, arXiv 2405.00338) adds to its students.

    With scores :math:`s_{ni} = h_n \cdot e_i`, per-item squared errors against the one-hot label
    (:math:`(s - 1)^2` for the target, :math:`s^2` for every other item) are weighted by the
    popularity of the item (the nominal distribution, :func:`dros_item_weights`) and pooled by a
    log-sum-exp with temperature :math:`\beta` (the robust radius):

    .. math::

        \ell_n = \log \Big[ \sum_{i \ne t_n} \exp\big(w_i s_{ni}^2 / \beta\big)
                 + \exp\big(w_{t_n} (s_{nt_n} - 1)^2 / \beta\big) \Big],
        \qquad \mathcal L = \frac1N \sum_n \ell_n .

    This is the authors' code, which DLLM2Rec reuses. It is not literally the KL-DRO dual the paper
    derives, :math:`\beta \log \mathbb E_{i \sim Q_0}[\exp(\ell_i / \beta)]
    = \beta \log \sum_i w_i \exp(\ell_i/\beta)`: the code puts the nominal weight inside the
    exponent and drops the outer :math:`\beta`. We keep the code's form, because DLLM2Rec's
    published student numbers were produced with it; the term's ``weight`` in ``objective.terms`` plays the
    role of the outer factor.

    The reference code multiplies this term by ``alpha`` and adds it to the BCE loss: here that
    weight belongs to :func:`~recforge.objectives.combine.weighted_sum`. It computes the log of a
    sum of exponentials plus 1e-24; here the same value is one ``logsumexp`` (no overflow).

    Args:
        scores: (N, I) state-item scores :math:`s_{ni} = h_n \cdot e_i`.
        targets: (N,) next items, 0-based ids into the columns of ``scores``.
        item_weights: (I,) nominal weights :math:`w`, from :func:`dros_item_weights`.
        beta: :math:`\beta > 0`.

    Returns:
        Scalar.
    """
    # Source read: istarryn/DLLM2Rec main.py ("dros loss" block, calcu_propensity_score) and
    # YangZhengyi98/DROS A_SASRec_final_bce.py (calcu_propensity_score); own implementation.
    exponents = item_weights * scores.square() / beta
    target_score = scores.gather(1, targets.unsqueeze(1))  # (N, 1)
    target_exponent = item_weights[targets].unsqueeze(1) * (target_score - 1).square() / beta
    exponents = exponents.scatter(1, targets.unsqueeze(1), target_exponent)
    return torch.logsumexp(exponents, dim=1).mean()
