"""gemm: the library GEMM at each size and dtype against cuBLAS (torch, CuPy) and NumPy, in TFLOP/s.

HLX: the planned contract run warm with its inputs resident, timed by GPU timestamps. cuBLAS: back-to-back
products between CUDA events (TF32 off). NumPy: the host BLAS, wall time, up to NUMPY_MAX_N (larger sizes
take it seconds per product). Every HLX result is checked against float64 on sampled rows first.
A dtype the library's gemm does not take yet (E_DTYPE from the helper) is skipped with a note; adding a
dtype is one entry of DTYPES.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hlx_core.bench.harness import Bench, Case, check_close
from hlx_core.bench.peers import Peer, events
from hlx_core.bench.report import Row
from hlx_core.bench.timing import wall
from hlx_core.errors import HLXError
from hlx_core.kernels.helpers import gemm

SUITE = "gemm"
# dtype -> (relative error bound against float64 of the largest |value|, torch dtype name)
DTYPES: dict[str, tuple[float, str]] = {
    "float32": (1e-4, "float32"),
    "float16": (2e-2, "float16"),
    "bfloat16": (5e-2, "bfloat16"),
}
NUMPY_MAX_N = 2048


def numpy_dtype(name: str) -> Any:
    """The NumPy dtype of ``name`` (bfloat16 from ml_dtypes), or None where there is none here."""
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            return None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def supported(bench: Bench, name: str) -> bool:
    """Whether the library's gemm takes ``name`` inputs (a 2x2 contract built to find out)."""
    dtype = numpy_dtype(name)
    if dtype is None:
        bench.note(f"gemm {name}: skipped, ml_dtypes is not installed")
        return False
    try:
        gemm(np.ones((2, 2), dtype), np.ones((2, 2), dtype), store=bench.store)
    except HLXError as exc:
        if exc.code != "E_DTYPE":
            raise
        bench.note(f"gemm {name}: skipped, the library's gemm does not take {name} inputs here")
        return False
    return True


def cases(bench: Bench) -> list[Case]:
    sizes = bench.sizes((1024, 2048, 4096, 8192), (128, 256))
    return [Case(SUITE, f"{dtype} {n}^3", lambda n=n, dtype=dtype: measure(bench, n, dtype))
            for dtype in DTYPES if supported(bench, dtype) for n in sizes]


def measure(bench: Bench, n: int, dtype: str) -> list[Row]:
    case = f"{dtype} {n}^3"
    repeat = bench.repeat(10, 3)
    rtol = DTYPES[dtype][0]
    flop = 2.0 * n ** 3

    def tflops(seconds: float) -> float:
        return flop / seconds / 1e12

    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n), dtype=np.float32).astype(numpy_dtype(dtype))
    b = rng.standard_normal((n, n), dtype=np.float32).astype(numpy_dtype(dtype))
    p = bench.plan(gemm(a, b, store=bench.store))
    got = bench.first_output(p)
    rows = rng.choice(n, size=min(n, 16), replace=False)
    check_close(f"gemm {case}", got[rows], a[rows].astype(np.float64) @ b.astype(np.float64), rtol)
    take, clock = bench.kernel_seconds(p)
    out = [bench.hlx_row(SUITE, case, bench.timed(take, repeat, tflops), "TFLOP/s", clock)]

    for peer in bench.peers:
        if peer.clock == "cuda-events":
            product = cuda_product(peer, a, b, dtype)
            if product is not None:
                stats = bench.timed(events(peer.module, product), repeat, tflops)
                out.append(bench.peer_row(SUITE, case, peer, stats, "TFLOP/s", impl=f"{peer.impl} (cuBLAS)"))
        elif n <= NUMPY_MAX_N and dtype == "float32":
            stats = bench.timed(wall(lambda: a @ b), min(repeat, 3), tflops)
            out.append(bench.peer_row(SUITE, case, peer, stats, "TFLOP/s"))
    return out


def cuda_product(peer: Peer, a: np.ndarray, b: np.ndarray, dtype: str) -> Callable[[], object] | None:
    """``a @ b`` on the CUDA peer's device in ``dtype`` (inputs uploaded once), or None where the peer has
    no such dtype (CuPy: bfloat16)."""
    xp = peer.module
    if peer.impl.startswith("torch"):
        kind = getattr(xp, DTYPES[dtype][1])
        da, db = (xp.from_numpy(m.astype(np.float32)).cuda().to(kind) for m in (a, b))
        return lambda: xp.matmul(da, db)
    if dtype == "bfloat16":
        return None
    da, db = xp.asarray(a), xp.asarray(b)
    return lambda: da @ db
