"""One distillation term's forward + backward on a CiteULike-sized batch, in isolation.

Random teacher (200-d) and student (20-d) tables of DE-RRD's CiteULike size (5,219 users, 25,181
items) and a batch of 1,024 (user, positive, negative) triples drawn uniformly: the shapes a
CiteULike student step gives the term. Reports the mean seconds of ``--steps`` steps after one
warm-up, on one thread with ``recforge.allocator`` on, as ``recforge train`` runs.

    .venv/bin/python benchmarks/bench_distill_term.py --term htd --steps 5
"""

from __future__ import annotations

import argparse
import time

import torch

from recforge.allocator import keep_freed_memory
from recforge.distill.teacher import TeacherSignal
from recforge.objectives.outputs import BatchOutputs, TermContext
from recforge.objectives.registry import TERMS

USERS, ITEMS, TEACHER_DIM, STUDENT_DIM, BATCH = 5219, 25181, 200, 20, 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--term", default="de", choices=("de", "phr", "ftd", "htd"))
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    generator = torch.Generator().manual_seed(0)
    signal = TeacherSignal(
        queries="users",
        top_items=torch.zeros(USERS, 1, dtype=torch.long),
        top_scores=torch.zeros(USERS, 1),
        user_ids=[str(u) for u in range(USERS)],
        item_ids=[str(i) for i in range(ITEMS)],
        split_hash="0" * 16,
        producer={},
        query_embeddings=torch.randn(USERS, TEACHER_DIM, generator=generator),
        item_embeddings=torch.randn(ITEMS, TEACHER_DIM, generator=generator),
    )
    context = TermContext(USERS, ITEMS, STUDENT_DIM, torch.ones(ITEMS), torch.device("cpu"), teacher=signal)
    term_class = TERMS[args.term]
    term = term_class(term_class.Params(weight=1.0), context)
    users = torch.randn(USERS, STUDENT_DIM, requires_grad=True)
    items = torch.randn(ITEMS, STUDENT_DIM, requires_grad=True)
    queries = torch.randint(0, USERS, (BATCH,), generator=generator)
    positives = torch.randint(0, ITEMS, (BATCH,), generator=generator)
    negatives = torch.randint(0, ITEMS, (BATCH, 1), generator=generator)

    def step() -> None:
        outputs = BatchOutputs(
            query_ids=queries,
            queries=users[queries],
            positive_ids=positives,
            positives=items[positives],
            negative_ids=negatives,
            negatives=items[negatives],
        )
        term(outputs).backward()

    step()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    print(f"{args.term}: {(time.perf_counter() - start) / args.steps:.3f} s per batch (forward + backward)")


if __name__ == "__main__":
    main()
