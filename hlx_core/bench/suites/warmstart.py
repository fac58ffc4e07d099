"""warmstart: a new process to the first GEMM result on the host, HLX against CuPy and torch.

Every figure is one whole child process timed from the parent: the interpreter's start, the imports, the
device's start, the first run and the result on the host (``to result``), and the teardown at exit
(``process``). ``warm``: caches (HLX_HOME, CuPy's kernel cache, the drivers' shader caches) left by a
first, untimed process; ``cold``: fresh ones in every process. The children are what a user would write
plus time marks; benchmarks/bench_warmstart.py runs them too, with HLX's steps one at a time.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hlx_core.bench.harness import Bench, Case
from hlx_core.bench.report import Row
from hlx_core.bench.timing import Stats
from hlx_core.errors import HLXError

SUITE = "warmstart"

# -- the children ---------------------------------------------------------------------------------------
# perf_counter is CLOCK_MONOTONIC, the parent's clock too: marks are comparable with the spawn time.

PRELUDE = r'''
import time
marks = {"t0": time.perf_counter()}
import atexit
import os
import sys
N, BACKEND = int(sys.argv[1]), sys.argv[2]
# Registered first, so it runs last of the exit hooks: what follows is the interpreter's own finalization.
atexit.register(lambda: os.write(1, b'\n{"exit_hooks_done": %r}\n' % time.perf_counter()))


def mark(name):
    marks[name] = time.perf_counter()


def inputs(np):
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, N), dtype=np.float32), rng.standard_normal((N, N), dtype=np.float32)


def report(out=None, a=None, b=None, **extra):
    import json
    if out is not None:  # a corner of the result against NumPy
        import numpy as np
        ref = a[:8].astype(np.float64) @ b[:, :8].astype(np.float64)
        extra["error"] = float(np.abs(out[:8, :8] - ref).max() / max(np.abs(ref).max(), 1e-30))
    print(json.dumps({"marks": marks, **extra}))
'''

HLX_PLAIN = PRELUDE + r'''
import numpy as np
mark("numpy")
import hlx
mark("hlx")
a, b = inputs(np)
result = hlx.run(hlx.kernels.gemm(a, b), backend=BACKEND, memo=False)
out = result.arrays()[0]
mark("result")
report(out, a, b, device=result.device)
'''

CUPY = PRELUDE + r'''
SGEMM = """
extern "C" __global__ void sgemm(const float* a, const float* b, float* c, int M, int N, int K) {
    // A 16x16 block computes a 64x64 tile of C, each thread a 4x4 register tile; K advances by 16.
    __shared__ float As[16][64 + 1];
    __shared__ float Bs[16][64];
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    int row0 = blockIdx.y * 64, col0 = blockIdx.x * 64;
    float acc[4][4] = {{0.f}};
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int i = tid; i < 16 * 64; i += 256) {
            int k = i % 16, m = i / 16, kb = i / 64, n = i % 64;
            As[k][m] = (row0 + m < M && k0 + k < K) ? a[(row0 + m) * K + k0 + k] : 0.f;
            Bs[kb][n] = (k0 + kb < K && col0 + n < N) ? b[(k0 + kb) * N + col0 + n] : 0.f;
        }
        __syncthreads();
        for (int k = 0; k < 16; ++k) {
            float ra[4], rb[4];
            for (int q = 0; q < 4; ++q) { ra[q] = As[k][ty * 4 + q]; rb[q] = Bs[k][tx * 4 + q]; }
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] += ra[i] * rb[j];
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) {
            int r = row0 + ty * 4 + i, col = col0 + tx * 4 + j;
            if (r < M && col < N) c[r * N + col] = acc[i][j];
        }
}
"""
import numpy as np
mark("numpy")
import cupy as cp
mark("cupy")
a, b = inputs(np)
mark("inputs")
da, db = cp.asarray(a), cp.asarray(b)  # the first CUDA call starts the context
dc = cp.empty((N, N), dtype=cp.float32)
mark("context+upload")
kernel = cp.RawKernel(SGEMM, "sgemm")
kernel.compile()  # NVRTC, or the cubin from CUPY_CACHE_DIR
mark("compile")
kernel(((N + 63) // 64, (N + 63) // 64), (16, 16), (da, db, dc, np.int32(N), np.int32(N), np.int32(N)))
out = cp.asnumpy(dc)
mark("result")
report(out, a, b, device=cp.cuda.runtime.getDeviceProperties(0)["name"].decode())
'''

TORCH = PRELUDE + r'''
import numpy as np
mark("numpy")
import torch
mark("torch")
torch.backends.cuda.matmul.allow_tf32 = False
a, b = inputs(np)
mark("inputs")
da, db = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()  # the first CUDA call starts the context
mark("context+upload")
out = (da @ db).cpu().numpy()
mark("result")
report(out, a, b, device=torch.cuda.get_device_name(0))
'''


# -- the parent -----------------------------------------------------------------------------------------

def spawn(script: str, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One child process. Adds, in seconds: ``process`` (spawn to exit), ``start`` (spawn to the script's
    first line), ``to_result`` (spawn to the result on the host), ``exit_hooks`` (the result to the end of
    the exit hooks: session teardown, store flush) and ``finalization`` (from there to the exit)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, *argv], env=env, capture_output=True, text=True)
    end = time.perf_counter()
    if proc.returncode != 0:
        raise HLXError("E_BENCH", f"a benchmark's child process failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    out = next(line for line in lines if "marks" in line)
    m = out["marks"]
    hooks = next((line["exit_hooks_done"] for line in lines if "exit_hooks_done" in line), m["result"])
    out.update(process=end - start, start=m["t0"] - start, to_result=m["result"] - start,
               exit_hooks=hooks - m["result"], finalization=end - hooks)
    return out



def processes(script: str, argv: list[str], env_for: Callable[[], dict[str, str]], repeat: int, warm: bool
              ) -> list[dict[str, Any]]:
    """``repeat`` timed children (after one untimed child that leaves the caches, when ``warm``), each
    checked against NumPy's float64 on a corner of the result."""
    if warm:
        spawn(script, argv, env_for())
    runs = [spawn(script, argv, env_for()) for _ in range(repeat)]
    worst = max(r.get("error", 0.0) for r in runs)
    if worst > 1e-3:
        raise HLXError("E_BENCH", f"a new process's GEMM differs from NumPy's float64 (relative error {worst:.2e})")
    return runs


def cases(bench: Bench) -> list[Case]:
    sizes = bench.sizes((1024,), (256,))
    return [Case(SUITE, f"{kind} {n}^3", lambda n=n, warm=warm: starts(bench, n, warm))
            for n in sizes for kind, warm in (("warm", True), ("cold", False))]


def starts(bench: Bench, n: int, warm: bool) -> list[Row]:
    """Rows ``<warm|cold> N^3, process`` and ``…, to result`` for HLX, CuPy and torch (where each runs)."""
    repeat = bench.repeat(3, 2)
    kind = "warm" if warm else "cold"
    root = Path(tempfile.mkdtemp(prefix="hlx-bench-warmstart-"))
    base = {k: v for k, v in os.environ.items() if k not in ("HLX_HOME", "CUPY_CACHE_DIR", "PYTHONDONTWRITEBYTECODE")}

    def fresh(label: str) -> str:
        return tempfile.mkdtemp(prefix=f"{label}-", dir=root)

    def env() -> dict[str, str]:
        if warm:
            return {**base, "HLX_HOME": str(root / "hlx-home"), "CUPY_CACHE_DIR": str(root / "cupy-cache")}
        return {**base, "HLX_HOME": fresh("home"), "CUPY_CACHE_DIR": fresh("cupy"), "CUDA_CACHE_PATH": fresh("cuda"),
                "__GL_SHADER_DISK_CACHE_PATH": fresh("nv"), "MESA_SHADER_CACHE_DIR": fresh("mesa")}

    children: list[tuple[str, Any]] = [(HLX_PLAIN, None)]
    for name, script in (("cupy", CUPY), ("torch", TORCH)):
        peer = bench.peer(name)
        if peer is not None:
            children.append((script, peer))
    rows = []
    try:
        for script, peer in children:
            runs = processes(script, [str(n), bench.backend], env, repeat, warm)
            for measure, key in (("process", "process"), ("to result", "to_result")):
                case, stats = f"{kind} {n}^3, {measure}", Stats.of([r[key] for r in runs])
                rows.append(bench.hlx_row(SUITE, case, stats, "s", "wall") if peer is None else
                            bench.peer_row(SUITE, case, peer, stats, "s", clock="wall"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return rows
