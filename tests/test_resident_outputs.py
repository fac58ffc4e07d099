"""Outputs that stay on the GPU (docs/STORE.md, "Outputs on the device"): hashed there, left there by
hlx.run, read by later runs where they are, downloaded only when read, spilled before eviction, written at
flush, exit, fork and persist=True. Each test opens sessions that hash every output on the device (the
threshold set to one byte), on Vulkan and on wgpu."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core import runtime
from hlx_core.cas.store import MemoryStore
from hlx_core.conformance.cases import CASES, check_expected

GPU = [b for b in ("vulkan", "wgpu") if b in hlx.backends()]
pytestmark = pytest.mark.skipif(not GPU, reason="no GPU backend here")
THRESHOLDS = ("HLX_VULKAN_DEVICE_HASH_BYTES", "HLX_WGPU_DEVICE_HASH_BYTES")


def _sessions_with(monkeypatch, **env: str) -> None:
    """Sessions opened from now on read ``env`` (and hash every output on the device)."""
    for name in THRESHOLDS:
        monkeypatch.setenv(name, "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.close_sessions()


@pytest.fixture(params=GPU)
def backend(request, monkeypatch):
    _sessions_with(monkeypatch)
    yield request.param
    runtime.close_sessions()  # the next test's sessions read its own settings


def _session(backend: str):
    return next(slot.session for (name, _), slot in runtime._sessions.items() if name == backend)


def _transfers(backend: str) -> dict[str, int]:
    return _session(backend).get_memory_info()["transfers"]


def _on_device(handle: str, store=None) -> bool:
    store = store if store is not None else hlx.get_default_store()
    return store.resident_spec(handle) is not None


@pytest.mark.parametrize("poison", ["1", "0"], ids=["poison", "no-poison"])
@pytest.mark.parametrize("name", GPU)
def test_every_library_kernel_hashes_on_the_device(monkeypatch, rng, name, poison):
    """Every conformance case: outputs left on the device under the handle the host's hash gives for the
    bytes they download as, and those bytes are what NumPy says."""
    _sessions_with(monkeypatch, HLX_POISON_OUTPUTS=poison)
    try:
        for case_name, make in CASES.items():
            case = make(rng)
            stored = hlx.snapshot()  # (a transpose of 1x1 gives its input: stored already)
            result = hlx.run(case.contract, backend=name, memo=False)
            for handle, spec in zip(result.outputs, case.expected):
                # an empty output is hashed on the host
                assert _on_device(handle) == (spec.size > 0 and handle not in stored), case_name
            arrays = result.arrays()
            check_expected(case, arrays, f"{name} {case_name}")
            assert [hlx.collapse(a, MemoryStore()) for a in arrays] == result.outputs, case_name
    finally:
        runtime.close_sessions()


def test_a_chain_never_touches_the_host(backend, rng):
    """Each run takes the previous output's handle: nothing is uploaded but the fixed input and the first
    one, nothing is downloaded until the result is read, and then once."""
    x, y = rng.standard_normal((2, 5000)).astype(np.float32)
    h = hlx.run(K.add(x, y), backend=backend).outputs[0]
    before = _transfers(backend)
    want = x.astype(np.float64) + y
    for _ in range(8):
        result = hlx.run(K.add(h, y), backend=backend)
        h = result.outputs[0]
        want += y
        assert _on_device(h) and _session(backend).holds(h)
    assert _transfers(backend) == before
    got = result.arrays()[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    after = _transfers(backend)
    assert after["downloads"] == before["downloads"] + 1
    assert after["download_bytes"] == before["download_bytes"] + got.nbytes
    assert result.arrays()[0] is got  # downloaded once, kept
    assert not _on_device(h) and hlx.exists(h)  # now in the store (written behind)
    np.testing.assert_array_equal(hlx.resolve(h), got)


def test_resolve_and_exists_see_device_outputs(backend, rng):
    a, b = rng.standard_normal((2, 3000)).astype(np.float32)
    h = hlx.run(K.mul(a, b), backend=backend).outputs[0]
    assert hlx.exists(h) and _on_device(h)
    np.testing.assert_array_equal(hlx.resolve(h), a * b)
    assert not _on_device(h)


def test_other_backends_read_a_device_output(backend, rng):
    """The CPU backend (and a GPU backend that does not hold it) downloads it; the result is the same."""
    a, b = rng.standard_normal((2, 777)).astype(np.float32)
    h = hlx.run(K.add(a, b), backend=backend).outputs[0]
    got = hlx.run(K.mul(h, b), backend="cpu", memo=False).arrays()[0]
    np.testing.assert_allclose(got, (a.astype(np.float64) + b) * b, rtol=1e-6, atol=1e-6)


def test_a_rerun_does_not_overwrite_a_device_output(backend, rng):
    """Recorded plans reuse their buffers: an output left on the device must not be the next run's."""
    a, b = rng.standard_normal((2, 4096)).astype(np.float32)
    first = hlx.run(K.add(a, b), backend=backend, memo=False)
    hlx.run(K.add(b, b), backend=backend, memo=False)
    second = hlx.run(K.add(a, b), backend=backend, memo=False)
    assert second.outputs == first.outputs
    np.testing.assert_array_equal(first.arrays()[0], a + b)


@pytest.mark.parametrize("name", GPU)
def test_resolve_after_eviction_and_runs_that_do_not_fit(monkeypatch, rng, name):
    """A residency of 16 KiB: earlier outputs are spilled to the store before their buffers go, and an
    output larger than the whole budget is returned from the host; every handle resolves."""
    _sessions_with(monkeypatch, HLX_VULKAN_RESIDENCY_MB=str(16 / 1024), HLX_WGPU_RESIDENT_BYTES="16384")
    try:
        b = rng.standard_normal(2048).astype(np.float32)  # 8 KiB
        wanted = {}
        for _ in range(6):
            a = rng.standard_normal(2048).astype(np.float32)
            wanted[hlx.run(K.add(a, b), backend=name).outputs[0]] = a + b
        big = rng.standard_normal(8192).astype(np.float32)  # 32 KiB: larger than the budget
        result = hlx.run(K.add(big, big), backend=name)
        wanted[result.outputs[0]] = big + big
        assert not _on_device(result.outputs[0])
        residency = _session(name).get_memory_info()["residency"]
        assert residency["bytes"] <= residency["budget"]
        assert sum(_on_device(h) for h in wanted) < len(wanted) - 1  # some were spilled
        for h, want in wanted.items():
            assert hlx.exists(h)
            np.testing.assert_array_equal(hlx.resolve(h), want)
        np.testing.assert_array_equal(result.arrays()[0], big + big)
    finally:
        runtime.close_sessions()


@pytest.mark.parametrize("poison", ["1", "0"], ids=["poison", "no-poison"])
def test_evicted_output_blocks_are_reused_by_later_outputs(monkeypatch, rng, poison):
    """Vulkan, outputs in dedicated blocks (1 MiB blocks: from 512 KiB on) and a residency of 2 MiB: a chain
    evicts earlier outputs (spilled first), their freed blocks come back as spares for the next outputs,
    and every result, read from the device or from the store, is what float64 says."""
    if "vulkan" not in GPU:
        pytest.skip("no Vulkan device")
    _sessions_with(monkeypatch, HLX_VULKAN_BLOCK_MB="1", HLX_VULKAN_RESIDENCY_MB="2", HLX_POISON_OUTPUTS=poison)
    try:
        n = 140_000  # 547 KiB per tensor
        x, y = rng.standard_normal((2, n)).astype(np.float32)
        h = hlx.run(K.add(x, y), backend="vulkan", memo=False).outputs[0]
        chain, want = [h], x.astype(np.float64) + y
        wanted = [want.copy()]
        for _ in range(5):
            h = hlx.run(K.add(h, y), backend="vulkan", memo=False).outputs[0]
            want += y
            chain.append(h)
            wanted.append(want.copy())
        memory = _session("vulkan").get_memory_info()
        assert memory["spare_hits"] > 0, memory
        assert sum(_on_device(h) for h in chain) < len(chain)  # earlier ones were evicted
        for h, expected in zip(chain, wanted):
            np.testing.assert_allclose(hlx.resolve(h), expected, rtol=1e-5, atol=1e-5)
    finally:
        runtime.close_sessions()


def test_persist_writes_through(backend, rng):
    a, b = rng.standard_normal((2, 1000)).astype(np.float32)
    result = hlx.run(K.add(a, b), backend=backend, persist=True)
    h = result.outputs[0]
    store = hlx.get_default_store()
    assert store.object_path(h).is_file() and not _on_device(h)
    assert _session(backend).holds(h)  # still on the device for the next run
    np.testing.assert_array_equal(result.arrays()[0], a + b)


def test_flush_writes_device_outputs(backend, rng):
    a, b = rng.standard_normal((2, 1000)).astype(np.float32)
    h = hlx.run(K.add(a, b), backend=backend).outputs[0]
    store = hlx.get_default_store()
    assert not store.object_path(h).exists()
    hlx.flush()
    assert store.object_path(h).is_file() and not _on_device(h)
    np.testing.assert_array_equal(hlx.resolve(h), a + b)


def test_memo_hits_on_device_outputs(backend, rng):
    a, b = rng.standard_normal((2, 1000)).astype(np.float32)
    contract = K.add(a, b)
    first = hlx.run(contract, backend=backend, memo=True)
    assert _on_device(first.outputs[0])
    second = hlx.run(contract, backend=backend, memo=True)
    assert second.memo_hit and second.outputs == first.outputs
    assert _on_device(first.outputs[0])  # the hit downloaded nothing
    np.testing.assert_array_equal(second.arrays()[0], a + b)


def test_a_closed_session_spills_its_outputs(backend, rng):
    a, b = rng.standard_normal((2, 1000)).astype(np.float32)
    h = hlx.run(K.add(a, b), backend=backend).outputs[0]
    runtime.close_sessions()
    np.testing.assert_array_equal(hlx.resolve(h), a + b)


@pytest.mark.parametrize("name", GPU)
def test_a_forked_child_resolves_device_outputs(tmp_path, name):
    """In a process of its own (garbage of this suite's closed sessions must not be collected in a child):
    run, fork, and the child resolves the output that was only on the parent's device."""
    script = textwrap.dedent(f"""
        import os, numpy as np, hlx
        from hlx import kernels as K
        a = np.arange(1000, dtype=np.float32) / 3
        h = hlx.run(K.add(a, a), backend={name!r}).outputs[0]
        assert hlx.get_default_store().resident_spec(h) is not None, "not left on the device"
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.write(write, np.ascontiguousarray(hlx.resolve(h)).tobytes())
            finally:
                os._exit(0)
        os.close(write)
        data = b""
        while chunk := os.read(read, 1 << 16):
            data += chunk
        os.waitpid(pid, 0)
        assert np.array_equal(np.frombuffer(data, np.float32), a + a), "the child read other bytes"
        assert np.array_equal(hlx.resolve(h), a + a)
        print("ok")
    """)
    env = {**os.environ, "HLX_HOME": str(tmp_path), **{v: "1" for v in THRESHOLDS}}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split()[-1:] == ["ok"], proc.stderr[-3000:]


def test_exit_writes_device_outputs(tmp_path):
    """A process that runs and exits without flushing: a second process resolves the handle from the same
    HLX_HOME."""
    env = {**os.environ, "HLX_HOME": str(tmp_path), **{name: "1" for name in THRESHOLDS}}
    first = textwrap.dedent(f"""
        import numpy as np, hlx
        from hlx import kernels as K
        a = np.arange(1000, dtype=np.float32) / 7
        h = hlx.run(K.add(a, a), backend={GPU[0]!r}).outputs[0]
        assert hlx.get_default_store().resident_spec(h) is not None, "not left on the device"
        assert not hlx.get_default_store().object_path(h).exists()
        print(h)
    """)
    proc = subprocess.run([sys.executable, "-c", first], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    handle = proc.stdout.split()[-1]
    second = f"import numpy as np, hlx; print(float(np.asarray(hlx.resolve({handle!r}), np.float64).sum()))"
    proc = subprocess.run([sys.executable, "-c", second], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert float(proc.stdout) == pytest.approx(float((np.arange(1000, dtype=np.float32) / 7 * 2).sum()))


@pytest.mark.parametrize("name", GPU)
def test_no_leak_over_a_thousand_cycles(monkeypatch, rng, name):
    """1,000 runs, each taking the previous output: residency, outputs held and device memory stay level."""
    _sessions_with(monkeypatch, HLX_RESIDENT_MAX_BUFFERS="8")
    store = MemoryStore()
    try:
        y = rng.standard_normal(256).astype(np.float32)
        h = hlx.run(K.add(y, y, store=store), backend=name, store=store).outputs[0]
        seen = []
        for i in range(1000):
            h = hlx.run(K.add(h, y, store=store), backend=name, store=store, memo=False).outputs[0]
            if i in (199, 999):
                info = _session(name).get_memory_info()
                seen.append((info["residency"]["entries"], info["resident_outputs"],
                             info.get("recorded_plans"), info.get("blocks", info.get("storage_buffers_created"))))
        assert seen[0] == seen[1], seen
        assert seen[1][0] <= 8
        np.testing.assert_allclose(hlx.resolve(h, store), y.astype(np.float64) * 1002, rtol=1e-4)
    finally:
        runtime.close_sessions()
