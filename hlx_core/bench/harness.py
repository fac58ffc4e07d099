"""What the suites of one ``hlx bench`` run share: the options, one HLX session on the chosen backend, a
memory store for the inputs (gigabytes of benchmark data never reach the user's disk store), the peers,
the date, and the helpers that turn samples into rows.

A suite is a module of hlx_core/bench/suites with ``cases(bench) -> list[Case]``; a case measures HLX and
its peers and returns their rows. HLX kernels are timed by the session's GPU timestamps (the sum of the
plan's stage times, so no device-side hashing or clearing counts) where the backend has them, by the
wall time of ``Session.execute`` otherwise (the cpu backend), and the rows say which clock.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from hlx_core import runtime
from hlx_core.backend import DeviceInfo, DeviceOutput, Session
from hlx_core.bench.peers import Peer
from hlx_core.bench.peers import available as available_peers
from hlx_core.bench.report import Row
from hlx_core.bench.timing import Stats, measure, wall
from hlx_core.cas.store import MemoryStore
from hlx_core.errors import HLXError
from hlx_core.kernels.helpers import gemm, reduce_sum
from hlx_core.plan import Plan
from hlx_core.planner import plan as make_plan

WARM_S = 0.5  # seconds of warm-up per measurement at least: an idle GPU's clocks take that to rise
GPU_WARM_S = 3.0  # seconds of work on a GPU before the first measurement of a run


def warm_up(session: Session, store: Any = None, seconds: float = GPU_WARM_S) -> None:
    """GEMMs and a reduction over 64 MiB (more than the H200's L2), in turn, for ``seconds`` before the
    first case. A GPU fresh from idle ran a 1024^3 GEMM at a third of its speed (on the H200) through the
    first measurement's half second of warm-up; after GEMMs alone (whose 2048^2 operands stay in L2) the
    first streaming case, an add, ran at 0.42x torch and the next, a mul with the same shader body, at
    1.00x. The reduction keeps the memory busy too, and its output is one number: no run waits on a
    download."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((2048, 2048), dtype=np.float32) for _ in range(2))
    plans = (make_plan(gemm(a, b, store=store), store),
             make_plan(reduce_sum(np.full(16 << 20, 0.5, np.float32), store=store), store))
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for p in plans:
            session.execute(p)


@dataclass(frozen=True)
class Options:
    """The command line's options, checked. ``sizes``, ``repeat`` and ``warmup`` are None where each suite
    uses its own defaults (smaller ones with ``quick``)."""

    suites: tuple[str, ...]
    backend: str = "auto"
    device: str | None = None
    sizes: tuple[int, ...] | None = None
    repeat: int | None = None
    warmup: int | None = None
    quick: bool = False


@dataclass(frozen=True)
class Case:
    """One measurement of a suite: its name and the function that measures HLX and its peers."""

    suite: str
    name: str
    run: Callable[[], list[Row]]


@dataclass
class Bench:
    """The state one ``hlx bench`` run shares between its suites and cases (see the module's docstring)."""

    options: Options
    store: MemoryStore = field(default_factory=MemoryStore)
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    notes: list[str] = field(default_factory=list)
    _session: Session | None = None
    _peers: list[Peer] | None = None

    # -- what each suite asks for -------------------------------------------------------------------------

    def sizes(self, full: Sequence[int], quick: Sequence[int]) -> tuple[int, ...]:
        return self.options.sizes or tuple(quick if self.options.quick else full)

    def repeat(self, full: int, quick: int) -> int:
        return self.options.repeat or (quick if self.options.quick else full)

    def warmup(self, full: int = 2, quick: int = 1) -> int:
        return self.options.warmup if self.options.warmup is not None else (quick if self.options.quick else full)

    def note(self, text: str) -> None:
        """A line printed after the tables: a skipped peer or case and why."""
        if text not in self.notes:
            self.notes.append(text)

    # -- HLX ----------------------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The session every suite's kernels run in: the one ``hlx.run`` uses for ``--backend`` ("auto": the
        one it picks) and ``--device`` (one device opened, not a second beside it). Like every session of
        ``hlx.run`` it leaves large outputs on the device, as the CUDA peers' results stay: a timed repeat
        never waits on a download (``first_output`` downloads what it checks)."""
        if self._session is None:
            _, self._session = runtime.session(self.options.backend, self.options.device)
        return self._session

    def warm_up(self) -> None:
        """``warm_up`` on a GPU (not with --quick): called right before the first case, since the GPU's clocks
        fall back within the seconds the header and the peers take (torch and CuPy start CUDA). Warmed when
        the session opened, the first case of a run on the H200 still ran at 0.42-0.53x the speed the same
        kernel had in the next cases."""
        if self.session.device.is_gpu and not self.options.quick:
            warm_up(self.session, self.store)

    @property
    def device(self) -> DeviceInfo:
        return self.session.device

    @property
    def backend(self) -> str:
        """The backend the session runs on (opening it names it)."""
        return self.session.backend

    @property
    def impl(self) -> str:
        return f"hlx {self.backend}"

    def plan(self, contract: dict) -> Plan:
        return make_plan(contract, self.store)

    def first_output(self, plan: Plan) -> np.ndarray:
        """Output 0 of a run of ``plan`` in the session, on the host (the run that makes its inputs
        resident, checked before any is timed)."""
        return host_array(self.session.execute(plan).arrays[0])

    def kernel_seconds(self, plan: Plan) -> tuple[Callable[[], float], str]:
        """A sample taker for ``plan`` run warm in the session (inputs resident after the first run), and
        its clock: the GPU time of the plan's stages, or the wall time of the execute without timestamps."""
        session = self.session
        keys = [f"stage{i}_gpu_ms" for i in range(len(plan.stages))]
        first = session.execute(plan).timings
        if all(k in first for k in keys):
            return (lambda: sum(session.execute(plan).timings[k] for k in keys) / 1e3), "gpu-timestamps"
        return wall(lambda: session.execute(plan)), "wall"

    def hlx_row(self, suite: str, case: str, stats: Stats, unit: str, clock: str, impl: str | None = None) -> Row:
        return Row(suite, case, impl or self.impl, clock, self.device.name, driver_of(self.device), stats, unit,
                   date=self.date)

    def close(self) -> None:
        """Let go of the session (``hlx.run``'s: it stays open for later runs and closes at exit)."""
        self._session = None

    # -- peers --------------------------------------------------------------------------------------------

    @property
    def peers(self) -> list[Peer]:
        """torch, cupy and numpy where each is importable (CUDA peers only with a CUDA device)."""
        if self._peers is None:
            self._peers = available_peers()
            if not any(p.clock == "cuda-events" for p in self._peers):
                self.note("no CUDA peer here (torch or CuPy with a CUDA device): ratios are against NumPy on "
                          "the host, or absent")
        return self._peers

    def peer(self, prefix: str) -> Peer | None:
        return next((p for p in self.peers if p.impl.startswith(prefix)), None)

    def peer_row(self, suite: str, case: str, peer: Peer, stats: Stats, unit: str, impl: str = "",
                 clock: str = "") -> Row:
        return Row(suite, case, impl or peer.impl, clock or peer.clock, peer.device, peer.driver, stats, unit,
                   peer=True, date=self.date)

    def timed(self, take: Callable[[], float], repeat: int, per: Callable[[float], float] | None = None) -> Stats:
        """Stats of ``repeat`` samples after ``--warmup`` ones, and at least WARM_S of warm-up unless quick."""
        return measure(take, self.warmup(), repeat, per, 0.0 if self.options.quick else WARM_S)


def host_array(out: Any) -> np.ndarray:
    """An ``Execution.arrays`` entry on the host: a large output the GPU hashed stays on the device as a
    ``DeviceOutput`` until it is downloaded."""
    return out.download() if isinstance(out, DeviceOutput) else np.asarray(out)


def driver_of(device: DeviceInfo) -> str:
    """The driver as a device's details name it (Vulkan: name and info; wgpu: description; cpu: NumPy)."""
    d = device.details
    vulkan = " ".join(str(d[k]) for k in ("driver_name", "driver_info") if d.get(k))
    if vulkan:
        return vulkan
    if d.get("description"):
        return str(d["description"])
    if d.get("numpy"):
        return f"numpy {d['numpy']}"
    return str(d.get("driver_version_str", "-"))


def check_close(what: str, got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    """E_BENCH when ``got`` is off ``want`` (float64) by more than ``rtol`` of ``want``'s largest |value|:
    a benchmark times only results that are right."""
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    err = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
    if got.shape != want.shape or not err <= rtol * max(scale, 1e-30) or math.isnan(err):
        raise HLXError("E_BENCH", f"{what}: the result differs from NumPy's float64 (max |error| {err:.3g} "
                                  f"against {rtol:g} of {scale:.3g}, shape {got.shape} against {want.shape})")
