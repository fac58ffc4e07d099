"""``hlx demo``: an MLP pipeline and an N×N×N GEMM on every available backend, checked against the CPU
reference, in one table (backend, device, case, time, GFLOP/s, result handle, match). The CPU reference's
own row is checked against the same computation done directly in NumPy float64.

Each case runs once to warm up (shader compilation, pipeline creation, uploads) and once timed, so the
table shows the steady-state cost of ``hlx.run`` end to end.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from hlx_core import runtime
from hlx_core.errors import BackendError, HLXError
from hlx_core.kernels.helpers import gemm, pipeline, relu, softmax, stage

REFERENCE = "cpu"
RTOL = 1e-5  # of the largest |value|: float32 GEMMs summing in different orders agree to about this


@dataclass(frozen=True)
class Case:
    """One demo workload: a contract, the floating-point work it does, and its result computed directly
    in NumPy float64 (what the CPU reference is checked against)."""

    name: str
    contract: dict
    flops: float
    numpy64: np.ndarray


@dataclass(frozen=True)
class DemoRow:
    backend: str
    device: str
    case: str
    ms: float
    gflops: float
    handle: str
    match: bool
    detail: str


def cases(size: int, rng: np.random.Generator) -> list[Case]:
    """The MLP (batch 256, 512 -> 1024 -> 256, softmax) and a size³ GEMM, on fresh random inputs."""
    batch, d_in, hidden, d_out = 256, 512, 1024, 256
    x = rng.standard_normal((batch, d_in), dtype=np.float32)
    w1 = rng.standard_normal((d_in, hidden), dtype=np.float32) / np.float32(np.sqrt(d_in))
    w2 = rng.standard_normal((hidden, d_out), dtype=np.float32) / np.float32(np.sqrt(hidden))
    mlp = pipeline([gemm(x, w1), relu(stage(0)), gemm(stage(1), w2), softmax(stage(2))])
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    logits = np.maximum(x.astype(np.float64) @ w1, 0) @ w2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return [
        Case("mlp", mlp, 2.0 * batch * hidden * (d_in + d_out), e / e.sum(axis=1, keepdims=True)),
        Case(f"gemm {size}³", gemm(a, b), 2.0 * size ** 3, a.astype(np.float64) @ b),
    ]


def _compare(got: np.ndarray, want: np.ndarray) -> tuple[bool, str]:
    """Bitwise, or within RTOL of the result's largest magnitude (float32 sums in another order differ by
    a few ulps of the partial sums, which near-zero entries cannot absorb relative to themselves)."""
    if got.shape != want.shape or got.dtype != np.float32:
        return False, f"{got.dtype}{list(got.shape)} vs {want.dtype}{list(want.shape)}"
    if got.dtype == want.dtype and np.array_equal(got, want):
        return True, "bitwise"
    if got.size == 0:
        return True, "empty"
    err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    scale = max(float(np.max(np.abs(want))), np.finfo(np.float32).tiny)
    return err <= RTOL * scale, f"max |err| {err:.1e} ({err / scale:.1e} of max)"


def _timed(contract: dict, backend: str) -> tuple[runtime.Result, float]:
    runtime.run(contract, backend=backend, memo=False)  # warm-up; the row times the backend, not a memo hit
    start = time.perf_counter()
    result = runtime.run(contract, backend=backend, memo=False)
    return result, (time.perf_counter() - start) * 1e3


def run_demo(size: int = 1024, backends: Sequence[str] | None = None, console: Console | None = None,
             seed: int | None = None) -> list[DemoRow]:
    """Run the demo and print its table; returns the rows (``match`` False where a backend disagrees with
    the CPU reference or failed)."""
    console = console or Console()
    names = list(backends) if backends else runtime.backends()
    available = runtime.backends()
    if REFERENCE not in available:
        raise BackendError("E_BACKEND_UNAVAILABLE", "the demo checks against the CPU reference backend 'cpu', "
                                                    "which is not available (is HLX_PLUGINS excluding it?)")
    work = cases(size, np.random.default_rng(seed))
    rows: list[DemoRow] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("running", total=len(work) * (len(names) + 1))

        def step(what: str) -> None:
            progress.update(task, advance=1, description=what)

        references = {}
        for case in work:
            step(f"{case.name} on {REFERENCE} (reference)")
            references[case.name] = runtime.run(case.contract, backend=REFERENCE).arrays()[0]
        for name in names:
            for case in work:
                step(f"{case.name} on {name}")
                rows.append(_row(name, case, references[case.name]))
    _print(rows, console)
    return rows


def _row(backend: str, case: Case, reference: np.ndarray) -> DemoRow:
    try:
        result, ms = _timed(case.contract, backend)
    except HLXError as exc:
        nan = float("nan")
        return DemoRow(backend, "-", case.name, nan, nan, "-", False, f"[{exc.code}] {exc.message}")
    ok, detail = _compare(result.arrays()[0], reference)
    if backend == REFERENCE:  # itself, trivially: say how it compares with NumPy float64 instead
        ok, detail = _compare(result.arrays()[0], case.numpy64)
        detail = f"reference; vs NumPy float64: {detail}"
    return DemoRow(backend, result.device, case.name, ms, case.flops / ms / 1e6, str(result.outputs[0]), ok,
                   detail)


def _print(rows: list[DemoRow], console: Console) -> None:
    table = Table(title="hlx demo: each backend against the CPU reference")
    for col, justify in (("backend", "left"), ("device", "left"), ("case", "left"), ("time (ms)", "right"),
                         ("GFLOP/s", "right"), ("result handle", "left"), ("match", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        mark = "[green]✓[/]" if r.match else "[red]✗[/]"
        table.add_row(escape(r.backend), escape(r.device), r.case, f"{r.ms:.1f}", f"{r.gflops:.1f}",
                      r.handle[:30] + "…" if len(r.handle) > 30 else r.handle, f"{mark} {escape(r.detail)}")
    console.print(table)
