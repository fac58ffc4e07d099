"""A run that outlives its backend's timeout (HLX_VULKAN_TIMEOUT_S, HLX_WGPU_TIMEOUT_S) fails with E_TIMEOUT
and leaves the backend usable: hlx.run runs the next contract on a new session while the old one waits for
its work and then closes, and a session used directly waits for the run that timed out before its next one.
The long run is a shader of busy loops (tests/vulkan/shaders/spin.comp) sized here to keep lavapipe busy
for well over the timeout, and short enough that the test stays quick."""
from __future__ import annotations

import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _shaders import glsl
from plugin_fakes import FakeBackend, FakePlugin, plugins  # noqa: F401 (fixture)

import hlx
from hlx_core import registry, runtime
from hlx_core.backend import Session
from hlx_core.errors import BackendError
from hlx_core.planner import plan as make_plan

SHADER = Path(__file__).parent / "vulkan" / "shaders" / "spin.comp"
SETTINGS = {"vulkan": "HLX_VULKAN_TIMEOUT_S", "wgpu": "HLX_WGPU_TIMEOUT_S"}
TIMEOUT_S = 0.03
BUSY_S = 0.4  # how long the run that times out keeps the device busy
STEPS = 65535  # loop iterations per workgroup (llvmpipe's most for one loop)


@pytest.fixture(scope="module")
def spin() -> bytes:
    return glsl(SHADER)


@pytest.fixture(params=sorted(SETTINGS))
def backend(request) -> str:
    if request.param not in hlx.backends():
        pytest.skip(f"backend {request.param!r} unavailable")
    return request.param


def _spin(spirv: bytes, groups: int) -> dict:
    return {"901": {"kernel_name": "spin", "shader_handle": hlx.shader_contract(spirv), "dispatch": [groups, 1, 1],
                    "bindings": [{"output": {"dtype": "uint32", "shape": [groups]}}],
                    "push_constants": struct.pack("<I", STEPS)}}


def _busy_groups(backend: str, spirv: bytes) -> int:
    """Workgroups of the spin shader that keep this device busy for at least about BUSY_S, measured now (the
    fastest of three runs: a busier machine only makes the run longer)."""
    hlx.run(_spin(spirv, 16), backend=backend)  # the pipeline, built
    times = []
    for _ in range(3):
        start = time.perf_counter()
        hlx.run(_spin(spirv, 256), backend=backend)
        times.append(time.perf_counter() - start)
    return max(256, min(65535, int(BUSY_S / (min(times) / 256))))


def _cached_session(backend: str) -> Session:
    (slot,) = {id(s): s for (name, _), s in runtime._sessions.items() if name == backend}.values()
    return slot.session


def _wait_closed(session: Session, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not session.closed:
        assert time.monotonic() < deadline, f"the broken {session.backend} session was not closed"
        time.sleep(0.02)


def test_hlx_run_replaces_the_session_of_a_timed_out_run(backend, spin, monkeypatch):
    groups = _busy_groups(backend, spin)
    monkeypatch.setenv(SETTINGS[backend], str(TIMEOUT_S))
    runtime.close_sessions()  # the next session reads the short timeout
    start = time.perf_counter()
    with pytest.raises(BackendError) as err:
        hlx.run(_spin(spin, groups), backend=backend)
    assert time.perf_counter() - start < BUSY_S / 2 + 5  # it gave up (opening the device included)
    assert err.value.code == "E_TIMEOUT" and SETTINGS[backend] in err.value.message
    stuck = _cached_session(backend)
    assert stuck.broken and not stuck.closed
    monkeypatch.delenv(SETTINGS[backend])
    a = np.arange(4096, dtype=np.float32)
    result = hlx.run(hlx.kernels.add(a, a + 1), backend=backend, memo=False)  # the next ordinary run
    assert result.backend == backend and np.array_equal(result.arrays()[0], a + a + 1)
    assert _cached_session(backend) is not stuck and not _cached_session(backend).broken
    _wait_closed(stuck)  # once its run has finished


def test_a_session_waits_for_its_timed_out_run(backend, spin, monkeypatch):
    """Run directly, the broken session waits for the earlier run first: E_TIMEOUT again while it is still
    on the device (it may be hung), then, given the time, the run after it succeeds and the session is whole."""
    groups = _busy_groups(backend, spin)
    monkeypatch.setenv(SETTINGS[backend], str(TIMEOUT_S))
    session = registry.backend_entries()[backend].backend.open()
    try:
        with pytest.raises(BackendError) as err:
            session.execute(make_plan(_spin(spin, groups)))
        assert err.value.code == "E_TIMEOUT" and session.broken
        a = np.arange(1000, dtype=np.float32)
        add = make_plan(hlx.kernels.add(a, a))
        with pytest.raises(BackendError) as err:
            session.execute(add)
        assert err.value.code == "E_TIMEOUT" and session.broken
        if backend == "vulkan":
            session.core.submitter.timeout_ns = 120 * 10**9
        else:
            session.core.readback.timeout_s = 120.0
        assert np.array_equal(session.execute(add).arrays[0], a + a)
        assert not session.broken
        assert np.array_equal(session.execute(add).arrays[0], a + a)
    finally:
        session.close()


def test_the_runtime_closes_a_broken_session_without_waiting_for_it(plugins, rng):
    """Closing a broken session waits for its device; the runtime does it on a thread of its own."""
    plugins("")
    fake = FakeBackend("fake")
    registry.register_plugin(FakePlugin(fake), name="fakes", distribution="fake-dist")
    x = rng.standard_normal(16).astype(np.float32)
    hlx.run(hlx.kernels.relu(x), backend="fake")
    (old,) = fake.sessions
    release = threading.Event()
    closing = old.close
    old.close = lambda: (release.wait(30), closing())
    old.broken = True
    (out,) = hlx.run(hlx.kernels.relu(x), backend="fake").arrays()  # returns while the old one is closing
    assert np.array_equal(out, np.maximum(x, 0)) and len(fake.sessions) == 2 and not old.closed
    assert _cached_session("fake") is fake.sessions[1]
    release.set()
    _wait_closed(old)
    hlx.run(hlx.kernels.relu(x), backend="fake")
    assert len(fake.sessions) == 2 and fake.executions == 3
