"""Item tables from frozen vectors: the offset form by hand, gradients, folding, and a DLLM2Rec
student trained with a teacher offset, reloaded folded and scoring as it did unfolded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from recforge.checkpoint import WEIGHTS_FILE, load_weights, read_checkpoint_info
from recforge.config import config_from_dict, load_config
from recforge.distill.fold import fold_run
from recforge.distill.teacher import export_teacher
from recforge.errors import ConfigError, RecforgeError
from recforge.models.gru4rec import GRU4Rec
from recforge.models.item_tables import (
    ProjectedItemTable,
    TeacherOffsetSettings,
    attach_teacher_offset,
    fold_item_table,
)
from recforge.models.mf import MF
from recforge.models.sasrec import SASRec
from recforge.recipes import recipe_of
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train


def test_offset_table_by_hand():
    torch.manual_seed(0)
    frozen = torch.randn(4, 6)
    base = nn.Embedding(5, 3, padding_idx=0)
    table = ProjectedItemTable(frozen, 3, base=base, scale=0.2)
    assert isinstance(table.projector, nn.Linear)
    expected = base.weight[1:] + 0.2 * (frozen @ table.projector.weight.T + table.projector.bias)
    assert torch.allclose(table.weight[1:], expected)
    assert torch.equal(table.weight[0], base.weight[0])  # padding: zero base, no projected part
    assert torch.equal(table.weight[0], torch.zeros(3))
    ids = torch.tensor([[0, 2, 4]])
    assert torch.allclose(table(ids), F.embedding(ids, table.weight))
    table(ids).sum().backward()
    assert base.weight.grad is not None
    assert table.projector.weight.grad is not None
    assert base.weight.grad[0].abs().sum() == 0  # padding_idx keeps row 0 out of training
    assert "frozen" in dict(table.named_buffers())  # saved with the weights, never trained
    assert all(name != "frozen" for name, _ in table.named_parameters())


def test_text_only_table_and_mlp_projector():
    frozen = torch.randn(3, 5)
    table = ProjectedItemTable(frozen, 2, projector="mlp", hidden_dim=7)
    assert isinstance(table.projector, nn.Sequential)
    assert table.weight.shape == (4, 2)
    assert torch.equal(table.weight[0], torch.zeros(2))
    assert torch.allclose(table.weight[1:], table.projector(frozen))
    with pytest.raises(ConfigError, match="base table is"):
        ProjectedItemTable(frozen, 2, base=nn.Embedding(3, 2))


@pytest.mark.parametrize("encoder", [SASRec, GRU4Rec])
def test_folding_keeps_every_score(encoder):
    torch.manual_seed(1)
    model = encoder(num_items=6, dim=4) if encoder is GRU4Rec else encoder(num_items=6, dim=4, max_length=5)
    attach_teacher_offset(model, torch.randn(6, 9), TeacherOffsetSettings(weight=0.5, projector="mlp"))
    model.eval()
    sequences = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 0, 6, 5]])
    before = model.query_embeddings(sequences) @ model.item_embeddings().T
    assert fold_item_table(model)
    assert isinstance(model.item_embedding, nn.Embedding)
    after = model.query_embeddings(sequences) @ model.item_embeddings().T
    assert torch.allclose(before, after, atol=1e-6)
    assert not fold_item_table(model)  # nothing left to fold


def test_an_offset_needs_an_item_table_of_the_teachers_size():
    with pytest.raises(ConfigError, match="no item_embedding table"):
        attach_teacher_offset(MF(num_users=2, num_items=3, dim=4), torch.randn(3, 2), TeacherOffsetSettings())
    with pytest.raises(ConfigError, match="5 item embeddings for 6 items"):
        attach_teacher_offset(SASRec(num_items=6, dim=4), torch.randn(5, 2), TeacherOffsetSettings())


def sequential(root: Path, data: Path, name: str, **sections: object) -> dict:
    config: dict = {
        "name": name,
        "output_dir": str(root / name),
        "data": {
            "name": str(data),
            "options": {"user": "user", "item": "item", "timestamp": "timestamp"},
            "split": {"protocol": "leave_one_out"},
        },
        "model": {"name": "sasrec", "dim": 8, "max_length": 4, "num_layers": 1, "inner_dim": 8},
        "objective": {"terms": {"ce": {"weight": 1.0}}},
        "train": {
            "epochs": 2,
            "batch_size": 8,
            "num_threads": 1,
            "early_stopping_metric": "recall@5",
            "num_negatives": 1,
        },
        "evaluation": {"ks": [5]},
    }
    for key, value in sections.items():
        config[key] = {**config[key], **value}  # type: ignore[dict-item]
    return config


@pytest.fixture(scope="module")
def distilled(write_events, tmp_path_factory) -> dict[str, Path]:
    """A SASRec teacher, its position signal, and a student with both DLLM2Rec terms."""
    root = tmp_path_factory.mktemp("offset")
    data = write_events(10, 15, 8, seed=6)
    train(config_from_dict(sequential(root, data, "teacher")), show_progress=False)
    export_teacher(root / "teacher", k=5, device="cpu").save(root / "signal")
    student = sequential(
        root,
        data,
        "student",
        model={"teacher_offset": {"weight": 0.2}},
        objective={
            "terms": {"ce": {"weight": 1.0}, "importance_rd": {"weight": 0.8, "k": 5}},
            "teacher": str(root / "signal"),
        },
    )
    train(config_from_dict(student), show_progress=False)
    return {"root": root, "student": root / "student", "signal": root / "signal", "data": data}


def unfolded_scores(run_dir: Path) -> torch.Tensor:
    """The student exactly as trained: encoder + offset + saved weights, nothing folded."""
    config = load_config(run_dir / "config.yaml")
    recipe = recipe_of("sasrec")
    model = recipe.build(config.trained_model, 0, 15)
    offset = config.trained_model.teacher_offset  # type: ignore[attr-defined]
    attach_teacher_offset(model, torch.zeros(15, 8), offset)
    info = read_checkpoint_info(run_dir / WEIGHTS_FILE)
    load_weights({"model": model}, run_dir / WEIGHTS_FILE, info)
    model.eval()
    sequences = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    with torch.no_grad():
        return model.query_embeddings(sequences) @ model.item_embeddings().T


def test_a_student_with_a_teacher_offset_reloads_folded_and_scores_the_same(distilled):
    run_dir = distilled["student"]
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert "test" in saved
    recommender = load_recommender(run_dir, device="cpu")
    model = recommender.model
    assert model is not None
    assert isinstance(model.item_embedding, nn.Embedding)  # folded on load
    sequences = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    with torch.no_grad():
        folded = model.query_embeddings(sequences) @ model.item_embeddings().T
    assert torch.allclose(folded, unfolded_scores(run_dir), atol=1e-5)


def test_fold_run_writes_a_plain_student(distilled, tmp_path):
    folded_dir = fold_run(distilled["student"], tmp_path / "folded")
    config = load_config(folded_dir / "config.yaml")
    assert config.trained_model.teacher_offset is None  # type: ignore[attr-defined]
    assert config.objective.teacher is None
    assert set(config.objective.terms) == {"ce"}
    original = load_recommender(distilled["student"], device="cpu")
    plain = load_recommender(folded_dir, device="cpu")
    users = original.user_ids[:4]
    for mine, theirs in zip(plain.recommend(users, k=5), original.recommend(users, k=5), strict=True):
        assert [r.item for r in mine] == [r.item for r in theirs]
        assert [r.score for r in mine] == pytest.approx([r.score for r in theirs], abs=1e-5)
    tensors = load_file(str(folded_dir / WEIGHTS_FILE))
    assert "model.item_embedding.weight" in tensors
    assert not any("frozen" in key or "projector" in key for key in tensors)
    assert json.loads((folded_dir / "metrics.json").read_text())["folded_from"].endswith("student")
    with pytest.raises(ConfigError, match="nothing to fold"):
        fold_run(folded_dir, tmp_path / "again")


def test_an_offset_without_a_teacher_is_refused(distilled):
    config = sequential(distilled["root"], distilled["data"], "x", model={"teacher_offset": {"weight": 0.2}})
    with pytest.raises(RecforgeError, match=r"objective\.teacher"):
        config_from_dict(config)
