"""Outputs written behind the run: they resolve at once, reach the disk on flush and at exit, never partly."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import hlx
from hlx_core.cas.writer import BackgroundWriter


def _f32(rng, n):
    return rng.standard_normal(n).astype(np.float32)


def _objects(store: hlx.DiskStore) -> set[str]:
    return {p.name for p in store.objects.rglob("*") if p.is_file()}


def test_run_output_resolves_before_and_after_it_is_written(rng):
    store = hlx.get_default_store()  # a DiskStore at this test's own HLX_HOME
    a, b = _f32(rng, 300), _f32(rng, 300)
    contract = hlx.kernels.add(a, b)
    hlx.flush(store)  # its inputs (stored behind by the helper) written before the writer is replaced
    gate = threading.Event()

    def slow_put(handle, chunks):  # hold the writer until the checks below have run
        gate.wait(10)
        return store._put(handle, chunks)

    store._writer = BackgroundWriter(slow_put)
    result = hlx.run(contract, backend="cpu")
    (out,) = result.outputs
    assert not store.object_path(out).exists()  # not written yet
    assert hlx.exists(out, store=store)
    np.testing.assert_array_equal(hlx.resolve(out, store=store), a + b)
    gate.set()
    hlx.flush(store)
    assert store.object_path(out).is_file()
    assert store.get(out) == hlx.encode(a + b)


def test_persist_writes_through(rng):
    store = hlx.get_default_store()
    gate = threading.Event()
    store._writer = BackgroundWriter(lambda handle, chunks: gate.wait(10))  # writes behind would stall here
    a = _f32(rng, 64)
    result = hlx.run(hlx.kernels.relu(a), backend="cpu", persist=True)
    assert store.object_path(result.outputs[0]).is_file()
    np.testing.assert_array_equal(hlx.resolve(result.outputs[0]), np.maximum(a, 0))
    gate.set()


def test_flush_without_store_flushes_every_store(tmp_path, rng):
    stores = [hlx.DiskStore(tmp_path / str(i)) for i in range(2)]
    handles = [hlx.collapse(_f32(rng, 100), store=s, behind=True) for s in stores]
    hlx.flush()
    assert all(s.object_path(h).is_file() for s, h in zip(stores, handles))


def test_listings_and_discard_see_pending_objects(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    h = hlx.collapse(_f32(rng, 100), store=store, behind=True)
    assert h in store.snapshot()  # a listing waits for the writes
    assert store.discard(h) and not hlx.exists(h, store=store)
    h2 = hlx.collapse(_f32(rng, 5), store=store, behind=True)
    assert store.stats()["objects"] == 1 and h2 in store.snapshot()


def test_a_removed_object_is_written_again(tmp_path, rng):
    """Collapsing an object again within the touch interval skips the disk, unless it was removed here."""
    store = hlx.DiskStore(tmp_path)
    a = _f32(rng, 50)
    h = hlx.collapse(a, store=store)
    assert store.discard(h)
    assert hlx.collapse(a, store=store) == h and store.object_path(h).is_file()
    store.clear()
    hlx.collapse(a, store=store, behind=True)
    hlx.flush(store)
    assert store.object_path(h).is_file()


def test_transactions_write_through_and_roll_back(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with hlx.transaction(store) as record:
            h = hlx.collapse(_f32(rng, 30), store=store, behind=True)
            assert record.created == [h] and store.object_path(h).is_file()
            1 / 0  # noqa: B018
    assert not hlx.exists(h, store=store)


class _FullDisk(hlx.DiskStore):
    full = True

    def _put(self, handle, chunks):
        if self.full:
            raise OSError(28, "No space left on device")
        return super()._put(handle, chunks)


def test_a_failed_write_is_reported_kept_and_retried(tmp_path, rng):
    store = _FullDisk(tmp_path)
    a = _f32(rng, 40)
    h = hlx.collapse(a, store=store, behind=True)
    with pytest.raises(hlx.HandleError) as err:
        hlx.flush(store)
    assert err.value.code == "E_STORE" and "No space left" in err.value.message
    np.testing.assert_array_equal(hlx.resolve(h, store=store), a)  # kept in memory, nothing lost
    store.full = False  # space again: the writer retries
    hlx.flush(store)
    assert store.object_path(h).is_file()


def test_pending_bytes_are_bounded():
    written = []
    gate = threading.Event()

    def write(handle, chunks):
        gate.wait(10)
        written.append(handle)
        return True

    writer = BackgroundWriter(write, max_pending_bytes=1000)
    first = [hlx.Handle.from_digest("blob", bytes([i]) * 32) for i in range(2)]
    writer.submit(first[0], [b"x" * 800])
    done = threading.Event()
    threading.Thread(target=lambda: (writer.submit(first[1], [b"y" * 800]), done.set()), daemon=True).start()
    assert not done.wait(0.3)  # the second object waits: 1600 pending bytes would exceed the bound
    gate.set()
    assert done.wait(10)
    writer.flush()
    assert written == first


_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    import hlx
    a = np.arange(1 << 16, dtype=np.float32)
    h = hlx.run(hlx.kernels.relu(a), backend="cpu").outputs[0]
    print(h, flush=True)
    if sys.argv[1] == "kill":
        os._exit(0)
""")


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_exit_flushes_and_a_killed_process_leaves_no_partial_object(tmp_path, how):
    env = {**os.environ, "HLX_PLUGINS": "cpu", "HLX_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, how], capture_output=True, text=True,
                          env=env, timeout=120, check=True)
    handle = proc.stdout.split()[-1]
    store = hlx.DiskStore(tmp_path)
    if how == "exit":
        assert not [n for n in _objects(store) if n.startswith(".tmp-")]
        assert store.object_path(hlx.Handle(handle)).is_file()
        np.testing.assert_array_equal(hlx.resolve(handle, store=store), np.arange(1 << 16, dtype=np.float32))
    else:
        # Whatever reached the disk is whole: every object file verifies against its name.
        for h in store.handles():
            store.get(h)


def test_pending_objects_are_bounded():
    gate = threading.Event()
    writer = BackgroundWriter(lambda handle, chunks: gate.wait(10), max_pending_objects=3)
    handles = [hlx.Handle.from_digest("blob", bytes([i]) * 32) for i in range(4)]
    for h in handles[:3]:
        writer.submit(h, [b"x"])
    done = threading.Event()
    threading.Thread(target=lambda: (writer.submit(handles[3], [b"y"]), done.set()), daemon=True).start()
    assert not done.wait(0.3)  # a fourth tiny object waits for the writer
    gate.set()
    assert done.wait(10)
    writer.flush()


def _worker_run(seed: int) -> str:
    rng = np.random.default_rng(seed)
    return str(hlx.run(hlx.kernels.relu(_f32(rng, 64)), backend="cpu").outputs[0])


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_workers_write_through(method):
    """A pool's workers are ended with a signal (no exit hooks): what they store must be on disk already."""
    import multiprocessing
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        handles = pool.map_async(_worker_run, range(6)).get(timeout=120)
    store = hlx.get_default_store()
    assert all(store.object_path(hlx.Handle(h)).is_file() for h in handles)
