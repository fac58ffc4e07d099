"""The warm tiny round trip on each GPU backend, the backends' share of it, and the device's floor, in one run.

A tiny add (256 float32) with its inputs resident, timed per call (median of batches of 10):
- ``hlx.run`` on each available backend (vulkan, wgpu, cpu), against torch's op + ``.cpu()`` when there;
- ``Session.execute`` of the planned contract on each backend (what the backend itself costs);
- Vulkan's floor: an empty command buffer submitted and its fence polled, and what a warm execute spends
  reading its timestamps (one vkGetQueryPoolResults and the conversion).
Goals of the run path: Vulkan's ``Session.execute`` within 2x the polled floor; wgpu's round trip within 2x
Vulkan's. ``--profile`` prints where a warm execute spends its time on each GPU backend (cProfile, by own
time). ``--split``
prints, per backend, where a warm ``hlx.run`` spends its time: the run with memo off, with the memo's hit,
with new inputs (the contract built outside the clock), ``Session.execute``, the runtime's steps timed
alone (the default store, a plan-cache hit, hashing and storing the output) and the Python function calls
each makes (cProfile's count: the same on every host).

    .venv/bin/python benchmarks/bench_tiny_round_trip.py [--repeat 2000] [--profile] [--split]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from typing import Any

import numpy as np
from _common import cuda_torch, per_call_us

import hlx
from hlx.kernels import add
from hlx_core import registry
from hlx_core.planner import plan as make_plan

BACKENDS = ("vulkan", "wgpu", "cpu")


def torch_to_host_us(n: int, repeat: int) -> float | None:
    torch = cuda_torch()
    if torch is None:
        return None
    a, b = torch.rand(n, device="cuda"), torch.rand(n, device="cuda")
    return per_call_us(lambda: a.add(b).cpu(), repeat)


def vulkan_floor(session: Any, repeat: int) -> tuple[float, float]:
    """(µs of an empty submit + polled fence, µs of reading a recorded plan's timestamps)."""
    from hlx_vulkan_raw.commands import Recorder

    sub = session.core.submitter
    cb = sub.command_buffer()
    Recorder(cb, one_time=False).end()
    batch = sub.batch([cb])
    floor = per_call_us(lambda: sub.wait(sub.submit(batch)), repeat)
    rec = next(iter(session.recorded.values()))
    stamps = per_call_us(rec.queries.timings, repeat) if rec.queries is not None else float("nan")
    return floor, stamps


def copied_outputs_us(entry: Any, p: Any, repeat: int) -> float:
    """µs of a warm Session.execute in a session whose small outputs live in device memory and are copied to
    the host by the run (what a discrete GPU did before they moved to host memory)."""
    session = entry.backend.open()
    try:
        session.host_output_max = 0
        session.execute(p)
        return per_call_us(lambda: session.execute(p), repeat)
    finally:
        session.close()


def calls_per_call(fn: Any, repeat: int = 200) -> float:
    """Python function calls per call of ``fn`` (cProfile's count, after one warm call)."""
    fn()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(repeat):
        fn()
    prof.disable()
    return pstats.Stats(prof).total_calls / repeat


def new_inputs_us(name: str, n: int, repeat: int, rng: np.random.Generator) -> float:
    """Median µs of ``hlx.run`` (memo off) of an add of two new arrays, each contract built outside the clock."""
    times = []
    for _ in range(max(repeat // 4, 20)):
        contract = add(rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32))
        start = time.perf_counter()
        hlx.run(contract, backend=name, memo=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times[len(times) // 10:]) * 1e6


def split(name: str, tiny: Any, p: Any, session: Any, repeat: int, rng: np.random.Generator) -> None:
    """Where a warm tiny ``hlx.run`` on ``name`` spends its time, step by step, with Python calls per step."""
    from hlx_core.cas import api as cas

    store = cas.get_default_store()
    output = np.asarray(hlx.run(tiny, backend=name, memo=False))
    steps = {
        "hlx.run, memo=False": lambda: hlx.run(tiny, backend=name, memo=False),
        "hlx.run, memo on (a hit)": lambda: hlx.run(tiny, backend=name),
        "Session.execute": lambda: session.execute(p),
        "  runtime: the default store": cas.get_default_store,
        "  runtime: plan-cache hit": lambda: make_plan(tiny, store, behind=True),
        "  runtime: hash + store the output": lambda: cas.collapse(output, store=store, behind=True),
    }
    print(f"\n{name}: where a warm tiny hlx.run goes {'µs':>12s} {'calls':>7s}")
    for label, fn in steps.items():
        print(f"  {label:44s} {per_call_us(fn, repeat):9.1f} {calls_per_call(fn):7.0f}")
    print(f"  {'hlx.run, memo=False, new inputs':44s} {new_inputs_us(name, output.size, repeat, rng):9.1f}")


def ratio(ours: float, peer: float | None) -> str:
    return f"{ours / peer:6.2f}x" if peer else "   n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--profile", action="store_true", help="cProfile a warm Session.execute on each GPU backend")
    parser.add_argument("--split", action="store_true", help="time a warm hlx.run's steps on each backend")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    tiny = add(hlx.collapse(rng.random(args.n, dtype=np.float32)), hlx.collapse(rng.random(args.n, dtype=np.float32)))
    p = make_plan(tiny)
    entries = registry.backend_entries()
    run_us: dict[str, float] = {}
    exec_us: dict[str, float] = {}
    floor = stamps = copied_us = None
    for name in BACKENDS:
        entry = entries.get(name)
        if entry is None or not entry.availability().available:
            print(f"{name}: not available")
            continue
        first = hlx.run(tiny, backend=name, memo=False)
        print(f"{name}: {first.device}")
        run_us[name] = per_call_us(lambda name=name: hlx.run(tiny, backend=name, memo=False), args.repeat)
        session = entry.backend.open()
        try:
            session.execute(p)
            exec_us[name] = per_call_us(lambda session=session: session.execute(p), args.repeat)
            if name == "vulkan":
                floor, stamps = vulkan_floor(session, args.repeat)
                copied_us = copied_outputs_us(entry, p, args.repeat)
            if args.split:
                split(name, tiny, p, session, args.repeat, rng)
            if name != "cpu" and args.profile:
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(args.repeat):
                    session.execute(p)
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        finally:
            session.close()
    peer = torch_to_host_us(args.n, args.repeat)

    vk_run, vk_exec = run_us.get("vulkan"), exec_us.get("vulkan")
    print(f"\n{'measure':40s} {'µs':>9s} {'vs':>9s} {'ratio':>8s}  against")
    for name in run_us:
        print(f"{f'hlx.run, {name}':40s} {run_us[name]:9.1f} {peer or float('nan'):9.1f} {ratio(run_us[name], peer)}  "
              "torch op + .cpu()")
    for name in exec_us:
        if name == "vulkan":
            print(f"{'Session.execute, vulkan':40s} {exec_us[name]:9.1f} {floor or float('nan'):9.1f} "
                  f"{ratio(exec_us[name], floor)}  empty submit + polled fence (goal 2x)")
            print(f"{'  small outputs copied by the device':40s} {copied_us:9.1f} {floor or float('nan'):9.1f} "
                  f"{ratio(copied_us, floor)}  the same floor")
        else:
            print(f"{f'Session.execute, {name}':40s} {exec_us[name]:9.1f} {vk_exec or float('nan'):9.1f} "
                  f"{ratio(exec_us[name], vk_exec)}  Session.execute, vulkan")
    if "wgpu" in run_us:
        print(f"{'hlx.run, wgpu against vulkan':40s} {run_us['wgpu']:9.1f} {vk_run or float('nan'):9.1f} "
              f"{ratio(run_us['wgpu'], vk_run)}  hlx.run, vulkan (goal 2x)")
    if floor is not None:
        print(f"{'empty submit + polled fence':40s} {floor:9.1f}")
        print(f"{'  a warm run reading its timestamps':40s} {stamps:9.1f}")
    if peer is None:
        print("torch with CUDA not available: peer column skipped")


if __name__ == "__main__":
    main()
