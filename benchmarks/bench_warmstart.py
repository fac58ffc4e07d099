"""New process -> first GEMM result on the host, warm and cold, next to CuPy measured in the same run.

Every figure is one whole child process timed from the parent, from just before the spawn to its exit: the
interpreter's start, every import, the device's start, the first run, the result on the host and the
teardown at exit all count. Each child is a short script, what a user would write plus time marks. Each
configuration runs ``--repeat`` fresh processes:

- hlx warm: ``hlx.run(hlx.kernels.gemm(a, b), backend=...).arrays()`` with HLX_HOME (the store, the Vulkan
  pipeline cache) and the driver's shader cache left by a first, untimed process, taking hlx.run's steps one
  at a time for the breakdown;
- hlx warm, plain: just the call, to show that taking the steps one at a time costs nothing;
- hlx warm, HLX_HOME only: HLX_HOME warm, the driver's own shader cache empty (fresh
  ``__GL_SHADER_DISK_CACHE_PATH`` / ``MESA_SHADER_CACHE_DIR``), so pipelines come only from HLX's cache;
- hlx cold: a fresh HLX_HOME and fresh driver shader caches in every process;
- cupy warm / cold: a CuPy RawKernel GEMM (64x64 tiles, 4x4 per thread, compiled by NVRTC) with its disk
  cache (CUPY_CACHE_DIR) left by a first process, or fresh (with a fresh CUDA_CACHE_PATH) in every process.

Goals: hlx warm at most 0.75x CuPy warm, hlx cold at most 1.0x CuPy cold. The breakdown gives medians in
ms: the interpreter's start, import numpy, import hlx, loading the plugins, the probe of the one backend
asked for, making the inputs, the contract (inputs hashed and stored), the plan, opening the device, the
first run (its pipeline builds shown apart on Vulkan, each by shader: they run at the same time, so their
sum can exceed the run) and what follows the result (teardown at exit).
The CuPy rows are skipped where CuPy or a CUDA device is missing.

    .venv/bin/python benchmarks/bench_warmstart.py [--size 1024] [--repeat 5] [--backend vulkan] [--small]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from hlx_core.bench.suites.warmstart import CUPY, HLX_PLAIN, PRELUDE, spawn

SHADERS = Path(__file__).resolve().parents[1] / "shaders"

# -- the children ---------------------------------------------------------------------------------------
# PRELUDE, HLX_PLAIN (just the call), CUPY and spawn are the `hlx bench warmstart` suite's.

FLOOR_PYTHON = PRELUDE + r'''
mark("result")
report()
'''

FLOOR_NUMPY = PRELUDE + r'''
import numpy
mark("result")
report()
'''

# hlx.run's steps one at a time; each is cached, so the run at the end only creates pipelines, executes and
# stores the output.
HLX_STEPS = PRELUDE + r'''
import numpy as np
mark("numpy")
import hlx
mark("hlx")
from hlx_core import registry, runtime
from hlx_core.planner import plan as make_plan
registry.ensure_loaded()
mark("plugins")
if BACKEND == "vulkan":  # the probe's parts
    import hlx_vulkan_raw.loader
    mark("import vulkan")
    from hlx_vulkan_raw.instance import get_instance
    get_instance()
    mark("instance")
    from hlx_vulkan_raw.devices import list_devices
    list_devices()
    mark("devices")
name, device = runtime._choose(BACKEND, None)
mark("probe")
a, b = inputs(np)
mark("inputs")
contract = hlx.kernels.gemm(a, b)
mark("contract")
make_plan(contract, hlx.get_default_store())
mark("plan")
slot = runtime._session(name, device)
mark("open")
pipeline_ms = []
if name == "vulkan":  # each pipeline build of the first run (some at once): what the pipeline cache can save
    manager = slot.session.core.pipelines
    make = manager._create

    def timed(module, *args, **kwargs):
        t = time.perf_counter()
        try:
            return make(module, *args, **kwargs)
        finally:
            pipeline_ms.append((len(module.spirv), (time.perf_counter() - t) * 1e3))

    manager._create = timed
result = hlx.run(contract, backend=BACKEND, memo=False)
out = result.arrays()[0]
mark("result")
extra = {}
if name == "vulkan":
    extra = {"pipeline_ms": sum(ms for _, ms in pipeline_ms), "pipelines": pipeline_ms,
             "cache_loaded_bytes": slot.session.core.pipeline_cache.loaded_bytes}
report(out, a, b, device=result.device, **extra)
'''

HLX_STEP_NAMES = ["numpy", "hlx", "plugins", "import vulkan", "instance", "devices", "probe", "inputs",
                  "contract", "plan", "open", "result"]
CUPY_STEP_NAMES = ["numpy", "cupy", "inputs", "context+upload", "compile", "result"]


# -- the parent -----------------------------------------------------------------------------------------

def run_config(label: str, script: str, argv: list[str], env_for: Callable[[], dict[str, str]], repeat: int,
               warmup: bool) -> list[dict[str, Any]]:
    if warmup:
        spawn(script, argv, env_for())  # leaves the caches a warm start finds
    runs = [spawn(script, argv, env_for()) for _ in range(repeat)]
    worst = max(r.get("error", 0.0) for r in runs)
    if worst > 1e-3:
        raise RuntimeError(f"{label}: the result differs from NumPy's (relative error {worst:.2e})")
    return runs


def step_ms(runs: list[dict[str, Any]], names: list[str]) -> list[float]:
    """Median milliseconds: the start, each step (between consecutive marks; a step a child did not take
    counts 0), the exit hooks (teardown, store flush) and the interpreter's finalization."""
    out = [statistics.median(r["start"] for r in runs) * 1e3]
    for name in names:
        steps = []
        for r in runs:
            keys = list(r["marks"])
            if name in keys:
                steps.append((r["marks"][name] - r["marks"][keys[keys.index(name) - 1]]) * 1e3)
        out.append(statistics.median(steps) if steps else 0.0)
    out += [statistics.median(r[k] for r in runs) * 1e3 for k in ("exit_hooks", "finalization")]
    return out


def cupy_missing(env: dict[str, str]) -> str | None:
    """None when a CuPy child can run here, else why not."""
    if importlib.util.find_spec("cupy") is None:
        return "CuPy is not installed"
    probe = subprocess.run([sys.executable, "-c", "import cupy; assert cupy.cuda.runtime.getDeviceCount()"],
                           env=env, capture_output=True, text=True)
    return None if probe.returncode == 0 else "CuPy finds no CUDA device"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="N of the N x N x N float32 GEMM")
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes per configuration")
    parser.add_argument("--backend", default="vulkan", help="HLX backend (default vulkan)")
    parser.add_argument("--small", action="store_true", help="a 256^3 GEMM (CPU devices such as lavapipe)")
    args = parser.parse_args()
    n = 256 if args.small else args.size
    argv = [str(n), args.backend]
    root = Path(tempfile.mkdtemp(prefix="hlx-warmstart-"))
    base = {k: v for k, v in os.environ.items()
            if k not in ("HLX_HOME", "CUPY_CACHE_DIR", "PYTHONDONTWRITEBYTECODE")}
    warm = {"HLX_HOME": str(root / "hlx-home"), "CUPY_CACHE_DIR": str(root / "cupy-cache")}

    def fresh(label: str) -> str:
        return tempfile.mkdtemp(prefix=f"{label}-", dir=root)

    def no_driver_cache() -> dict[str, str]:
        return {"__GL_SHADER_DISK_CACHE_PATH": fresh("nv"), "MESA_SHADER_CACHE_DIR": fresh("mesa"),
                "CUDA_CACHE_PATH": fresh("cuda")}

    configs: list[tuple[str, str, Callable[[], dict[str, str]], bool]] = [
        ("python, nothing imported", FLOOR_PYTHON, lambda: base, False),
        ("python, import numpy", FLOOR_NUMPY, lambda: base, False),
        ("hlx warm", HLX_STEPS, lambda: {**base, **warm}, True),
        ("hlx warm, plain", HLX_PLAIN, lambda: {**base, **warm}, False),
        ("hlx warm, HLX_HOME only", HLX_STEPS, lambda: {**base, **warm, **no_driver_cache()}, False),
        ("hlx cold", HLX_STEPS, lambda: {**base, "HLX_HOME": fresh("home"), **no_driver_cache()}, False),
    ]
    missing = cupy_missing(base)
    if missing is None:
        configs += [
            ("cupy warm", CUPY, lambda: {**base, **warm}, True),
            ("cupy cold", CUPY, lambda: {**base, "CUPY_CACHE_DIR": fresh("cupy"), **no_driver_cache()}, False),
        ]
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for label, script, env_for, warmup in configs:
            results[label] = run_config(label, script, argv, env_for, args.repeat, warmup)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"new process -> first {n}^3 float32 GEMM result on the host; hlx backend {args.backend!r} on "
          f"{results['hlx warm'][0]['device']}; {args.repeat} processes each; Python {sys.version.split()[0]}")
    print(f"\n{'seconds':26s} {'min':>7s} {'median':>7s} {'max':>7s}  {'to result, median':>18s}")
    for label, runs in results.items():
        whole = [r["process"] for r in runs]
        print(f"{label:26s} {min(whole):7.3f} {statistics.median(whole):7.3f} {max(whole):7.3f}  "
              f"{statistics.median(r['to_result'] for r in runs):18.3f}")
    if missing is None:
        for kind, goal in (("warm", 0.75), ("cold", 1.0)):
            ours, peer = results[f"hlx {kind}"], results[f"cupy {kind}"]
            whole = statistics.median(r["process"] for r in ours) / statistics.median(r["process"] for r in peer)
            part = statistics.median(r["to_result"] for r in ours) / statistics.median(r["to_result"] for r in peer)
            print(f"hlx/cupy {kind}: {whole:.2f}x whole process, {part:.2f}x to the result (goal {goal}x)")
    else:
        print(f"CuPy rows skipped: {missing}")

    # the library shaders by SPIR-V size, to name each pipeline of the first run (the first process's)
    shader_names = {len(p.read_bytes()): p.stem for p in sorted(SHADERS.glob("*.spv"))}
    heads = ["start", *HLX_STEP_NAMES[:-1], "1st run", "at exit", "finalize"]
    print("\nbreakdown, median ms".ljust(27) + "".join(f"{h[:8]:>9s}" for h in heads))
    for label in ("hlx warm", "hlx warm, HLX_HOME only", "hlx cold"):
        runs = results[label]
        line = "".join(f"{v:9.1f}" for v in step_ms(runs, HLX_STEP_NAMES))
        if "pipeline_ms" in runs[0]:
            each = ", ".join(f"{shader_names.get(size, f'{size} B')} {ms:.1f}" for size, ms in runs[0]["pipelines"])
            line += (f"   pipelines {statistics.median(r['pipeline_ms'] for r in runs):.1f} ms ({each}), cache "
                     f"loaded {runs[0]['cache_loaded_bytes']} B")
        print(f"{label:26s}{line}")
    if missing is None:
        heads = ["start", *CUPY_STEP_NAMES[:-1], "run", "at exit", "finalize"]
        print("".ljust(26) + "".join(f"{h[:8]:>9s}" for h in heads))
        for label in ("cupy warm", "cupy cold"):
            print(f"{label:26s}" + "".join(f"{v:9.1f}" for v in step_ms(results[label], CUPY_STEP_NAMES)))


if __name__ == "__main__":
    main()
