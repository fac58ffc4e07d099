"""How long the driver takes to build each shader's pipeline from scratch: what a cold start pays.

Each shader (the library's, ../shaders/*.spv, or the files given) gets a fresh child process with an
empty HLX_HOME (no HLX pipeline cache) and empty driver shader caches (``__GL_SHADER_DISK_CACHE_PATH``,
``MESA_SHADER_CACHE_DIR``), which opens the default Vulkan device and times the pipeline's creation at
the shader's default workgroup size. Prints the median of ``--repeat`` children per shader, in ms,
slowest first, and the shaders the device does not build (the cooperative-matrix ones on lavapipe).
A cold ``hlx.run`` pays the pipelines it needs: its kernel's and, for an output of 1 MiB or more, the
device hash's (blake3).

    python3 bench_compile.py [--repeat 3] [FILE.spv ...]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SHADERS = Path(__file__).resolve().parents[1] / "shaders"

CHILD = r'''
import json, sys, time
from _variants import open_session
spirv = open(sys.argv[1], "rb").read()
session = open_session(False)
manager = session.core.pipelines
t = time.perf_counter()
manager.get(spirv, "main")
cold = (time.perf_counter() - t) * 1e3
print(json.dumps({"ms": cold}))
session.close()
'''


def child_ms(spv: Path) -> float | str:
    """Milliseconds of the build in a fresh process, or why it failed (a shader the device refuses)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HLX_HOME": os.path.join(tmp, "hlx"),
               "__GL_SHADER_DISK_CACHE_PATH": os.path.join(tmp, "nv"),
               "MESA_SHADER_CACHE_DIR": os.path.join(tmp, "mesa")}
        out = subprocess.run([sys.executable, "-c", CHILD, str(spv)], env=env, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=300)
        if out.returncode != 0:
            return out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        return float(json.loads(out.stdout.strip().splitlines()[-1])["ms"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("shaders", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.shaders or sorted(SHADERS.glob("*.spv"))
    rows, refused = [], []
    for p in paths:
        got = [child_ms(p) for _ in range(args.repeat)]
        if any(isinstance(g, str) for g in got):
            refused.append((p, next(g for g in got if isinstance(g, str))))
        else:
            rows.append((statistics.median(got), p))
    print(f"pipeline build from empty caches, median of {args.repeat} processes each:")
    for ms, p in sorted(rows, key=lambda r: r[0], reverse=True):
        print(f"  {p.name:40} {ms:9.1f} ms   ({p.stat().st_size} bytes of SPIR-V)")
    for p, why in refused:
        print(f"  {p.name:40} not built here: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
