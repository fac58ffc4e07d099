"""Memory the planner keeps of a store: bounded by bytes while runs go on, released when the store is cleared.

Runs ``--plans`` new contracts (an add of two fresh ``--mib`` MiB float32 inputs each) on the CPU backend
against one MemoryStore, then clears the store. It prints the process's resident memory before, after the
runs and after the clear, with the input bytes the plan cache holds. The planner keeps at most
``PLAN_CACHE_BYTES`` of input arrays (each counted once) and drops a store's plans when objects leave it, so
the last figure returns to about the first. It exits with status 1 when memory after the clear stays more
than ``--max-mib`` above the start.

    .venv/bin/python benchmarks/bench_kept_inputs.py [--plans 64] [--mib 16] [--max-mib 128]
"""
from __future__ import annotations

import argparse
import gc
import sys

import numpy as np
from _common import rss_bytes

import hlx
from hlx.kernels import add
from hlx_core import planner


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=64)
    parser.add_argument("--mib", type=int, default=16, help="MiB of each of a contract's two inputs")
    parser.add_argument("--max-mib", type=float, default=128.0)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    store = hlx.MemoryStore()
    n = args.mib << 18  # float32 elements in --mib MiB
    start = rss_bytes() / 2**20
    for _ in range(args.plans):
        a, b = (rng.standard_normal(n, dtype=np.float32) for _ in range(2))
        hlx.run(add(a, b, store=store), backend="cpu", store=store)
        del a, b
    gc.collect()
    ran = rss_bytes() / 2**20
    held = planner._plans.held_bytes / 2**20
    store.clear()
    gc.collect()
    cleared = rss_bytes() / 2**20
    print(f"resident memory: {start:.0f} MiB at start, {ran:.0f} MiB after {args.plans} runs of 2 x {args.mib} MiB "
          f"inputs (plan cache holding {held:.0f} MiB of inputs, bound {planner.PLAN_CACHE_BYTES >> 20} MiB), "
          f"{cleared:.0f} MiB after store.clear()")
    return 0 if cleared - start <= args.max_mib else 1


if __name__ == "__main__":
    sys.exit(main())
