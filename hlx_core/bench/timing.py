"""Warm-up, repeats and the statistics every benchmark row reports (mean, std, min, max).

A measurement is a function that takes one sample and returns it (seconds of GPU time read from
timestamps, wall seconds of a batch of calls, joules): the harness calls it ``warmup`` times unrecorded,
then ``repeat`` times, and summarises. Only the clock differs between HLX and its peers, never the loop.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    """Summary of ``n`` samples in one unit."""

    mean: float
    std: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stats":
        """The summary of ``samples`` (std is the sample standard deviation, 0 for a single sample)."""
        values = [float(s) for s in samples]
        if not values:
            return cls(math.nan, math.nan, math.nan, math.nan, 0)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), std, min(values), max(values), len(values))


def samples(take: Callable[[], float], warmup: int, repeat: int, warm_s: float = 0.0) -> list[float]:
    """``warmup`` unrecorded calls of ``take`` and more until ``warm_s`` seconds have passed (an idle GPU
    takes a moment to raise its clocks), then the values of ``repeat`` calls."""
    start = time.perf_counter()
    done = 0
    while done < warmup or (warmup and time.perf_counter() - start < warm_s):
        take()
        done += 1
    return [take() for _ in range(repeat)]


def measure(take: Callable[[], float], warmup: int, repeat: int, per: Callable[[float], float] | None = None,
            warm_s: float = 0.0) -> Stats:
    """Stats of ``repeat`` samples of ``take`` after the warm-up of ``samples``; ``per`` turns each sample
    into the unit reported (seconds into TFLOP/s, say) before the statistics, so the mean is that of the
    unit."""
    values = samples(take, warmup, repeat, warm_s)
    return Stats.of([per(v) for v in values] if per else values)


def wall(fn: Callable[[], object], calls: int = 1) -> Callable[[], float]:
    """A sample taker: wall seconds of one call of ``fn``, averaged over ``calls`` back-to-back calls."""
    def take() -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls
    return take


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of one call in microseconds, over ``repeat`` calls in batches of 10 (after
    ``repeat // 10`` calls of warm-up, at least 5): the round-trip scripts' figure."""
    for _ in range(max(repeat // 10, 5)):
        fn()
    return statistics.median(samples(wall(fn, 10), 0, max(repeat // 10, 1))) * 1e6
