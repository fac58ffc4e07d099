"""batch: the variable-batch case, a 3-stage MLP 902 (gemm, relu, gemm) at batch 1, 2, 4 ... 128.

For each batch size a new input makes a new contract (new input handle, new output shapes, the same
shaders): its first ``hlx.run`` (one sample) and later runs of the same contract (inputs resident, the
output on the host), wall time in ms. The peer is torch eager on CUDA (TF32 off): its first call at the new
size (input from the host, output ``.cpu()``) and warm calls, each ending in ``.cpu()``, timed by CUDA
events. Sizes are batch sizes; the layers are 1024 -> 1024 -> 256 (quick: 256 -> 256 -> 64).
benchmarks/bench_batch.py prints the same with the build and execute shares.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from hlx_core import runtime
from hlx_core.bench.harness import Bench, Case, check_close
from hlx_core.bench.peers import events
from hlx_core.bench.report import Row
from hlx_core.bench.timing import Stats, wall
from hlx_core.cas.api import collapse
from hlx_core.codec.handle import Handle
from hlx_core.kernels.helpers import gemm, pipeline, relu, stage

SUITE = "batch"
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
# First runs that open the session and build the pipelines of both GEMM shaders (gemm_skinny up to 64 rows,
# gemm above); not sizes measured
WARMUP_BATCHES = (3, 100)
RTOL = 1e-4  # of the largest |value|: float32 sums in another order
LAYERS = {False: (1024, 1024, 256), True: (256, 256, 64)}


def mlp(x: Any, w1: Handle, w2: Handle, store: Any = None) -> dict:
    """The 902: relu(x @ w1) @ w2 with the weights given as handles (stored once in ``store``)."""
    return pipeline([gemm(x, w1, store=store), relu(stage(0), store=store), gemm(stage(1), w2, store=store)],
                    store=store)


def weights(layers: tuple[int, int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """w1 [d_in, hidden] and w2 [hidden, d_out], scaled so activations stay near 1."""
    d_in, hidden, d_out = layers
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((d_in, hidden), dtype=np.float32) / np.float32(np.sqrt(d_in))
    w2 = rng.standard_normal((hidden, d_out), dtype=np.float32) / np.float32(np.sqrt(hidden))
    return w1, w2


def check(got: np.ndarray, x: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> None:
    """E_BENCH unless ``got`` is the MLP of ``x`` within RTOL of float64's."""
    check_close(f"MLP at batch {x.shape[0]}", got, np.maximum(x.astype(np.float64) @ w1, 0) @ w2, RTOL)


def cases(bench: Bench) -> list[Case]:
    batches = bench.sizes(BATCHES, (1, 8, 64))
    state: dict[str, Any] = {}
    return [Case(SUITE, f"batch {b}", lambda b=b: measure(bench, b, state)) for b in batches]


def _setup(bench: Bench, state: dict[str, Any]) -> dict[str, Any]:
    """Weights stored once and first runs at WARMUP_BATCHES, shared by every batch size of the run."""
    if not state:
        layers = LAYERS[bench.options.quick]
        w1, w2 = weights(layers)
        state.update(layers=layers, w1=w1, w2=w2, h1=collapse(w1, bench.store), h2=collapse(w2, bench.store),
                     rng=np.random.default_rng(1))
        xs = [state["rng"].standard_normal((b, layers[0]), dtype=np.float32) for b in WARMUP_BATCHES]
        for x in xs:
            run(bench, mlp(x, state["h1"], state["h2"], bench.store))
        torch = bench.peer("torch")
        if torch is not None:
            t = torch.module
            t1, t2 = t.from_numpy(w1).cuda(), t.from_numpy(w2).cuda()
            state["torch"] = lambda xd: t.relu(xd @ t1) @ t2
            for x in xs:
                state["torch"](t.from_numpy(x).cuda()).cpu()
    return state


def run(bench: Bench, contract: dict) -> np.ndarray:
    return runtime.run(contract, backend=bench.backend, device=bench.options.device, store=bench.store,
                       memo=False).arrays()[0]


def measure(bench: Bench, batch: int, state: dict[str, Any]) -> list[Row]:
    s = _setup(bench, state)
    repeat = bench.repeat(50, 5)
    x = s["rng"].standard_normal((batch, s["layers"][0]), dtype=np.float32)
    contract = mlp(x, s["h1"], s["h2"], bench.store)
    t0 = time.perf_counter()
    got = run(bench, contract)
    first = time.perf_counter() - t0
    check(got, x, s["w1"], s["w2"])
    ms = 1e3
    rows = [bench.hlx_row(SUITE, f"batch {batch}, first run", Stats.of([first * ms]), "ms", "wall"),
            bench.hlx_row(SUITE, f"batch {batch}, warm run",
                          bench.timed(wall(lambda: run(bench, contract)), repeat, lambda v: v * ms), "ms", "wall")]
    torch = bench.peer("torch")
    if torch is not None:
        t, layers = torch.module, s["torch"]
        t.cuda.synchronize()
        t0 = time.perf_counter()
        layers(t.from_numpy(x).cuda()).cpu()
        rows.append(bench.peer_row(SUITE, f"batch {batch}, first run", torch,
                                   Stats.of([(time.perf_counter() - t0) * ms]), "ms", clock="wall"))
        xd = t.from_numpy(x).cuda()
        warm = bench.timed(events(t, lambda: layers(xd).cpu(), 1), repeat, lambda v: v * ms)
        rows.append(bench.peer_row(SUITE, f"batch {batch}, warm run", torch, warm, "ms"))
    return rows
