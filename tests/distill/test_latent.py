"""DE: the experts' mixture and loss by hand, the annealed selection, and a distilled run."""

from __future__ import annotations

import math

import pytest
import torch

from recforge.distill.latent import DE, DEParams, Experts
from recforge.distill.teacher import TeacherError, TeacherSignal
from recforge.objectives.outputs import BatchOutputs, TermContext


def test_one_expert_is_a_two_layer_mlp_regressing_the_teacher():
    torch.manual_seed(0)
    experts = Experts(student_dim=3, teacher_dim=5, count=1)
    assert experts.hidden.shape == (1, 3, 4)  # hidden width (3 + 5) // 2
    student, teacher = torch.randn(2, 3), torch.randn(2, 5)
    hidden = torch.relu(student @ experts.hidden[0] + experts.hidden_bias[0])
    mapped = hidden @ experts.output[0] + experts.output_bias[0]
    expected = ((teacher - mapped) ** 2).sum(1)
    assert torch.allclose(experts(student, teacher, temperature=1.0), expected)
    assert Experts(student_dim=4, teacher_dim=4, count=2).hidden.shape == (2, 4, 2)  # self-distillation


def test_a_cold_selection_picks_one_expert_per_row():
    torch.manual_seed(1)
    experts = Experts(student_dim=2, teacher_dim=3, count=4)
    student, teacher = torch.randn(5, 2), torch.randn(5, 3)
    torch.manual_seed(7)
    cold = experts(student, teacher, temperature=1e-10)
    with torch.no_grad():  # recompute by hand with the same Gumbel draws
        hidden = torch.relu(torch.matmul(student.unsqueeze(0), experts.hidden) + experts.hidden_bias)
        outputs = torch.matmul(hidden, experts.output) + experts.output_bias
        probabilities = torch.softmax(experts.selection(teacher), dim=1)
        torch.manual_seed(7)
        uniform = torch.rand_like(probabilities).clamp_(1e-10, 1 - 1e-7)
        chosen = ((probabilities + 1e-10).log() - torch.log(-torch.log(uniform))).argmax(1)
        expected = ((teacher - outputs[chosen, torch.arange(5)]) ** 2).sum(1)
    assert torch.allclose(cold, expected, atol=1e-5)


def test_a_warm_selection_mixes_every_expert_by_its_gumbel_weight():
    torch.manual_seed(2)
    experts = Experts(student_dim=3, teacher_dim=4, count=3)
    student, teacher = torch.randn(6, 3), torch.randn(6, 4)
    torch.manual_seed(8)
    warm = experts(student, teacher, temperature=2.0)
    with torch.no_grad():  # one expert at a time, weighted by the same Gumbel-softmax draws
        probabilities = torch.softmax(experts.selection(teacher), dim=1)
        torch.manual_seed(8)
        uniform = torch.rand_like(probabilities).clamp_(1e-10, 1 - 1e-7)
        logits = (probabilities + 1e-10).log() - torch.log(-torch.log(uniform))
        weights = torch.softmax(logits / 2.0, dim=1)
        mixed = torch.zeros(6, 4)
        for m in range(3):
            hidden = torch.relu(student @ experts.hidden[m] + experts.hidden_bias[m])
            mixed += weights[:, m : m + 1] * (hidden @ experts.output[m] + experts.output_bias[m])
        expected = ((teacher - mixed) ** 2).sum(1)
    assert weights.max() < 0.99  # genuinely mixed, not one expert
    assert torch.allclose(warm, expected, atol=1e-5)


def teacher_signal(num_users: int, num_items: int, dim: int) -> TeacherSignal:
    generator = torch.Generator().manual_seed(3)
    return TeacherSignal(
        queries="users",
        top_items=torch.zeros(num_users, 1, dtype=torch.long),
        top_scores=torch.zeros(num_users, 1),
        user_ids=[str(u) for u in range(num_users)],
        item_ids=[str(i) for i in range(num_items)],
        split_hash="0" * 16,
        producer={},
        query_embeddings=torch.randn(num_users, dim, generator=generator),
        item_embeddings=torch.randn(num_items, dim, generator=generator),
    )


def context(
    teacher: TeacherSignal | None, num_users: int = 3, num_items: int = 4, dim: int = 2
) -> TermContext:
    return TermContext(num_users, num_items, dim, torch.ones(num_items), torch.device("cpu"), teacher=teacher)


def test_de_counts_each_entity_once_and_weighs_items_by_half():
    teacher = teacher_signal(3, 4, 6)
    term = DE(DEParams(weight=1.0, experts=1), context(teacher))
    queries, items = torch.randn(3, 2), torch.randn(4, 2)
    outputs = BatchOutputs(
        query_ids=torch.tensor([0, 0, 2]),
        queries=queries,
        positive_ids=torch.tensor([1, 1, 3]),
        positives=items[torch.tensor([1, 1, 3])],
        negative_ids=torch.tensor([[0], [0], [2]]),
        negatives=items[torch.tensor([[0], [0], [2]])],
    )
    users = term.user_experts(queries[[0, 2]], teacher.query_embeddings[[0, 2]], 1.0).sum()
    positives = term.item_experts(items[[1, 3]], teacher.item_embeddings[[1, 3]], 1.0).sum()
    negatives = term.item_experts(items[[0, 2]], teacher.item_embeddings[[0, 2]], 1.0).sum()
    assert term(outputs).item() == pytest.approx(((users + 0.5 * (positives + negatives)) / 3).item())
    assert {name.split(".")[0] for name, _ in term.named_parameters()} == {"user_experts", "item_experts"}
    assert "teacher_users" not in term.state_dict()  # the teacher is data, not state


def test_the_temperature_is_annealed_geometrically():
    term = DE(
        DEParams(weight=1.0, start_temperature=1.0, end_temperature=1e-4, anneal_epochs=4),
        context(teacher_signal(3, 4, 2)),
    )
    temperatures = []
    for epoch in (0, 2, 4, 9):
        term.on_epoch(epoch)
        temperatures.append(term.temperature)
    assert temperatures == pytest.approx([1.0, 1e-2, 1e-4, 1e-4])
    assert math.isfinite(temperatures[-1])


def test_de_needs_teacher_embeddings():
    bare = teacher_signal(3, 4, 2)
    from dataclasses import replace

    with pytest.raises(TeacherError, match="query and item embeddings"):
        DE(DEParams(weight=1.0), context(replace(bare, query_embeddings=None)))
    with pytest.raises(TeacherError, match="one row per user"):
        DE(DEParams(weight=1.0), context(bare, num_users=5))


def test_phr_starts_as_one_shared_projection_and_personalises_by_the_teacher():
    from recforge.distill.latent import PHR, PersonalisedProjection, PHRParams

    torch.manual_seed(0)
    projection = PersonalisedProjection(student_dim=2, teacher_dim=3, hidden=4)
    student, teacher = torch.randn(5, 2), torch.randn(5, 3)
    shared = projection.decode(torch.relu(projection.encode(student)))
    assert torch.allclose(projection(student, teacher), ((teacher - shared) ** 2).sum(1))
    with torch.no_grad():
        projection.scale.weight.fill_(0.5)
    modulated = torch.relu(projection.encode(student)) * (1 + teacher @ projection.scale.weight.T)
    assert torch.allclose(
        projection(student, teacher), ((teacher - projection.decode(modulated)) ** 2).sum(1)
    )
    # the teacher only rescales features of the student: a zero student row cannot reproduce its
    # teacher row (the shortcut that starved the student of gradient), whatever the modulation
    with torch.no_grad():
        projection.scale.weight.normal_()
        projection.scale.bias.normal_()
    zero = torch.zeros(5, 2)
    assert torch.allclose(projection(zero, teacher), ((teacher - projection.decode.bias) ** 2).sum(1))
    term = PHR(PHRParams(weight=1.0, hidden=4), context(teacher_signal(3, 4, 3)))
    outputs = BatchOutputs(
        query_ids=torch.tensor([0, 1]),
        queries=torch.randn(2, 2),
        positive_ids=torch.tensor([1, 1]),
        positives=torch.randn(2, 2),
        negative_ids=torch.tensor([[2], [3]]),
        negatives=torch.randn(2, 1, 2),
    )
    value = term(outputs)
    value.backward()
    assert all(parameter.grad is not None for parameter in term.parameters())
