"""A process forked after its parent ran contracts (multiprocessing's default start method on Linux) runs
contracts on every backend, on sessions of its own, and a session it inherited refuses at once
(E_BACKEND_FORKED) instead of waiting on the parent's device. Every wait for a child is bounded, so a hang
fails the test instead of hanging it."""
from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest

import hlx
from hlx_core import runtime
from hlx_core.backend import Session
from hlx_core.errors import BackendError
from hlx_core.planner import plan as make_plan

WAIT_S = 60  # for all of a pool's work (a few device openings in each child), on a busy machine too

_inherited: dict[str, Session] = {}  # the parent's sessions, as its forked children see them


def _operands(i: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.arange(4096, dtype=np.float32) * (i + 1)
    return a, a[::-1].copy()


def _work(job: tuple[str, int]) -> tuple[str, float, np.ndarray, int]:
    """In a forked child: run on the inherited session (refused), then through hlx.run."""
    backend, i = job
    a, b = _operands(i)
    start = time.perf_counter()
    try:
        _inherited[backend].execute(make_plan(hlx.kernels.add(a, b)))
        refusal = "none"
    except BackendError as exc:
        refusal = exc.code
    refused_s = time.perf_counter() - start
    (out,) = hlx.run(hlx.kernels.add(a, b), backend=backend, persist=True, memo=False).arrays()
    return refusal, refused_s, out, os.getpid()


@pytest.mark.parametrize("backend", ["cpu", "vulkan", "wgpu"])
def test_forked_workers_run_on_sessions_of_their_own(backend):
    if backend not in hlx.backends():
        pytest.skip(f"backend {backend!r} unavailable")
    a, b = _operands(0)
    assert np.array_equal(hlx.run(hlx.kernels.add(a, b), backend=backend, memo=False).arrays()[0], a + b)
    (slot,) = {id(s): s for (name, _), s in runtime._sessions.items() if name == backend}.values()
    _inherited[backend] = slot.session
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        results = pool.map_async(_work, [(backend, i) for i in range(1, 5)]).get(timeout=WAIT_S)
    except multiprocessing.TimeoutError:
        pytest.fail(f"forked {backend} workers did not finish within {WAIT_S} s")
    finally:
        pool.terminate()
        pool.join()
    for i, (refusal, refused_s, out, pid) in enumerate(results, 1):
        a, b = _operands(i)
        assert refusal == "E_BACKEND_FORKED" and refused_s < 1
        assert np.array_equal(out, a + b) and pid != os.getpid()
    a, b = _operands(5)  # and the parent's own session is untouched
    assert np.array_equal(hlx.run(hlx.kernels.add(a, b), backend=backend, memo=False).arrays()[0], a + b)
    assert slot.session is _inherited.pop(backend) and not slot.session.closed
