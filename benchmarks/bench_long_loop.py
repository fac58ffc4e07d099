"""A long loop of warm runs: memory must not grow and runs must not slow down (10,000 runs by default).

One tiny contract (an add of 256 float32, inputs resident) runs ``--runs`` times on one backend. After
each block of ``--block`` runs it prints the process's resident memory (from /proc/self/statm) and the
median time of one run in that block; at the end, the growth from the first block to the last. It exits
with status 1 when resident memory grew by more than ``--max-growth-mib`` or the last block's median run
is more than ``--max-slowdown`` times the first block's. A warm-up of one block comes first, so caches
that fill once (plans, pipelines, recorded command buffers, the store's bookkeeping) are full before the
first block is measured.

    .venv/bin/python benchmarks/bench_long_loop.py [--backend vulkan] [--runs 10000] [--block 1000]
"""
from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
from _common import median_run_s, rss_bytes, verdict

import hlx
from hlx.kernels import add


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="auto", help="backend name, or auto (the default)")
    parser.add_argument("--device", default=None, help="device of that backend (index, name or UUID)")
    parser.add_argument("--runs", type=int, default=10_000, help="measured runs (after one warm-up block)")
    parser.add_argument("--block", type=int, default=1000, help="runs per block")
    parser.add_argument("--max-growth-mib", type=float, default=4.0,
                        help="resident memory growth from the first block to the last allowed (MiB)")
    parser.add_argument("--max-slowdown", type=float, default=1.2,
                        help="last block's median run over the first block's allowed")
    args = parser.parse_args()
    blocks = max(args.runs // args.block, 1)

    rng = np.random.default_rng(0)
    contract = add(rng.random(256, dtype=np.float32), rng.random(256, dtype=np.float32))
    handles: set[str] = set()
    first = hlx.run(contract, backend=args.backend, device=args.device, memo=False)
    print(f"{first.backend} on {first.device}: {blocks} blocks of {args.block} warm runs of a tiny add")

    def block() -> float:
        """Median seconds of one run over a block; every output handle goes into ``handles``."""
        return median_run_s(itertools.repeat(contract, args.block), first.backend, args.device,
                            lambda result: handles.add(result.outputs[0]))

    block()  # warm-up, not measured
    print(f"{'block':>5s} {'runs':>7s} {'median µs':>10s} {'RSS MiB':>9s}")
    medians, rss = [], []
    for i in range(blocks):
        medians.append(block())
        rss.append(rss_bytes())
        print(f"{i + 1:5d} {(i + 1) * args.block:7d} {medians[-1] * 1e6:10.1f} {rss[-1] / 2**20:9.2f}", flush=True)

    growth = (rss[-1] - rss[0]) / 2**20
    slowdown = medians[-1] / medians[0]
    print(f"\nRSS {rss[0] / 2**20:.2f} -> {rss[-1] / 2**20:.2f} MiB: {growth:+.2f} MiB "
          f"(bound {args.max_growth_mib} MiB); median run {medians[0] * 1e6:.1f} -> {medians[-1] * 1e6:.1f} µs: "
          f"{slowdown:.2f}x (bound {args.max_slowdown}x); output handles seen: {len(handles)}")
    failed = []
    if growth > args.max_growth_mib:
        failed.append(f"memory grew by {growth:.2f} MiB")
    if slowdown > args.max_slowdown:
        failed.append(f"the last block is {slowdown:.2f}x slower than the first")
    if len(handles) != 1:
        failed.append(f"{len(handles)} different output handles for one contract")
    return verdict(failed)


if __name__ == "__main__":
    sys.exit(main())
