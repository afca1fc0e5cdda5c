"""DLLM2Rec end to end on MovieLens-100K (titles included): the text teacher trains, its position
signal is exported, and a SASRec student trains with both DLLM2Rec terms, then serves folded."""

from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from recforge.checkpoint import WEIGHTS_FILE
from recforge.config import config_from_dict
from recforge.distill.teacher import export_teacher, load_teacher
from recforge.retrieval.recommender import load_recommender
from recforge.train.trainer import train

SMALL = {"dim": 16, "max_length": 20, "num_layers": 1, "num_heads": 1, "inner_dim": 32}


def ml100k_config(tmp_path, name: str, model: dict, terms: dict, **objective: object) -> dict:
    return {
        "name": name,
        "output_dir": str(tmp_path / name),
        "data": {"name": "ml-100k", "split": {"protocol": "leave_one_out"}},
        "model": model,
        "objective": {"terms": terms, **objective},
        "train": {
            "epochs": 1,
            "batch_size": 256,
            "learning_rate": 3e-3,
            "num_threads": 2,
            "early_stopping_metric": "ndcg@10",
        },
        "evaluation": {"ks": [10], "metrics": ["hit", "ndcg"]},
    }


@pytest.mark.integration
def test_text_teacher_to_distilled_student_on_ml100k(tmp_path):
    teacher_config = ml100k_config(
        tmp_path, "teacher", {"name": "text_sasrec", **SMALL}, {"ce": {"weight": 1.0}}
    )
    teacher = train(config_from_dict(teacher_config), show_progress=False)
    assert math.isfinite(teacher.test.metrics["hit@10"])
    assert any("item title" in note for note in teacher.data.notes)  # encoded or read from the cache

    signal = export_teacher(tmp_path / "teacher", k=10, device="cpu")
    signal.save(tmp_path / "signal")
    loaded = load_teacher(tmp_path / "signal")
    assert loaded.queries == "positions"
    assert loaded.confidence is not None
    assert loaded.confidence.shape == (loaded.num_queries, 10)
    assert loaded.item_embeddings is not None
    assert loaded.item_embeddings.shape == (1682, 384)  # the titles' sentence embeddings

    student_config = ml100k_config(
        tmp_path,
        "student",
        {"name": "sasrec", **SMALL, "teacher_offset": {"weight": 0.2}},
        {"ce": {"weight": 1.0}, "importance_rd": {"weight": 0.8, "k": 10}},
        teacher=str(tmp_path / "signal"),
    )
    student = train(config_from_dict(student_config), show_progress=False)
    assert all(math.isfinite(value) for value in student.test.metrics.values())
    assert all(math.isfinite(entry["loss"]) for entry in student.history)
    saved = load_file(str(tmp_path / "student" / WEIGHTS_FILE))
    assert saved["model.item_embedding.frozen"].shape == (1682, 384)
    recommender = load_recommender(tmp_path / "student", device="cpu")
    assert isinstance(recommender.model.item_embedding, torch.nn.Embedding)  # folded: a plain table
    assert len(recommender.recommend([recommender.user_ids[0]], k=10)[0]) == 10
