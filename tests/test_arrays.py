"""Arrays in and out: helpers take anything NumPy can view (without a copy where the layout allows), and a
one-output Result is an array to NumPy (``np.asarray``) and to DLPack consumers."""
from __future__ import annotations

import array

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.arrays import as_host_array
from hlx_core.errors import ContractError, HLXError


class Producer:
    """A DLPack producer that is not an ndarray (as a torch or JAX CPU tensor would be)."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def __dlpack__(self, **kwargs):
        return self.data.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()


class HasArray:
    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def __array__(self, dtype=None, copy=None):
        return self.data


def test_views_share_memory_with_their_source():
    data = np.arange(12, dtype=np.float32)
    for value in (memoryview(data), Producer(data), HasArray(data), data):
        view = as_host_array(value, "x")
        assert view.dtype == np.float32 and np.shares_memory(view, data), type(value)
    floats = array.array("f", [1.0, 2.0])
    assert as_host_array(floats, "x").dtype == np.float32
    assert as_host_array(b"\x01\x02", "x").dtype == np.uint8


def test_lists_take_the_32_bit_dtypes():
    assert as_host_array([1.5, 2.0], "x").dtype == np.float32
    assert as_host_array([[1, 2], [3, 4]], "x").dtype == np.int32
    assert as_host_array([2**40], "x").dtype == np.int64  # does not fit int32: the kernel's dtype check names it


@pytest.mark.parametrize("value", [None, {"a": 1}, "text", ["a", "b"], [object()], [[1, 2], [3]]])
def test_what_numpy_cannot_view_as_numbers_is_refused(value):
    with pytest.raises(ContractError) as exc:
        as_host_array(value, "add: a")
    assert exc.value.code == "E_CONTRACT_FIELD_TYPE" and "add: a" in exc.value.message


def test_a_dlpack_producer_numpy_cannot_read_is_refused():
    class OnDevice:
        def __dlpack__(self, **kwargs):
            raise BufferError("the data lives on a GPU")

        def __dlpack_device__(self):
            return (2, 0)
    with pytest.raises(ContractError, match="DLPack") as exc:
        as_host_array(OnDevice(), "relu: x")
    assert exc.value.code == "E_CONTRACT_FIELD_TYPE"


@pytest.mark.parametrize("wrap", [list, memoryview, Producer, HasArray, lambda a: a.tolist()],
                         ids=["list", "memoryview", "dlpack", "__array__", "nested"])
def test_helpers_take_array_likes_with_the_same_handles(wrap, rng):
    a = rng.standard_normal((4, 8)).astype(np.float32)
    b = rng.standard_normal((4, 8)).astype(np.float32)
    if wrap is list:
        a_in, b_in = [row for row in a], [row for row in b]  # a list of arrays
    else:
        a_in, b_in = wrap(a), wrap(b)
    assert K.add(a_in, b_in) == K.add(a, b)  # the same contract, so the same handles, as from ndarrays
    result = hlx.run(K.add(a_in, b_in), backend="cpu")
    np.testing.assert_array_equal(np.asarray(result), a + b)


def test_a_list_runs_on_vulkan():
    result = hlx.run(K.relu([-1.0, 2.0, -3.0, 4.0]), backend="vulkan")
    np.testing.assert_array_equal(np.asarray(result), np.float32([0, 2, 0, 4]))


def test_result_array_and_dlpack(rng):
    x = rng.standard_normal(64).astype(np.float32)
    result = hlx.run(K.relu(x), backend="cpu")
    out = result.arrays()[0]
    assert np.asarray(result) is out and not np.asarray(result).flags.writeable
    copied = np.array(result)  # copy=True: a writable copy
    assert copied.flags.writeable and not np.shares_memory(copied, out)
    np.testing.assert_array_equal(np.asarray(result, dtype=np.float64), out.astype(np.float64))
    exported = np.from_dlpack(result)
    assert np.shares_memory(exported, out) and not exported.flags.writeable
    assert result.__dlpack_device__() == out.__dlpack_device__()
    np.testing.assert_array_equal(exported, np.maximum(x, 0))


def test_result_from_the_memo_is_an_array_too(rng):
    x = rng.standard_normal(16).astype(np.float32)
    hlx.run(K.relu(x), backend="cpu", memo=True)
    again = hlx.run(K.relu(x), backend="cpu", memo=True)
    assert again.memo_hit
    np.testing.assert_array_equal(np.asarray(again), np.maximum(x, 0))


def test_several_outputs_are_not_one_array(rng):
    x = rng.standard_normal((4, 4)).astype(np.float32)
    step = K.pipeline([K.relu(x), K.transpose(K.stage(0))], outputs=[K.stage(0), K.stage(1)])
    result = hlx.run(step, backend="cpu")
    for call in (np.asarray, np.from_dlpack):
        with pytest.raises(HLXError) as exc:
            call(result)
        assert exc.value.code == "E_RESULT_OUTPUTS"
