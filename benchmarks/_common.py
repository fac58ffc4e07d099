"""What the benchmarks share: timing a call, and torch on CUDA as the peer (or None where it is absent).

Scripts import it as ``_common`` (they run from this folder); ``make bench`` skips files starting with "_".
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of one call in microseconds, over ``repeat`` calls in batches of 10."""
    for _ in range(max(repeat // 10, 5)):
        fn()
    samples = []
    for _ in range(max(repeat // 10, 1)):
        t0 = time.perf_counter()
        for _ in range(10):
            fn()
        samples.append((time.perf_counter() - t0) / 10 * 1e6)
    return statistics.median(samples)


def cuda_torch() -> Any:
    """The torch module when it is importable and sees a CUDA device, with TF32 off (the peer computes in
    full fp32 as HLX does); None otherwise, and the peer columns are skipped."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def verdict(failed: list[str]) -> int:
    """Print what failed (or OK) and return the exit status of a benchmark that checks bounds."""
    if failed:
        print("FAIL: " + "; ".join(failed))
        return 1
    print("OK")
    return 0
