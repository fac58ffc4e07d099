"""wgpu and the raw Vulkan backend run the same library SPIR-V on the same device; for exact kernels
(integer and float32 elementwise add/mul, transpose, fixed-order reduce_sum) their results are equal bit for
bit, and equal to NumPy where NumPy computes the same thing; so are softmax's, whose order of operations is
fixed too."""
from __future__ import annotations

import numpy as np
import pytest

import hlx
from hlx import kernels as K


def _f32(rng, *shape):
    return (rng.standard_normal(shape) * 100).astype(np.float32)


def _i32(rng, *shape):
    return rng.integers(-2**31, 2**31 - 1, size=shape, dtype=np.int32, endpoint=True)


def _binary(op, make):
    def case(rng):
        a, b = make(rng, 4099), make(rng, 4099)
        return getattr(K, op)(a, b), getattr(np, op if op == "add" else "multiply")(a, b)
    return case


def _transpose(rng):
    x = _f32(rng, 67, 129)
    return K.transpose(x), x.T


CASES = {
    "add-int32": _binary("add", _i32), "mul-int32": _binary("mul", _i32),
    "add-float32": _binary("add", _f32), "mul-float32": _binary("mul", _f32),
    "transpose-float32": _transpose,
    # fixed-order trees: no NumPy equivalent, but both backends must agree
    "reduce_sum-float32": lambda rng: (K.reduce_sum(_f32(rng, 100_003)), None),
    "reduce_sum-int32": lambda rng: (K.reduce_sum(rng.integers(-1000, 1000, 5000, dtype=np.int32)), None),
    # softmax: a fixed butterfly per row whatever the subgroup size; 2-lane, 32-lane and streamed rows
    **{f"softmax-{r}x{c}": (lambda rng, r=r, c=c: (K.softmax(_f32(rng, r, c) / 25), None))
       for r, c in ((300, 33), (9, 1024), (3, 8193))},
}


@pytest.fixture(scope="module")
def both_backends():
    available = hlx.backends()
    for name in ("wgpu", "vulkan"):
        if name not in available:
            info = {i["name"]: i for i in hlx.backend_info()}.get(name, {})
            pytest.skip(f"backend {name!r} unavailable: {info.get('reason', 'not registered')}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_bitwise_equal(both_backends, rng, case):
    contract, expected = CASES[case](rng)
    w = hlx.run(contract, backend="wgpu")
    v = hlx.run(contract, backend="vulkan")
    if w.device != v.device:
        pytest.skip(f"different devices: wgpu on {w.device!r}, vulkan on {v.device!r}")
    for x, y in zip(w.arrays(), v.arrays(), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), f"{case}: wgpu and vulkan differ on {w.device}"
    assert w.outputs == v.outputs  # the same bytes, so the same content addresses
    if expected is not None:
        np.testing.assert_array_equal(w.arrays()[0], expected)
