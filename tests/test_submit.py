"""hlx.submit returns a Future of the Result; hlx.run and submit are safe from many threads at once."""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.errors import BackendError

THREADS = 8


def test_submit_returns_a_future_of_the_result(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    future = hlx.submit(K.relu(x), backend="vulkan")
    assert isinstance(future, Future)
    result = future.result(timeout=60)
    assert isinstance(result, hlx.Result) and result.backend == "vulkan"
    np.testing.assert_array_equal(np.asarray(result), np.maximum(x, 0))
    assert result.outputs == hlx.run(K.relu(x), backend="vulkan").outputs


def test_a_failed_run_raises_from_its_future(rng):
    future = hlx.submit(K.relu(np.zeros(4, np.float32)), backend="no-such-backend")
    with pytest.raises(BackendError) as exc:
        future.result(timeout=60)
    assert exc.value.code == "E_BACKEND_UNKNOWN"


@pytest.mark.parametrize("backend", ["vulkan", "cpu"])
def test_many_threads_run_and_submit_at_once(backend, rng):
    """8 threads, each running and submitting its own contracts on one device: every result is right."""
    inputs = [(rng.standard_normal((32, 48)).astype(np.float32), rng.standard_normal((48, 16)).astype(np.float32))
              for _ in range(THREADS * 3)]
    start = threading.Barrier(THREADS)

    def work(t: int) -> list[tuple[int, hlx.Result]]:
        start.wait()
        mine = range(t * 3, t * 3 + 3)
        # submitted runs skip the memo, so they run on the device; plain runs use it where another has run
        futures = [(i, hlx.submit(K.gemm(*inputs[i]), backend=backend, memo=False)) for i in mine]
        ran = [(i, hlx.run(K.gemm(*inputs[i]), backend=backend)) for i in mine]
        return ran + [(i, f.result(timeout=120)) for i, f in futures]

    with ThreadPoolExecutor(THREADS) as pool:
        done = [r for rs in pool.map(work, range(THREADS)) for r in rs]
    assert len(done) == THREADS * 6
    by_input: dict[int, set[str]] = {}
    for i, result in done:
        a, b = inputs[i]
        np.testing.assert_allclose(np.asarray(result), a @ b, rtol=1e-4, atol=1e-4)
        by_input.setdefault(i, set()).add(result.outputs[0])
    assert all(len(handles) == 1 for handles in by_input.values())  # deterministic under contention too


def test_a_wait_lets_other_threads_run(rng):
    """The caller's thread keeps running while submitted runs are in flight (the waits release the GIL)."""
    x = rng.standard_normal((256, 256)).astype(np.float32)
    futures = [hlx.submit(K.gemm(x, x), backend="vulkan", memo=False) for _ in range(4)]
    ticks = 0
    while not all(f.done() for f in futures):
        ticks += 1
    assert ticks > 0
    for f in futures:
        np.testing.assert_allclose(np.asarray(f.result()), x @ x, rtol=1e-4, atol=1e-3)
