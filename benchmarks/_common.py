"""What the benchmarks share, from hlx_core/bench (which ``hlx bench`` runs on): timing a call, torch on
CUDA as the peer (or None where it is absent) timed with CUDA events, an output on the host, a verdict,
the median wall time of hlx.run over a block of contracts and this process's resident memory.

Scripts import it as ``_common`` (they run from this folder); ``make bench`` skips files starting with "_".
"""
from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import hlx
from hlx_core.bench.harness import host_array
from hlx_core.bench.peers import cuda_torch, events
from hlx_core.bench.timing import per_call_us, samples

__all__ = ["cuda_event_ms", "cuda_torch", "host_array", "median_run_s", "per_call_us", "rss_bytes", "verdict"]

PAGE = os.sysconf("SC_PAGE_SIZE")


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


def median_run_s(contracts: Iterable[dict], backend: str, device: str | None,
                 seen: Callable[[hlx.Result], object] = lambda result: None) -> float:
    """Median wall seconds of ``hlx.run`` (memo off) over ``contracts``: each contract is built before its
    clock starts and ``seen`` gets each result after it stops, so neither is timed."""
    times = []
    for contract in contracts:
        t0 = time.perf_counter()
        result = hlx.run(contract, backend=backend, device=device, memo=False)
        times.append(time.perf_counter() - t0)
        seen(result)
    return statistics.median(times)


def rss_bytes() -> int:
    """Resident set size of this process: the second field of /proc/self/statm, in pages."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE
