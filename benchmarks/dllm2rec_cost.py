"""Per-query cost of DLLM2Rec's models: the text teacher, a student alone, and a distilled student
with its embedding-distillation path unfolded (the item table E + w_e·P(T) recomputed for every
query, as a naive deployment would) and folded (computed once: what ``load_recommender`` and
``recforge teacher fold`` serve).

Latency is the median of repeated exact full-ranking calls on one thread (single query, and a batch
of 256), scores over the whole catalogue, history items masked out, top 10; memory is the bytes of
the parameters and buffers the scoring path holds.

    .venv/bin/python benchmarks/dllm2rec_cost.py --teacher benchmarks/runs/dllm2rec-ml1m/teacher \\
        --alone benchmarks/runs/dllm2rec-ml1m/sasrec-alone-seed0 \\
        --student benchmarks/runs/dllm2rec-ml1m/sasrec-dllm2rec-seed0
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from recforge.checkpoint import WEIGHTS_FILE, load_weights, read_checkpoint_info, tensor_shape
from recforge.config import load_config
from recforge.data.sequences import latest_histories
from recforge.models.item_tables import attach_teacher_offset
from recforge.recipes import recipe_of
from recforge.retrieval.recommender import OFFSET_KEY, load_recommender


def unfolded_model(run_dir: Path) -> nn.Module:
    """The distilled student as trained: the projected item table kept, not folded."""
    config = load_config(run_dir / "config.yaml")
    recommender = load_recommender(run_dir, device="cpu")
    settings = config.trained_model
    model = recipe_of(settings.name).build(settings, recommender.split.num_users, recommender.split.num_items)
    attach_teacher_offset(
        model, torch.zeros(tensor_shape(run_dir / WEIGHTS_FILE, OFFSET_KEY)), settings.teacher_offset
    )  # type: ignore[attr-defined]
    load_weights({"model": model}, run_dir / WEIGHTS_FILE, read_checkpoint_info(run_dir / WEIGHTS_FILE))
    return model.eval()


def scoring_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


def latency_ms(score: Callable[[torch.Tensor], torch.Tensor], windows: torch.Tensor, repeats: int) -> float:
    times = []
    with torch.no_grad():
        score(windows)  # warm-up
        for _ in range(repeats):
            started = time.perf_counter()
            score(windows)
            times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def ranker(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def rank(windows: torch.Tensor) -> torch.Tensor:
        scores = model.query_embeddings(windows) @ model.item_embeddings().T  # table read per call
        scores.scatter_(1, (windows - 1).clamp(min=0), float("-inf"))  # history masked
        return scores.topk(10, dim=1).indices

    return rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", type=Path, required=True)
    parser.add_argument("--alone", type=Path, required=True)
    parser.add_argument("--student", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folded = load_recommender(args.student, device="cpu")
    split = folded.split
    max_length = folded.config.trained_model.max_length  # type: ignore[attr-defined]
    windows = torch.as_tensor(latest_histories(split, torch.arange(256).numpy(), max_length))
    models = {
        "text teacher": load_recommender(args.teacher, device="cpu").model,
        "student alone": load_recommender(args.alone, device="cpu").model,
        "student + DLLM2Rec, unfolded": unfolded_model(args.student),
        "student + DLLM2Rec, folded": folded.model,
    }
    print(f"load {os.getloadavg()[0]:.2f}; {split.num_items} items; one thread; median of {args.repeats}")
    print("| model | 1 query ms | 256 queries ms | scoring memory MiB |")
    print("|---|---|---|---|")
    for name, model in models.items():
        assert model is not None
        model.eval()
        single = latency_ms(ranker(model), windows[:1], args.repeats)
        batch = latency_ms(ranker(model), windows, max(10, args.repeats // 10))
        print(f"| {name} | {single:.2f} | {batch:.1f} | {scoring_bytes(model) / 2**20:.1f} |")


if __name__ == "__main__":
    main()
