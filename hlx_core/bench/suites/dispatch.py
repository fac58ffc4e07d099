"""dispatch: the tiny round trip, what a warm call costs when the work is nothing (an add of 256 float32).

Cases: the result on the host (``hlx.run`` with the memo off, and with its default, where the memo
answers; against torch's op + ``.cpu()`` and NumPy's add) and the device alone (``Session.execute`` of the
planned contract against torch's op + ``torch.cuda.synchronize()``). ``hlx.run`` uses the default store,
as a user's call does. Wall time per call, each sample the mean of 10 back-to-back calls, in µs.
See benchmarks/bench_tiny_round_trip.py and bench_vulkan_overhead.py for the parts of the round trip.
"""
from __future__ import annotations

import numpy as np

from hlx_core import runtime
from hlx_core.bench.harness import Bench, Case
from hlx_core.bench.report import Row
from hlx_core.bench.timing import wall
from hlx_core.kernels.helpers import add

SUITE = "dispatch"
BATCH = 10  # calls per sample


def cases(bench: Bench) -> list[Case]:
    sizes = bench.sizes((256,), (256,))
    return [c for n in sizes for c in (Case(SUITE, f"add {n} to host", lambda n=n: to_host(bench, n)),
                                       Case(SUITE, f"add {n} on device", lambda n=n: on_device(bench, n)))]


def _inputs(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)


def _us(seconds: float) -> float:
    return seconds * 1e6


def to_host(bench: Bench, n: int) -> list[Row]:
    case = f"add {n} to host"
    repeat = bench.repeat(200, 20)
    a, b = _inputs(n)
    contract = add(a, b)
    backend, device = bench.backend, bench.options.device
    rows = []
    for memo, label in ((False, "hlx.run"), (None, "hlx.run, memo default")):
        def call(memo=memo) -> object:
            return runtime.run(contract, backend=backend, device=device, memo=memo).arrays()
        rows.append(bench.hlx_row(SUITE, case, bench.timed(wall(call, BATCH), repeat, _us), "µs", "wall",
                                  impl=f"{bench.impl}, {label}"))
    torch = bench.peer("torch")
    if torch is not None:
        ta, tb = (torch.module.from_numpy(x).cuda() for x in (a, b))
        rows.append(bench.peer_row(SUITE, case, torch, bench.timed(wall(lambda: ta.add(tb).cpu(), BATCH), repeat, _us),
                                   "µs", impl=f"{torch.impl}, op + .cpu()", clock="wall"))
    numpy = bench.peer("numpy")
    if numpy is not None:
        rows.append(bench.peer_row(SUITE, case, numpy, bench.timed(wall(lambda: a + b, BATCH), repeat, _us), "µs"))
    return rows


def on_device(bench: Bench, n: int) -> list[Row]:
    case = f"add {n} on device"
    repeat = bench.repeat(200, 20)
    p = bench.plan(add(*_inputs(n), store=bench.store))
    session = bench.session
    session.execute(p)
    rows = [bench.hlx_row(SUITE, case, bench.timed(wall(lambda: session.execute(p), BATCH), repeat, _us), "µs",
                          "wall", impl=f"{bench.impl}, Session.execute")]
    torch = bench.peer("torch")
    if torch is not None:
        ta, tb = (torch.module.from_numpy(x).cuda() for x in _inputs(n))
        sync = torch.module.cuda.synchronize

        def op() -> None:
            ta.add(tb)
            sync()
        rows.append(bench.peer_row(SUITE, case, torch, bench.timed(wall(op, BATCH), repeat, _us), "µs",
                                   impl=f"{torch.impl}, op + synchronize", clock="wall"))
    return rows
