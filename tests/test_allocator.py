"""recforge.allocator: once applied, a training step's large temporaries stop page-faulting."""

from __future__ import annotations

import subprocess
import sys

import pytest

# a full-softmax step over a 52 MB score matrix, as a sequential model's batch makes; prints the
# minor page faults of its last three repetitions
STEPS = """
import resource, sys, torch
import torch.nn.functional as F
from recforge.allocator import keep_freed_memory
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    assert keep_freed_memory() and keep_freed_memory()
generator = torch.Generator().manual_seed(0)
queries = torch.randn(1000, 4, generator=generator, requires_grad=True)
items = torch.randn(13000, 4, generator=generator, requires_grad=True)
targets = torch.randint(13000, (1000,), generator=generator)
for step in range(12):
    if step == 9:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    F.cross_entropy(queries @ items.T, targets).backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_steps_reuse_freed_blocks_instead_of_faulting_them_in_again():
    without = faults("default")
    assert without > 3 * 12_000  # glibc maps and unmaps each 52 MB block: the cost being removed
    assert faults("keep") < without / 4  # (the heap grows for a few steps, then reuses)
