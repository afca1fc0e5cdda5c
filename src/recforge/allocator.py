"""Keep large freed blocks in the process heap, so the big temporaries of every step reuse memory.

glibc serves an allocation above its mmap threshold (at most 32 MiB by its adaptive rule) with a
fresh ``mmap`` and hands it back to the kernel on ``free``. A step over the whole item table makes
several tensors the size of its score matrix (SASRec on MovieLens-1M: 6,400 rows × 3,706 items =
95 MB each: the scores, the log-softmax, their gradients), so every step page-faults each of them in
again, about 81,000 minor faults. Measured on the 2-core VM (``benchmarks/RESULTS.md``, 2026-12-02,
``benchmarks/bench_sequential_step.py``): 0.83 → 0.58 CPU seconds a SASRec step (faults 81,276 →
913), 2.11 → 0.90 with DROS, whose step makes about seventeen such tensors.

With the mmap threshold at 1 GiB and trimming off, freed blocks stay in the heap and the next step
takes them back. The cost: a process keeps its peak memory until it exits, which a training or
serving process reaches again at every step anyway. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30
_TRIM_THRESHOLD = (1 << 31) - 1  # an int: the largest mallopt takes

_applied = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if this C library took them."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    )
    return _applied
