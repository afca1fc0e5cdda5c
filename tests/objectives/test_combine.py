from __future__ import annotations

import pytest
import torch

from recforge.errors import ConfigError
from recforge.objectives.combine import weighted_sum


def test_total_and_detached_parts():
    x = torch.tensor(2.0, requires_grad=True)
    terms = {"bpr": x * 3, "l2": x**2}
    total, parts = weighted_sum(terms, {"bpr": 1.0, "l2": 0.5})
    assert total.item() == pytest.approx(6.0 + 0.5 * 4.0)
    assert parts == {"bpr": pytest.approx(6.0), "l2": pytest.approx(4.0)}
    assert not any(part.requires_grad for part in parts.values())
    total.backward()
    assert x.grad.item() == pytest.approx(3.0 + 0.5 * 2 * 2.0)


def test_term_without_weight():
    with pytest.raises(ConfigError, match=r"loss terms \['l2'\] have no weight in objective.terms"):
        weighted_sum({"bpr": torch.tensor(1.0), "l2": torch.tensor(2.0)}, {"bpr": 1.0})


def test_weight_without_term():
    message = r"objective.terms names \['uniformity'\], but no such term was computed"
    with pytest.raises(ConfigError, match=message):
        weighted_sum({"bpr": torch.tensor(1.0)}, {"bpr": 1.0, "uniformity": 0.5})


def test_no_terms():
    with pytest.raises(ConfigError, match="no loss terms to combine"):
        weighted_sum({}, {})
