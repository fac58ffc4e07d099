"""New process -> first GEMM result on the host, warm and cold, next to CuPy measured in the same run.

Every figure is one whole child process timed from the parent: from just before the spawn to its exit, so
the interpreter's start, every import, the device's start, the first run, the result on the host and the
teardown at exit all count. Each configuration runs ``--repeat`` fresh processes:

- hlx warm: ``hlx.run(hlx.kernels.gemm(a, b), backend=...).arrays()`` with HLX_HOME (the store, the Vulkan
  pipeline cache) and the driver's shader cache left by a first, untimed process;
- hlx warm, plain: the same without the breakdown's steps, to show that they cost nothing;
- hlx warm, HLX_HOME only: HLX_HOME warm, the driver's own shader cache empty (fresh
  ``__GL_SHADER_DISK_CACHE_PATH`` / ``MESA_SHADER_CACHE_DIR``), so pipelines can come only from HLX's cache;
- hlx cold: a fresh HLX_HOME and fresh driver shader caches in every process;
- cupy warm / cold: a CuPy RawKernel GEMM (64x64 tiles, 4x4 per thread, compiled by NVRTC) with its disk
  cache (CUPY_CACHE_DIR) in place, or fresh (and a fresh CUDA_CACHE_PATH) in every process.

Goals: hlx warm at most 0.75x CuPy warm, hlx cold at most 1.0x CuPy cold. The HLX breakdown (medians, ms):
interpreter start, import numpy, import hlx, loading the plugins, the probe of the one backend asked for,
making the inputs, the contract (inputs hashed and stored), the plan, opening the device, the first run
(pipeline creation included, shown apart for Vulkan), and what follows the result (teardown at exit).
The CuPy columns are skipped where CuPy or a CUDA device is missing.

    .venv/bin/python benchmarks/bench_warmstart.py [--size 1024] [--repeat 5] [--backend vulkan] [--small]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# -- children: each prints one JSON line of perf_counter marks (CLOCK_MONOTONIC: the parent's clock too) --

CUPY_GEMM = r"""
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


def _inputs(np: Any, n: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32))


def _check(np: Any, out: Any, a: Any, b: Any) -> float:
    """Largest relative error of a corner of the result against NumPy (microseconds of work)."""
    ref = a[:8].astype(np.float64) @ b[:, :8].astype(np.float64)
    return float(np.abs(out[:8, :8] - ref).max() / max(np.abs(ref).max(), 1e-30))


def child_hlx(n: int, backend: str, plain: bool) -> dict[str, Any]:
    marks = {"t0": time.perf_counter()}
    import numpy as np
    marks["numpy"] = time.perf_counter()
    import hlx
    marks["hlx"] = time.perf_counter()
    if plain:
        a, b = _inputs(np, n)
        result = hlx.run(hlx.kernels.gemm(a, b), backend=backend)
        out = result.arrays()[0]
        marks["result"] = time.perf_counter()
        return {"marks": marks, "error": _check(np, out, a, b), "device": result.device}
    from hlx_core import registry, runtime
    from hlx_core.planner import plan as make_plan
    registry.ensure_loaded()
    marks["plugins"] = time.perf_counter()
    name, device = runtime._choose(backend, None)
    marks["probe"] = time.perf_counter()
    a, b = _inputs(np, n)
    marks["inputs"] = time.perf_counter()
    contract = hlx.kernels.gemm(a, b)
    marks["contract"] = time.perf_counter()
    make_plan(contract, hlx.get_default_store())  # cached: hlx.run below finds it
    marks["plan"] = time.perf_counter()
    slot = runtime._session(name, device)
    marks["open"] = time.perf_counter()
    extra: dict[str, Any] = {}
    if name == "vulkan":
        extra = _time_pipelines(slot.session)
    result = hlx.run(contract, backend=backend)
    out = result.arrays()[0]
    marks["result"] = time.perf_counter()
    if name == "vulkan":
        extra["cache_loaded_bytes"] = slot.session.core.pipeline_cache.loaded_bytes
        extra["pipeline_ms"] = sum(extra.pop("_times"))
    return {"marks": marks, "error": _check(np, out, a, b), "device": result.device, **extra}


def _time_pipelines(session: Any) -> dict[str, Any]:
    """Time the pipeline creations of the first run (the part the pipeline cache can save)."""
    manager = session.core.pipelines
    times: list[float] = []
    make = manager.get

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return make(*args, **kwargs)
        finally:
            times.append((time.perf_counter() - t) * 1e3)

    manager.get = timed
    return {"_times": times}


def child_cupy(n: int) -> dict[str, Any]:
    marks = {"t0": time.perf_counter()}
    import numpy as np
    marks["numpy"] = time.perf_counter()
    import cupy as cp
    marks["cupy"] = time.perf_counter()
    a, b = _inputs(np, n)
    marks["inputs"] = time.perf_counter()
    da, db = cp.asarray(a), cp.asarray(b)  # the first CUDA call starts the context
    dc = cp.empty((n, n), dtype=cp.float32)
    marks["context+upload"] = time.perf_counter()
    kernel = cp.RawKernel(CUPY_GEMM, "sgemm")
    kernel.compile()
    marks["compile"] = time.perf_counter()
    grid = ((n + 63) // 64, (n + 63) // 64)
    kernel(grid, (16, 16), (da, db, dc, np.int32(n), np.int32(n), np.int32(n)))
    out = cp.asnumpy(dc)
    marks["result"] = time.perf_counter()
    return {"marks": marks, "error": _check(np, out, a, b),
            "device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode()}


def child_floor(what: str) -> dict[str, Any]:
    marks = {"t0": time.perf_counter()}
    if what == "numpy":
        import numpy  # noqa: F401
    marks["result"] = time.perf_counter()
    return {"marks": marks}


# -- the parent -------------------------------------------------------------------------------------------

def spawn(mode: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One child process; adds ``process`` (spawn to exit), ``start`` (spawn to the script's first line),
    ``to_result`` (spawn to the result on the host) and ``after`` (result to exit), all in seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", *mode], env=env, capture_output=True, text=True)
    end = time.perf_counter()
    if proc.returncode != 0:
        raise RuntimeError(f"child {mode} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    m = out["marks"]
    out.update(process=end - start, start=m["t0"] - start, to_result=m["result"] - start, after=end - m["result"])
    return out


def fresh(root: Path, label: str) -> str:
    return tempfile.mkdtemp(prefix=f"{label}-", dir=root)


def run_config(label: str, mode: list[str], env_for: Any, repeat: int, warmup: bool) -> list[dict[str, Any]]:
    if warmup:
        spawn(mode, env_for())  # fills the caches a warm start finds
    runs = [spawn(mode, env_for()) for _ in range(repeat)]
    worst = max(r.get("error", 0.0) for r in runs)
    if worst > 1e-3:
        raise RuntimeError(f"{label}: result differs from NumPy (relative error {worst:.2e})")
    return runs


def stats(values: list[float]) -> tuple[float, float, float]:
    return min(values), statistics.median(values), max(values)


def phases(runs: list[dict[str, Any]], names: list[str]) -> dict[str, float]:
    """Median milliseconds of each step (the difference between consecutive marks)."""
    out = {"start": statistics.median(r["start"] for r in runs) * 1e3}
    for prev, name in zip(["t0", *names], names):
        out[name] = statistics.median((r["marks"][name] - r["marks"][prev]) * 1e3 for r in runs)
    out["after result"] = statistics.median(r["after"] for r in runs) * 1e3
    return out


def cupy_usable(env: dict[str, str]) -> str | None:
    """None when a CuPy child can run here, else why not."""
    import importlib.util
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    probe = subprocess.run([sys.executable, "-c", "import cupy; cupy.cuda.runtime.getDeviceCount()"],
                           env=env, capture_output=True, text=True)
    return None if probe.returncode == 0 else "CuPy finds no CUDA device"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="N of the N x N x N float32 GEMM")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per configuration")
    parser.add_argument("--backend", default="vulkan", help="HLX backend (default vulkan)")
    parser.add_argument("--small", action="store_true", help="256^3 (CPU devices such as lavapipe)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "hlx":
            out = child_hlx(int(rest[0]), rest[1], plain=rest[2] == "plain")
        elif kind == "cupy":
            out = child_cupy(int(rest[0]))
        else:
            out = child_floor(rest[0])
        print(json.dumps(out))
        return
    n = 256 if args.small else args.size
    root = Path(tempfile.mkdtemp(prefix="hlx-warmstart-"))
    base = {k: v for k, v in os.environ.items() if k not in ("HLX_HOME", "CUPY_CACHE_DIR")}
    base["PYTHONDONTWRITEBYTECODE"] = "0"
    warm = {"HLX_HOME": str(root / "hlx-warm"), "CUPY_CACHE_DIR": str(root / "cupy-warm")}

    def driver_fresh() -> dict[str, str]:
        return {"__GL_SHADER_DISK_CACHE_PATH": fresh(root, "nv"), "MESA_SHADER_CACHE_DIR": fresh(root, "mesa"),
                "CUDA_CACHE_PATH": fresh(root, "cuda")}

    hlx_mode = ["hlx", str(n), args.backend]
    configs: list[tuple[str, list[str], Any, bool]] = [
        ("python -c pass", ["floor", "python"], lambda: base, False),
        ("python, import numpy", ["floor", "numpy"], lambda: base, False),
        ("hlx warm", [*hlx_mode, "steps"], lambda: {**base, **warm}, True),
        ("hlx warm, plain", [*hlx_mode, "plain"], lambda: {**base, **warm}, False),
        ("hlx warm, HLX_HOME only", [*hlx_mode, "steps"], lambda: {**base, **warm, **driver_fresh()}, False),
        ("hlx cold", [*hlx_mode, "steps"],
         lambda: {**base, "HLX_HOME": fresh(root, "home"), **driver_fresh()}, False),
    ]
    no_cupy = cupy_usable(base)
    if no_cupy is None:
        configs += [
            ("cupy warm", ["cupy", str(n)], lambda: {**base, **warm}, True),
            ("cupy cold", ["cupy", str(n)], lambda: {**base, "CUPY_CACHE_DIR": fresh(root, "cupy"),
                                                      **driver_fresh()}, False),
        ]
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for label, mode, env_for, warmup in configs:
            results[label] = run_config(label, mode, env_for, args.repeat, warmup)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    device = results["hlx warm"][0]["device"]
    print(f"new process -> first {n}^3 float32 GEMM result on the host; hlx backend {args.backend!r} on "
          f"{device}; {args.repeat} processes each; {sys.executable} (Python {sys.version.split()[0]})")
    print(f"\n{'seconds, whole process':26s} {'min':>7s} {'median':>7s} {'max':>7s}   "
          f"{'to result (median)':>18s}")
    for label, runs in results.items():
        lo, med, hi = stats([r["process"] for r in runs])
        print(f"{label:26s} {lo:7.3f} {med:7.3f} {hi:7.3f}   {statistics.median(r['to_result'] for r in runs):18.3f}")
    if no_cupy is None:
        for kind, goal in (("warm", 0.75), ("cold", 1.0)):
            ours = statistics.median(r["process"] for r in results[f"hlx {kind}"])
            peer = statistics.median(r["process"] for r in results[f"cupy {kind}"])
            ours_r = statistics.median(r["to_result"] for r in results[f"hlx {kind}"])
            peer_r = statistics.median(r["to_result"] for r in results[f"cupy {kind}"])
            print(f"ratio hlx/cupy {kind}: {ours / peer:.2f}x whole process, {ours_r / peer_r:.2f}x to the result "
                  f"(goal {goal}x)")
    else:
        print(f"CuPy columns skipped: {no_cupy}")

    steps = ["numpy", "hlx", "plugins", "probe", "inputs", "contract", "plan", "open", "result"]
    print("\nbreakdown, median ms: " + ", ".join(["start", *steps[:-1], "first run", "after result"]))
    for label in ("hlx warm", "hlx warm, HLX_HOME only", "hlx cold"):
        runs = results[label]
        p = phases(runs, steps)
        line = "  ".join(f"{v:7.1f}" for v in p.values())
        pipes = ""
        if "pipeline_ms" in runs[0]:
            pipes = (f"  | pipeline creation {statistics.median(r['pipeline_ms'] for r in runs):.1f} ms, "
                     f"cache loaded {runs[0]['cache_loaded_bytes']} B")
        print(f"{label:26s} {line}{pipes}")
    if no_cupy is None:
        cupy_steps = ["numpy", "cupy", "inputs", "context+upload", "compile", "result"]
        print("breakdown, median ms: " + ", ".join(["start", *cupy_steps[:-1], "run+download", "after result"]))
        for label in ("cupy warm", "cupy cold"):
            p = phases(results[label], cupy_steps)
            print(f"{label:26s} " + "  ".join(f"{v:7.1f}" for v in p.values()))


if __name__ == "__main__":
    main()
