"""recforge.allocator: inside the scope a training step's large temporaries stop page-faulting;
after it, a loop that keeps results between large temporaries no longer grows the heap."""

from __future__ import annotations

import subprocess
import sys

import pytest

# a full-softmax step over a 52 MB score matrix, as a sequential model's batch makes; prints the
# minor page faults of its last three repetitions
STEPS = """
import resource, sys, torch
import torch.nn.functional as F
from recforge.allocator import steps_reuse_freed_memory
torch.set_num_threads(1)
generator = torch.Generator().manual_seed(0)
queries = torch.randn(1000, 4, generator=generator, requires_grad=True)
items = torch.randn(13000, 4, generator=generator, requires_grad=True)
targets = torch.randint(13000, (1000,), generator=generator)

def steps():
    for step in range(12):
        if step == 9:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        F.cross_entropy(queries @ items.T, targets).backward()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

if sys.argv[1] == "keep":
    with steps_reuse_freed_memory() as kept:
        assert kept
        print(steps())
else:
    print(steps())
"""

# an evaluation pass, twice: a 52 MB score block per batch of queries, its top-k kept; prints the
# resident-memory growth in MB after a scope of steps (left on, the heap fragments: +2 GB measured
# here, though how much depends on the machine; benchmarks/RESULTS.md, 2026-12-03)
ACCUMULATE = """
import sys, torch
from recforge.allocator import keep_freed_memory, steps_reuse_freed_memory
torch.set_num_threads(1)

def resident_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6

if sys.argv[1] == "scoped":
    with steps_reuse_freed_memory():
        for _ in range(3):
            torch.randn(1000, 13000).exp_()
else:
    keep_freed_memory()
start = resident_mb()
for _ in range(2):
    kept = [torch.randn(1000, 13000).topk(20, dim=1) for _ in range(20)]
print(resident_mb() - start)
"""


def run(script: str, mode: str) -> float:
    done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True)
    return float(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_steps_reuse_freed_blocks_instead_of_faulting_them_in_again():
    without = run(STEPS, "default")
    assert without > 3 * 12_000  # glibc maps and unmaps each 52 MB block: the cost being removed
    assert run(STEPS, "keep") < without / 4  # (the heap grows for a few steps, then reuses)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_after_the_steps_a_loop_that_keeps_results_does_not_grow_the_heap():
    assert run(ACCUMULATE, "scoped") < 150  # each block mapped and unmapped: a few MB of top-k
