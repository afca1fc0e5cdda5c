"""Keep large freed blocks in the process heap while training steps run, so the big temporaries of
every step reuse memory; hand the heap back to glibc's own rules everywhere else.

glibc serves an allocation above its mmap threshold (at most 32 MiB by its adaptive rule) with a
fresh ``mmap`` and hands it back to the kernel on ``free``. A step over the whole item table makes
several tensors the size of its score matrix (SASRec on MovieLens-1M: 6,400 rows × 3,706 items =
95 MB each: the scores, the log-softmax, their gradients), so every step page-faults each of them in
again, about 81,000 minor faults. Measured on the 2-core VM (``benchmarks/RESULTS.md``, 2026-12-02,
``benchmarks/bench_sequential_step.py``): 0.83 → 0.58 CPU seconds a SASRec step (faults 81,276 →
913), 2.11 → 0.90 with DROS, whose step makes about seventeen such tensors.

With the mmap threshold at 1 GiB and trimming off, freed blocks stay in the heap and the next step
takes them back. That is only safe in a loop that keeps nothing between its big temporaries. A
loop that does keep something (an evaluation pass or a teacher export collecting each block's top-k)
fragments the heap: the small survivors are carved out of the freed blocks, the next big block no
longer fits in what is left, and the heap grows by about one block's temporaries per iteration
(measured 2026-12-03: ``recforge teacher export`` of the ML-1M text teacher grew 0.3 GB per block of
4,096 prefixes and was killed at 22.9 GB; with glibc's rules it stays at 1.2 GB). So the setting is
scoped: :func:`steps_reuse_freed_memory` around the steps, glibc's adapted state restored and the
kept blocks released after them. Other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from typing import Any

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_KEEP_MMAP_THRESHOLD = 1 << 30
_KEEP_TRIM_THRESHOLD = (1 << 31) - 1  # an int: the largest mallopt takes
# where glibc's adaptive rule ends up once a process has freed a large block: the mmap threshold at
# its 32 MiB ceiling (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit), the trim threshold at twice that
_GLIBC_MMAP_THRESHOLD = 32 << 20
_GLIBC_TRIM_THRESHOLD = 64 << 20


def _libc() -> Any | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        libc.malloc_trim.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return None
    return libc


def _set_thresholds(libc: Any, mmap_threshold: int, trim_threshold: int) -> bool:
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; True if this C library took them. Until
    :func:`release_freed_memory`, the process keeps its peak heap: use it only around loops that
    keep nothing between their large temporaries (prefer :func:`steps_reuse_freed_memory`)."""
    libc = _libc()
    return libc is not None and _set_thresholds(libc, _KEEP_MMAP_THRESHOLD, _KEEP_TRIM_THRESHOLD)


def release_freed_memory() -> bool:
    """glibc's adapted thresholds back, and every free page of the heap returned to the kernel."""
    libc = _libc()
    if libc is None:
        return False
    restored = _set_thresholds(libc, _GLIBC_MMAP_THRESHOLD, _GLIBC_TRIM_THRESHOLD)
    libc.malloc_trim(0)
    return restored


@contextlib.contextmanager
def steps_reuse_freed_memory() -> Iterator[bool]:
    """The heap keeps freed blocks inside the block (yields whether glibc took the setting), and
    gives them back when it ends, whatever happened inside."""
    kept = keep_freed_memory()
    try:
        yield kept
    finally:
        if kept:
            release_freed_memory()
