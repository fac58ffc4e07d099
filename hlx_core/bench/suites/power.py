"""power: energy per GEMM from NVML's total-energy counter, HLX against cuBLAS, data kept on the device.

HLX runs a 902 of STAGES chained GEMMs (x <- x @ b, each stage reading the last one's output on the
device; one submit, the final product left on the device as the bench session leaves large outputs);
cuBLAS runs the same chain through torch with one synchronize per chain. b is scaled by 1/sqrt(n) so
values neither grow nor vanish (energy depends on the bits that toggle). Each sample runs chains for at
least SECONDS (the counter ticks coarsely) and divides the joules the counter gained by the GEMMs done;
average watts and wall time per GEMM are given beside. Needs pynvml
(``pip install 'hlx[bench]'``) and an NVIDIA GPU that HLX runs on; otherwise skipped with a note.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hlx_core.bench import nvml
from hlx_core.bench.harness import Bench, Case
from hlx_core.bench.report import Row
from hlx_core.bench.timing import Stats
from hlx_core.cas.api import collapse
from hlx_core.errors import HLXError
from hlx_core.kernels.helpers import gemm, pipeline, stage

SUITE = "power"
STAGES = 16
SECONDS = {False: 3.0, True: 1.0}


def cases(bench: Bench) -> list[Case]:
    if nvml.library() is None:
        bench.note("power: skipped, NVML is not available (pip install 'hlx[bench]' for pynvml; needs an NVIDIA "
                   "driver)")
        return []
    if not bench.device.is_gpu:
        bench.note(f"power: skipped, HLX runs on {bench.device.name} ({bench.device.kind}), not on a GPU")
        return []
    handle = nvml.device(bench.device.uuid)
    if handle is None or nvml.energy_joules(handle) is None:
        bench.note(f"power: skipped, NVML has no energy counter for {bench.device.name}")
        return []
    return [Case(SUITE, f"gemm {n}^3", lambda n=n: measure(bench, n, handle))
            for n in bench.sizes((4096,), (1024,))]


def energy(handle: Any, chain: Callable[[], int], seconds: float, samples: int) -> tuple[Stats, Stats, Stats]:
    """(J per GEMM, average W, wall ms per GEMM) over ``samples`` loops of ``chain`` (which returns the GEMMs
    it finished) lasting at least ``seconds`` each, after one such loop unrecorded. The time per GEMM says
    whether a difference in energy comes from the power drawn or from how long the work takes."""
    per_gemm, watts, ms = [], [], []
    for i in range(samples + 1):
        e0, t0, done = nvml.energy_joules(handle), time.perf_counter(), 0
        while True:
            done += chain()
            if time.perf_counter() - t0 >= seconds:
                break
        joules, elapsed = nvml.energy_joules(handle) - e0, time.perf_counter() - t0
        if i:
            per_gemm.append(joules / done)
            watts.append(joules / elapsed)
            ms.append(elapsed * 1e3 / done)
    return Stats.of(per_gemm), Stats.of(watts), Stats.of(ms)


def measure(bench: Bench, n: int, handle: Any) -> list[Row]:
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32) / np.float32(np.sqrt(n))
    seconds, samples = SECONDS[bench.options.quick], bench.repeat(3, 2)
    hb = collapse(b, bench.store)
    p = bench.plan(pipeline([gemm(a, hb, store=bench.store)] + [gemm(stage(i), hb, store=bench.store)
                                                                  for i in range(STAGES - 1)], store=bench.store))
    session = bench.session

    out = bench.first_output(p)
    if not np.all(np.isfinite(out)):
        raise HLXError("E_BENCH", f"power: the {STAGES}-GEMM chain gave values that are not finite")

    def hlx_chain() -> int:
        session.execute(p)
        return STAGES

    case = f"gemm {n}^3"
    j, w, t = energy(handle, hlx_chain, seconds, samples)
    rows = [bench.hlx_row(SUITE, f"{case}, J per GEMM", j, "J", "nvml-energy"),
            bench.hlx_row(SUITE, f"{case}, average W", w, "W", "nvml-energy"),
            bench.hlx_row(SUITE, f"{case}, wall ms per GEMM", t, "ms", "wall")]
    torch = bench.peer("torch")
    if torch is None:
        bench.note("power: no cuBLAS peer without torch on CUDA")
        return rows
    t = torch.module
    ta, tb = t.from_numpy(a).cuda(), t.from_numpy(b).cuda()

    def torch_chain() -> int:
        x = ta
        for _ in range(STAGES):
            x = t.matmul(x, tb)
        t.cuda.synchronize()
        return STAGES

    j, w, t = energy(handle, torch_chain, seconds, samples)
    cublas = f"{torch.impl} (cuBLAS)"
    return rows + [bench.peer_row(SUITE, f"{case}, J per GEMM", torch, j, "J", impl=cublas, clock="nvml-energy"),
                   bench.peer_row(SUITE, f"{case}, average W", torch, w, "W", impl=cublas, clock="nvml-energy"),
                   bench.peer_row(SUITE, f"{case}, wall ms per GEMM", torch, t, "ms", impl=cublas, clock="wall")]
