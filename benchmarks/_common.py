"""What the benchmarks share, from hlx_core/bench (which ``hlx bench`` runs on): timing a call, torch on
CUDA as the peer (or None where it is absent) timed with CUDA events, an output on the host, a verdict.

Scripts import it as ``_common`` (they run from this folder); ``make bench`` skips files starting with "_".
"""
from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from hlx_core.bench.harness import host_array
from hlx_core.bench.peers import cuda_torch, events
from hlx_core.bench.timing import per_call_us, samples

__all__ = ["cuda_event_ms", "cuda_torch", "host_array", "per_call_us", "verdict"]


def cuda_event_ms(torch: Any, fn: Callable[[], object], repeat: int, rounds: int = 5) -> float:
    """Milliseconds per call of ``fn`` on the GPU: CUDA events around ``repeat`` back-to-back calls on the
    current stream, the median over ``rounds`` after one such round of warm-up (device time of the peer's
    kernels, as HLX's timestamps give its own; a synchronized single call would add the launch and the
    host's wait)."""
    return statistics.median(samples(events(torch, fn, repeat), 1, rounds)) * 1e3


def verdict(failed: list[str]) -> int:
    """Print what failed (or OK) and return the exit status of a benchmark that checks bounds."""
    if failed:
        print("FAIL: " + "; ".join(failed))
        return 1
    print("OK")
    return 0
