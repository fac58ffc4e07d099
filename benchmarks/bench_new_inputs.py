"""Drift with new inputs: runs must not slow down, nor device objects pile up, as fresh inputs accumulate.

Every run adds a tensor HLX has never seen (``--bytes`` bytes of float32) to a fixed one, so each run
uploads a new input buffer that the backend then keeps resident: the allocator places one more buffer and
the residency cache holds one more entry, run after run (``--runs``, 10,000 by default). After each block
of ``--block`` runs it prints the median time of one run in that block, the resident input buffers and,
on Vulkan, the allocator's free ranges and blocks. It exits with status 1 when the last block's median
run is more than ``--max-slowdown`` times the first block's, or the resident buffers outgrow the
residency count bound. One block of warm-up comes first. Inputs and outputs go to a memory store, so the
figures are the backend's alone.

    .venv/bin/python benchmarks/bench_new_inputs.py [--backend vulkan] [--runs 10000] [--block 1000] [--bytes 16]
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import median_run_s, verdict

import hlx
from hlx.kernels import add
from hlx_core import runtime


def session_stats(backend: str, device: str | None) -> dict[str, int]:
    """Resident input buffers and their count bound; on Vulkan also the allocator's free ranges and blocks."""
    session = runtime._session(backend, device).session
    if backend == "vulkan":
        info = session.get_memory_info()
        stats = {k: info[k] for k in ("free_ranges", "blocks") if k in info}
        residency = info["residency"]
    else:
        stats, residency = {}, session.core.resident.stats()
    return {"resident": residency["entries"], "bound": residency.get("max_entries", 0), **stats}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vulkan", help="backend name, or auto")
    parser.add_argument("--device", default=None, help="device of that backend (index, name or UUID)")
    parser.add_argument("--runs", type=int, default=10_000, help="measured runs (after one warm-up block)")
    parser.add_argument("--block", type=int, default=1000, help="runs per block")
    parser.add_argument("--bytes", type=int, default=16, help="bytes of each new input")
    parser.add_argument("--max-slowdown", type=float, default=1.3,
                        help="last block's median run over the first block's allowed")
    args = parser.parse_args()
    blocks = max(args.runs // args.block, 1)

    rng = np.random.default_rng(0)
    n = max(args.bytes // 4, 1)
    fixed = rng.random(n, dtype=np.float32)
    hlx.set_default_store(hlx.MemoryStore())  # the helpers store their shaders there too
    first = hlx.run(add(rng.random(n, dtype=np.float32), fixed), backend=args.backend, device=args.device, memo=False)
    print(f"{first.backend} on {first.device}: {blocks} blocks of {args.block} runs, each with a new "
          f"{4 * n}-byte input")

    def block() -> float:
        """Median seconds of one run over a block, each run with a new input (made before its clock starts)."""
        return median_run_s((add(rng.random(n, dtype=np.float32), fixed) for _ in range(args.block)),
                            first.backend, args.device)

    block()  # warm-up, not measured
    extra = [k for k in ("free_ranges", "blocks") if k in session_stats(first.backend, args.device)]
    print(f"{'block':>5s} {'runs':>7s} {'median µs':>10s} {'resident':>9s}" + "".join(f" {k:>11s}" for k in extra))
    medians, stats = [], {}
    for i in range(blocks):
        medians.append(block())
        stats = session_stats(first.backend, args.device)
        print(f"{i + 1:5d} {(i + 1) * args.block:7d} {medians[-1] * 1e6:10.1f} {stats['resident']:9d}"
              + "".join(f" {stats[k]:11d}" for k in extra), flush=True)

    slowdown = medians[-1] / medians[0]
    print(f"\nmedian run {medians[0] * 1e6:.1f} -> {medians[-1] * 1e6:.1f} µs: {slowdown:.2f}x "
          f"(bound {args.max_slowdown}x); resident input buffers {stats['resident']} (bound {stats['bound']})")
    failed = []
    if slowdown > args.max_slowdown:
        failed.append(f"the last block is {slowdown:.2f}x slower than the first")
    if stats["bound"] and stats["resident"] > stats["bound"]:
        failed.append(f"{stats['resident']} resident buffers exceed the bound of {stats['bound']}")
    return verdict(failed)


if __name__ == "__main__":
    sys.exit(main())
