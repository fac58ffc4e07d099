"""Arrays a kernel helper collapses are stored behind, from a copy HLX owns (up to BEHIND_MAX_BYTES): they
resolve at once, reach the disk on flush, keep the bytes they had when the contract was built, and a run
with ``persist=True`` leaves them durable. Small ones are kept for the planner; larger ones are written
through, as before."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import hlx
from hlx_core.cas.writer import BackgroundWriter
from hlx_core.contracts import tensors
from hlx_core.kernels import helpers
from hlx_core.kernels.build import dtype_name


def _f32(rng, n):
    return rng.standard_normal(n).astype(np.float32)


def _stall(store):
    """Hold the store's writes behind until the returned event is set (then they are written)."""
    gate = threading.Event()

    def slow_put(handle, chunks):
        gate.wait(10)
        return store._put(handle, chunks)

    store._writer = BackgroundWriter(slow_put)
    return gate


def test_a_small_input_is_stored_behind_from_its_own_copy(rng):
    store = hlx.get_default_store()  # a DiskStore at this test's own HLX_HOME
    gate = _stall(store)
    n = 8192  # 32 KiB: encoded as a view of the array's memory (a smaller one is copied by the encoder)
    a, b = _f32(rng, n), _f32(rng, n)
    want_a, want_b = a.copy(), b.copy()
    contract = hlx.kernels.add(a, b)
    x, y = contract["901"]["bindings"][:2]
    assert not store.object_path(x).exists()  # not written yet, yet it resolves
    np.testing.assert_array_equal(hlx.resolve(x, store=store), want_a)
    a[:] = rng.standard_normal(n)  # the caller's array changes before the write: the stored bytes do not
    b *= 3
    gate.set()
    hlx.flush(store)
    assert store.get(x) == hlx.encode(want_a) and store.get(y) == hlx.encode(want_b)
    out = hlx.run(contract, backend="cpu").arrays()[0]
    np.testing.assert_array_equal(out, want_a + want_b)


def test_persist_leaves_the_inputs_durable(rng):
    store = hlx.get_default_store()
    gate = _stall(store)  # writes behind stay pending until the end of the test
    a = _f32(rng, 64)
    contract = hlx.kernels.relu(a)
    x = contract["901"]["bindings"][0]
    assert not store.object_path(x).exists()
    result = hlx.run(contract, backend="cpu", persist=True, memo=False)  # (a memo hit would flush it all)
    assert store.object_path(x).is_file() and store.object_path(result.outputs[0]).is_file()
    assert store.get(x) == hlx.encode(a)
    again = hlx.kernels.relu(_f32(rng, 64))  # planned before with persist=False, then run with persist=True
    hlx.run(again, backend="cpu", memo=False)
    assert not store.object_path(again["901"]["bindings"][0]).exists()
    hlx.run(again, backend="cpu", persist=True, memo=False)
    assert store.object_path(again["901"]["bindings"][0]).is_file()
    gate.set()


def test_a_mid_size_input_is_stored_behind_and_not_kept(rng):
    store = hlx.get_default_store()
    gate = _stall(store)
    a = _f32(rng, 32768)  # 128 KiB: a file mapping when read back, so the tensor cache keeps no copy
    want = a.copy()
    contract = hlx.kernels.relu(a)
    x = contract["901"]["bindings"][0]
    assert not store.object_path(x).exists() and tensors.kept_tensor(x, store) is None
    a[:] = 0
    np.testing.assert_array_equal(hlx.run(contract, backend="cpu", memo=False).arrays()[0], np.maximum(want, 0))
    gate.set()
    hlx.flush(store)
    assert bytes(store.get(x)) == hlx.encode(want)


def test_a_large_input_is_written_through(rng):
    store = hlx.get_default_store()
    gate = _stall(store)
    big = _f32(rng, helpers.BEHIND_MAX_BYTES // 4 + 1)
    contract = hlx.kernels.relu(big)
    assert store.object_path(contract["901"]["bindings"][0]).is_file()
    gate.set()


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "float16", "int32", "<u4", np.float32, np.dtype("i8")])
def test_dtype_names_are_numpys(dtype):
    assert dtype_name(np.dtype(dtype)) == dtype_name(np.dtype(dtype)) == np.dtype(dtype).name
    assert dtype_name(dtype) == np.dtype(dtype).name
