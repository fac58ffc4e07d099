"""Determinism, counted: distinct output hashes of HLX and of torch over runs, processes and batch sizes.

For a GEMM, a float32 sum over a large array, a scatter/index-add and a row softmax:
- HLX on each available backend: ``hlx_core.determinism.prove`` (memo off) runs the contract ``--runs``
  times here and in each of ``--processes`` fresh processes and counts the distinct output handles; the
  batch column counts the distinct hashes of the first row computed in batches of 1, 8 and 128 rows (GEMM,
  softmax). HLX has no scatter/index-add kernel: its row says so and measures nothing.
- torch on CUDA, in its default mode and with ``torch.use_deterministic_algorithms(True)`` (and
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which cuBLAS needs for it; TF32 off in both): every mode runs in
  1 + ``--processes`` fresh processes of ``--runs`` runs each, the same counts taken from the outputs'
  bytes. Rows are what was measured; without torch or CUDA they are skipped, never assumed.
"1" in a distinct column means every run gave the same bits.

    .venv/bin/python benchmarks/bench_determinism.py [--runs 100] [--processes 2] [--backend vulkan]
    .venv/bin/python benchmarks/bench_determinism.py --small     # lavapipe/CPU sizes, 5 runs, 1 process
                                                                  # (the default when there is no GPU)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import blake3
import numpy as np

BATCHES = (1, 8, 128)
SEED = 12


@dataclass(frozen=True)
class Sizes:
    gemm: int  # M = N = K
    sum: int  # elements
    softmax: tuple[int, int]  # rows, cols
    scatter: tuple[int, int]  # sources, targets


FULL = Sizes(gemm=1024, sum=64 << 20, softmax=(4096, 4096), scatter=(1 << 20, 1000))
SMALL = Sizes(gemm=128, sum=1 << 20, softmax=(256, 512), scatter=(1 << 14, 100))


def inputs(sizes: Sizes) -> dict[str, list[np.ndarray]]:
    """The same inputs in every process (a fixed seed)."""
    rng = np.random.default_rng(SEED)
    n = sizes.gemm
    rows, cols = sizes.softmax
    sources, targets = sizes.scatter
    return {
        "gemm": [rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)],
        "sum": [rng.standard_normal(sizes.sum, dtype=np.float32)],
        "softmax": [rng.standard_normal((rows, cols), dtype=np.float32)],
        "index_add": [rng.integers(0, targets, sources).astype(np.int64),
                      rng.standard_normal(sources, dtype=np.float32), np.zeros(targets, np.float32)],
    }


@dataclass
class Row:
    system: str
    mode: str
    op: str
    runs: int
    processes: int
    distinct: int | None
    batch_distinct: int | None
    ms_per_run: float | None
    note: str = ""


def _digest(array: np.ndarray) -> str:
    return blake3.blake3(np.ascontiguousarray(array).tobytes()).hexdigest()


# -- HLX -----------------------------------------------------------------------------------------------

def hlx_rows(sizes: Sizes, runs: int, processes: int, backends: list[str]) -> list[Row]:
    import hlx
    from hlx.kernels import gemm, reduce_sum, softmax
    from hlx_core.determinism import prove

    data = inputs(sizes)
    builds: dict[str, Callable[[int | None], dict]] = {
        "gemm": lambda m: gemm(data["gemm"][0][:m], data["gemm"][1]),
        "sum": lambda m: reduce_sum(data["sum"][0]),
        "softmax": lambda m: softmax(data["softmax"][0][:m]),
    }
    rows = []
    for backend in backends:
        for op in ("gemm", "sum", "index_add", "softmax"):
            if op == "index_add":
                rows.append(Row("hlx", backend, op, 0, 0, None, None, None,
                                "no scatter/index-add kernel in HLX's library: not measured"))
                continue
            hlx.run(builds[op](None), backend=backend, memo=False)  # warm: ms/run leaves out the first run
            proof = prove(builds[op](None), runs, backend=backend, processes=processes)
            batch = None
            if op != "sum":
                firsts = {_digest(hlx.run(builds[op](m), backend=backend, memo=False).arrays()[0][0])
                          for m in BATCHES}
                batch = len(firsts)
            rows.append(Row("hlx", proof.backend, op, runs, processes, proof.distinct, batch,
                            proof.seconds / runs * 1e3))
    return rows


# -- torch ---------------------------------------------------------------------------------------------

def torch_child(mode: str, sizes: Sizes, runs: int) -> dict[str, Any]:
    """One fresh process's share: every op ``runs`` times; the output digests and the batch digests."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if mode == "deterministic":
        torch.use_deterministic_algorithms(True)
    data = {op: [torch.from_numpy(x).cuda() for x in arrays] for op, arrays in inputs(sizes).items()}
    ops: dict[str, Callable[[int | None], Any]] = {
        "gemm": lambda m: data["gemm"][0][:m] @ data["gemm"][1],
        "sum": lambda m: data["sum"][0].sum(),
        "index_add": lambda m: data["index_add"][2].clone().index_add_(0, data["index_add"][0], data["index_add"][1]),
        "softmax": lambda m: torch.softmax(data["softmax"][0][:m], dim=-1),
    }
    out: dict[str, Any] = {}
    for op, fn in ops.items():
        try:
            fn(None)
            torch.cuda.synchronize()
            digests = []
            start = time.perf_counter()
            for _ in range(runs):
                digests.append(_digest(fn(None).cpu().numpy()))
            seconds = time.perf_counter() - start
            batch = [_digest(fn(m)[0].cpu().numpy()) for m in BATCHES] if op in ("gemm", "softmax") else None
        except RuntimeError as exc:  # e.g. an op with no deterministic implementation in this mode
            out[op] = {"error": str(exc).splitlines()[0][:120]}
            continue
        out[op] = {"digests": digests, "ms_per_run": seconds / runs * 1e3, "batch": batch}
    return out


def torch_rows(sizes: Sizes, small: bool, runs: int, processes: int) -> tuple[list[Row], str]:
    """The torch rows, or none and why they are skipped."""
    probe = subprocess.run([sys.executable, "-c", "import torch; print(int(torch.cuda.is_available()))"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return [], "torch is not installed"
    if probe.stdout.strip() != "1":
        return [], "torch has no CUDA device here"
    rows = []
    for mode in ("default", "deterministic"):
        env = dict(os.environ)
        if mode == "deterministic":
            env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        argv = [sys.executable, __file__, "--torch-child", mode, "--runs", str(runs)] + (["--small"] if small else [])
        replies = []
        for _ in range(1 + processes):
            proc = subprocess.run(argv, capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"torch {mode} process failed:\n{proc.stderr[-3000:]}")
            replies.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        for op in ("gemm", "sum", "index_add", "softmax"):
            failed = [reply[op]["error"] for reply in replies if "error" in reply[op]]
            if failed:
                rows.append(Row("torch", f"cuda {mode}", op, runs, processes, None, None, None, failed[0]))
                continue
            digests = {d for reply in replies for d in reply[op]["digests"]}
            batches = [reply[op]["batch"] for reply in replies if reply[op]["batch"] is not None]
            batch = len({d for b in batches for d in b}) if batches else None
            rows.append(Row("torch", f"cuda {mode}", op, runs, processes, len(digests), batch,
                            float(np.median([reply[op]["ms_per_run"] for reply in replies]))))
    return rows, ""


# -- report --------------------------------------------------------------------------------------------

def print_rows(rows: list[Row], batches: tuple[int, ...]) -> None:
    print(f"{'system':<6} {'mode':<18} {'op':<10} {'runs':>5} {'procs':>5} {'distinct':>8} "
          f"{'batch ' + '/'.join(map(str, batches)):>14} {'ms/run':>9}  note")
    for r in rows:
        distinct = "-" if r.distinct is None else str(r.distinct)
        batch = "-" if r.batch_distinct is None else str(r.batch_distinct)
        ms = "-" if r.ms_per_run is None else f"{r.ms_per_run:.3f}"
        print(f"{r.system:<6} {r.mode:<18} {r.op:<10} {r.runs:>5} {r.processes:>5} {distinct:>8} {batch:>14} "
              f"{ms:>9}  {r.note}")


def _has_gpu() -> bool:
    import hlx
    return any(d["is_gpu"] for info in hlx.backend_info() for d in info["devices"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", "--quick", action="store_true", help="lavapipe/CPU sizes, 5 runs, 1 process "
                        "(the default where no backend has a GPU device)")
    parser.add_argument("--full", action="store_true", help="the full sizes even without a GPU")
    parser.add_argument("--runs", type=int, default=None, help="runs per process (default 100; 5 with --small)")
    parser.add_argument("--processes", type=int, default=None, help="fresh processes (default 2; 1 with --small)")
    parser.add_argument("--backend", action="append", help="HLX backend (repeatable; default: every available)")
    parser.add_argument("--no-torch", action="store_true", help="leave torch out")
    parser.add_argument("--torch-child", choices=("default", "deterministic"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.torch_child and not args.small and not args.full and not _has_gpu():
        print("no backend has a GPU device here: --small sizes (--full to force the full ones)")
        args.small = True
    sizes = SMALL if args.small else FULL
    runs = args.runs or (5 if args.small else 100)
    processes = args.processes if args.processes is not None else (1 if args.small else 2)
    if args.torch_child:
        print(json.dumps(torch_child(args.torch_child, sizes, runs)))
        return
    import hlx
    backends = args.backend or hlx.backends()
    print(f"sizes: gemm {sizes.gemm}^3, sum of {sizes.sum} float32, softmax {sizes.softmax[0]}x{sizes.softmax[1]}, "
          f"index_add of {sizes.scatter[0]} values into {sizes.scatter[1]}; {runs} runs per process, "
          f"{processes} fresh process(es) besides the first")
    rows = hlx_rows(sizes, runs, processes, backends)
    skipped = "left out (--no-torch)"
    if not args.no_torch:
        torch_found, skipped = torch_rows(sizes, args.small, runs, processes)
        rows += torch_found
    print_rows(rows, BATCHES)
    if skipped:
        print(f"torch rows skipped: {skipped}")
    print("distinct: output hashes over all runs and processes; batch: hashes of the first row computed in "
          f"batches of {', '.join(map(str, BATCHES))} rows (1 = batch invariant)")


if __name__ == "__main__":
    main()
