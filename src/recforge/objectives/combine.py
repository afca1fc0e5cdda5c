"""Turn named loss terms into one loss: DESIGN idea 2, objectives are terms you add."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from recforge.errors import ConfigError


def weighted_sum(
    terms: Mapping[str, Tensor], weights: Mapping[str, float]
) -> tuple[Tensor, dict[str, Tensor]]:
    r"""``total = Σ_k weights[k] · terms[k]``, plus the unweighted terms detached, for logging.

    Every computed term needs a weight and every weight a computed term: a term nobody weighted,
    or a weight for a term that was never computed, is a config mistake, never a silent zero.

    Args:
        terms: name -> scalar tensor.
        weights: name -> weight, the same names as ``terms``.

    Returns:
        ``(total, parts)``: ``total`` keeps the graph for ``backward()``; ``parts`` maps each name to
        its unweighted, detached value.

    Raises:
        ConfigError: no terms, or the names of ``terms`` and ``weights`` differ (both lists named).
    """
    if not terms:
        raise ConfigError("weighted_sum: no loss terms to combine")
    unweighted = sorted(terms.keys() - weights.keys())
    if unweighted:
        raise ConfigError(f"loss terms {unweighted} have no weight in objective.terms")
    uncomputed = sorted(weights.keys() - terms.keys())
    if uncomputed:
        raise ConfigError(f"objective.terms names {uncomputed}, but no such term was computed")
    names = list(terms)
    total = weights[names[0]] * terms[names[0]]
    for name in names[1:]:
        total = total + weights[name] * terms[name]
    return total, {name: value.detach() for name, value in terms.items()}
