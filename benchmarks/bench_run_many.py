"""hlx.run_many: scaling from one device to two, and what the executors cost per contract.

1. Scaling (needs lavapipe): in a child process that sees two lavapipe devices (VK_DRIVER_FILES listing the
   system manifest and a copy pointing at a copy of libvulkan_lvp.so, LP_NUM_THREADS=1 so each device is
   one host thread), the same GEMM contracts (distinct inputs, memo off) through the local executor on one
   device and on both: contracts per second and the ratio.
2. Overhead (the default device of --backend; on a GPU host, the GPU): per contract, a loop of hlx.run
   against the local executor's run_many of the same contracts, for tiny contracts (an add of 256 floats)
   and for GEMMs (1024³; 128³ with --quick), and against a LocalCluster of one worker when distributed is
   installed (tiny contracts only: it measures the cluster's round trip).

Run from benchmarks/:  python bench_run_many.py [--quick] [--backend vulkan] [--only scaling|overhead]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import hlx
from hlx_core.scale.local import LocalExecutor


def _contracts(kind: str, n: int, size: int, rng: np.random.Generator) -> list[dict]:
    if kind == "tiny":
        return [hlx.kernels.add(rng.standard_normal(256).astype(np.float32),
                                rng.standard_normal(256).astype(np.float32)) for _ in range(n)]
    return [hlx.kernels.gemm(rng.standard_normal((size, size)).astype(np.float32),
                             rng.standard_normal((size, size)).astype(np.float32)) for _ in range(n)]


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _best(fn, rounds: int = 3) -> float:
    """The fastest of ``rounds`` calls, in seconds."""
    return min(_seconds(fn) for _ in range(rounds))


def scaling_child(backend: str, n: int, size: int) -> None:
    """Runs in the child that sees two lavapipe devices; prints one JSON line."""
    rng = np.random.default_rng(7)
    contracts = _contracts("gemm", n, size, rng)
    rows = {}
    for label, only in (("one device", [0]), ("two devices", None)):
        with LocalExecutor(only=only) as ex:
            ex.run_many(contracts[:4], backend, memo=False)  # sessions, pipelines, resident inputs
            rows[label] = {"devices": len(ex.devices(backend)),
                           "s": _best(lambda e=ex: e.run_many(contracts, backend, memo=False))}
    print(json.dumps(rows))


def scaling(n: int, size: int) -> None:
    manifests = sorted(glob.glob("/usr/share/vulkan/icd.d/lvp_icd*.json"))
    if not manifests:
        print("scaling: skipped (no lavapipe manifest on this machine)")
        return
    manifest = json.loads(Path(manifests[0]).read_text())
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(manifest["ICD"]["library_path"], Path(folder) / "libvulkan_lvp.so")
        manifest["ICD"]["library_path"] = str(Path(folder) / "libvulkan_lvp.so")
        (Path(folder) / "lvp2.json").write_text(json.dumps(manifest))
        env = {**os.environ, "VK_DRIVER_FILES": f"{manifests[0]}:{folder}/lvp2.json", "LP_NUM_THREADS": "1",
               "HLX_HOME": str(Path(folder) / "home")}
        done = subprocess.run([sys.executable, __file__, "--scaling-child", "--n", str(n), "--size", str(size)],
                              env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print("scaling: failed\n" + done.stderr[-2000:])
        return
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    one, two = rows["one device"], rows["two devices"]
    print(f"scaling: {n} GEMMs {size}³ on lavapipe (LP_NUM_THREADS=1), local executor, memo off")
    for label, row in rows.items():
        print(f"  {label:12s} ({row['devices']}): {row['s']:.3f} s, {n / row['s']:.1f} contracts/s")
    print(f"  two devices / one device: {one['s'] / two['s']:.2f}x the throughput")


def overhead(backend: str, quick: bool) -> None:
    rng = np.random.default_rng(11)
    size = 128 if quick else 1024
    cases = [("tiny", 200 if quick else 2000, 0), ("gemm", 8 if quick else 64, size)]
    device = hlx.run(_contracts("tiny", 1, 0, rng)[0], backend=backend, memo=False).device
    print(f"overhead on {backend} ({device}): per contract, memo off")
    for kind, n, dim in cases:
        contracts = _contracts(kind, n, dim, rng)
        label = "add 256" if kind == "tiny" else f"gemm {dim}³"
        with hlx.executor("local") as ex:
            ex.run_many(contracts[:4], backend, memo=False)
            for c in contracts[:4]:
                hlx.run(c, backend=backend, memo=False)
            direct = _best(lambda cs=contracts: [hlx.run(c, backend=backend, memo=False) for c in cs]) / n
            local = _best(lambda cs=contracts: ex.run_many(cs, backend, memo=False)) / n
        print(f"  {label:10s} x{n:<5d} hlx.run loop {direct * 1e6:9.1f} us   local executor {local * 1e6:9.1f} us"
              f"   ratio {local / direct:.2f}   ({(local - direct) * 1e6:+.1f} us)")
        if kind == "tiny":
            dask(backend, contracts[: min(n, 200)], direct)


def dask(backend: str, contracts: list[dict], direct: float) -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("  dask: skipped (distributed not installed: pip install 'hlx[dist]')")
        return
    with hlx.executor("dask+local://?workers=1") as ex:
        ex.run_many(contracts[:4], backend, memo=False)
        per = _best(lambda: ex.run_many(contracts, backend, memo=False)) / len(contracts)
    print(f"  add 256    x{len(contracts):<5d} LocalCluster of 1 worker {per * 1e6:9.1f} us   ratio {per / direct:.1f}"
          " against the hlx.run loop")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (the development machine)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--only", choices=("scaling", "overhead"), default=None, help="one of the two parts")
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scaling-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scaling_child:
        scaling_child("vulkan", args.n, args.size)
        return 0
    os.environ.setdefault("HLX_HOME", tempfile.mkdtemp(prefix="hlx-bench-run-many-"))
    if args.only in (None, "scaling"):
        scaling(16 if args.quick else 64, 128 if args.quick else 256)
    if args.only in (None, "overhead"):
        overhead(args.backend, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
