"""The seeds' API: VulkanContext, Buffer, Kernel; every misuse is an HLXError with a code."""
from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from hlx_core.errors import HLXError, SpirvError


def _code(fn, *args, **kwargs) -> str:
    with pytest.raises(HLXError) as err:
        fn(*args, **kwargs)
    return err.value.code


def test_context_properties(ctx):
    assert "llvmpipe" in ctx.device_name or ctx.device_name
    assert re.fullmatch(r"\d+\.\d+\.\d+", ctx.api_version)
    info = ctx.get_memory_info()
    assert info["heaps"] and all(h["size"] > 0 for h in info["heaps"])
    assert {"blocks", "allocated_bytes", "used_bytes", "buffers", "zero_copy"} <= set(info)


def test_shader_cache_by_content(ctx, spirv):
    ctx.clear_cache()
    a = ctx.load_shader(spirv["saxpy"])
    assert ctx.load_shader(bytes(spirv["saxpy"])) == a and ctx.is_shader_cached(a)
    b = ctx.load_shader(spirv["add_u32"])
    assert b != a and ctx.cache_size() == 2
    ctx.clear_cache()
    assert ctx.cache_size() == 0 and not ctx.is_shader_cached(a)


@pytest.mark.parametrize("bad", [b"", b"\x03\x02\x23\x07" * 3, b"garbage!" * 8, "not bytes"])
def test_bad_spirv(ctx, spirv, bad):
    with pytest.raises(SpirvError) as err:
        ctx.load_shader(bad)
    assert err.value.code == "E_SPIRV_INVALID"
    with pytest.raises(SpirvError):
        ctx.load_shader(spirv["saxpy"], entry_point="nope")


def test_truncated_spirv_never_reaches_the_driver(ctx, spirv):
    data = spirv["saxpy"]
    assert _code(ctx.load_shader, data[: len(data) // 2 // 4 * 4]) == "E_SPIRV_INVALID"


def test_kernel_launch_with_spec_local_size(ctx, spirv, rng):
    n = 1000
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    bx, by, bo = ctx.buffer(x.nbytes), ctx.buffer(y.nbytes), ctx.buffer(x.nbytes)
    bx.upload(x)
    by.upload(y.tobytes())
    bo.upload(np.full(n, np.nan, dtype=np.float32))  # poison
    k = ctx.kernel(spirv["saxpy"])
    for width in (None, (32, 1, 1), (256,)):
        k.launch([bx, by, bo], global_size=n, local_size=width, push_constants=struct.pack("<If", n, -0.75))
        ctx.sync()
        got = np.frombuffer(bo.download(), np.float32)
        np.testing.assert_allclose(got, -0.75 * x.astype(np.float64) + y, rtol=1e-6, atol=1e-6)
        bo.upload(np.full(n, np.nan, dtype=np.float32))
    for b in (bx, by, bo):
        b.free()
    k.release()


def test_many_async_launches_then_sync(ctx, spirv, rng):
    a = rng.integers(0, 1000, 256, dtype=np.uint32)
    ba, bb = ctx.buffer(a.nbytes), ctx.buffer(a.nbytes)
    ba.upload(a)
    bb.upload(np.zeros_like(a))
    k = ctx.kernel(spirv["add_u32"])
    for _ in range(10):  # bb = ba + bb, ten times, each launch ordered after the previous
        k.launch([ba, bb, bb], global_size=a.size, push_constants=struct.pack("<I", a.size))
    np.testing.assert_array_equal(np.frombuffer(bb.download(), np.uint32), a * 10)
    ba.free()
    bb.free()


def test_buffer_and_kernel_misuse(ctx, spirv):
    assert _code(ctx.buffer, 0) == "E_VK_BUFFER_SIZE"
    assert _code(ctx.buffer, -5) == "E_VK_BUFFER_SIZE"
    assert _code(ctx.buffer, 1.5) == "E_VK_BUFFER_SIZE"
    b = ctx.buffer(16)
    assert _code(b.upload, b"x" * 17) == "E_VK_BUFFER_SIZE"
    assert _code(b.upload, object()) == "E_VK_BUFFER_DATA"
    k = ctx.kernel(spirv["add_u32"])
    assert _code(k.launch, [b, b], global_size=4) == "E_VK_BINDINGS"
    assert _code(k.launch, [b, b, "x"], global_size=4) == "E_VK_BINDINGS"
    assert _code(k.launch, [b, b, b], global_size=0) == "E_VK_DISPATCH"
    assert _code(k.launch, [b, b, b], global_size=4, push_constants=b"\0" * 8) == "E_VK_PUSH_CONSTANTS"
    assert _code(k.launch, [b, b, b], global_size=4, local_size=(8, 1, 1)) == "E_VK_WORKGROUP"
    assert _code(k.launch, [b, b, b], global_size=(1 << 30, 1, 1)) == "E_LIMIT_EXCEEDED"
    wide = ctx.kernel(spirv["saxpy"])  # local_size_x_id: any width specializes, but not past the device's
    assert _code(wide.launch, [b, b, b], global_size=4, local_size=(1 << 16,)) == "E_LIMIT_EXCEEDED"
    wide.release()
    b.free()
    b.free()  # idempotent
    assert _code(b.upload, b"x") == "E_VK_BUFFER_FREED"
    assert _code(b.download) == "E_VK_BUFFER_FREED"
    c = ctx.buffer(16)
    assert _code(k.launch, [c, c, b], global_size=4) == "E_VK_BUFFER_FREED"
    c.free()


def test_out_of_memory_keeps_context_usable(ctx):
    assert _code(ctx.buffer, 1 << 44) == "E_DEVICE_OOM"
    b = ctx.buffer(64)
    b.upload(bytes(range(64)))
    assert b.download() == bytes(range(64))
    b.free()


def test_closed_context(spirv):
    from hlx_vulkan_raw import VulkanContext
    with VulkanContext() as c:
        b = c.buffer(8)
        k = c.kernel(spirv["add_u32"])
    c.cleanup()  # idempotent
    assert c.closed
    for call in (lambda: c.buffer(8), lambda: c.load_shader(spirv["add_u32"]), c.sync, c.get_memory_info,
                 lambda: b.upload(b"1"), b.download, lambda: k.launch([b, b, b], global_size=1)):
        assert _code(call) == "E_BACKEND_CLOSED"
    b.free()  # freeing after cleanup is harmless


def test_dropped_buffers_are_collected(ctx):
    before = ctx.get_memory_info()["used_bytes"]
    for _ in range(20):
        ctx.buffer(4096)  # never freed explicitly
    ctx.sync()
    assert ctx.get_memory_info()["used_bytes"] == before


def test_out_of_range_shader_access_does_not_crash(ctx, spirv):
    """The push constant claims 1M elements on 64-byte buffers: on a CPU device robust buffer access keeps
    the process alive, and the in-range part is still right."""
    assert ctx.core.features.get("robustBufferAccess") or ctx.core.phys.kind != "cpu"
    a, c = ctx.buffer(64), ctx.buffer(64)
    a.upload(np.arange(16, dtype=np.uint32))
    ctx.kernel(spirv["add_u32"]).launch([a, a, c], global_size=1 << 20, push_constants=struct.pack("<I", 1 << 20))
    np.testing.assert_array_equal(np.frombuffer(c.download(), np.uint32), 2 * np.arange(16, dtype=np.uint32))
    a.free()
    c.free()


@pytest.mark.parametrize("case, code", [
    (lambda b, k: b.upload(b"x", offset=1.5), "E_VK_BUFFER_SIZE"),
    (lambda b, k: b.upload(b"x", offset="1"), "E_VK_BUFFER_SIZE"),
    (lambda b, k: b.upload(b"x", offset=-1), "E_VK_BUFFER_SIZE"),
    (lambda b, k: b.upload(b"x", offset=16), "E_VK_BUFFER_SIZE"),
    (lambda b, k: b.upload("text"), "E_VK_BUFFER_DATA"),
    (lambda b, k: b.upload(None), "E_VK_BUFFER_DATA"),
    (lambda b, k: k.launch(None, global_size=4), "E_VK_BINDINGS"),
    (lambda b, k: k.launch(b, global_size=4), "E_VK_BINDINGS"),
    (lambda b, k: k.launch([b, b], global_size=4), "E_VK_BINDINGS"),
    (lambda b, k: k.launch([b, b, b, b], global_size=4), "E_VK_BINDINGS"),
    (lambda b, k: k.launch([b, b, b], global_size=4, push_constants=4), "E_VK_PUSH_CONSTANTS"),
    (lambda b, k: k.launch([b, b, b], global_size=4, push_constants="abcd"), "E_VK_PUSH_CONSTANTS"),
    (lambda b, k: k.launch([b, b, b], global_size=4, push_constants=None), "E_VK_PUSH_CONSTANTS"),
    (lambda b, k: k.launch([b, b, b], global_size=4.0), "E_VK_DISPATCH"),
    (lambda b, k: k.launch([b, b, b], global_size=None), "E_VK_DISPATCH"),
    (lambda b, k: k.launch([b, b, b], global_size=(1, 1, 1, 1)), "E_VK_DISPATCH"),
    (lambda b, k: k.launch([b, b, b], global_size=True), "E_VK_DISPATCH"),
])
def test_bad_arguments_raise_coded_errors(ctx, spirv, case, code):
    b = ctx.buffer(16)
    k = ctx.kernel(spirv["add_u32"])
    try:
        assert _code(case, b, k) == code
    finally:
        b.free()
        k.release()


def test_sizes_past_every_heap_are_device_oom(ctx):
    """Sizes no heap can hold (up to past 2^64, which the driver cannot even be asked for) are refused with
    E_DEVICE_OOM before the driver, and the context goes on."""
    for n in (1 << 44, 1 << 63, 1 << 64, 1 << 70):
        assert _code(ctx.buffer, n) == "E_DEVICE_OOM"
    assert ctx.is_shader_cached([]) is False and ctx.is_shader_cached(5) is False


def test_push_constants_from_an_array(ctx, spirv, rng):
    a = rng.integers(0, 2**32, 100, dtype=np.uint32)
    x, y = ctx.buffer(a.nbytes), ctx.buffer(a.nbytes)
    x.upload(a)
    y.upload(np.full_like(a, 0xDEADBEEF))
    ctx.kernel(spirv["add_u32"]).launch((x, x, y), global_size=a.size, push_constants=np.array([a.size], np.uint32))
    np.testing.assert_array_equal(np.frombuffer(y.download(), np.uint32), a + a)
    x.free()
    y.free()


def test_released_kernel(ctx, spirv):
    b = ctx.buffer(16)
    k = ctx.kernel(spirv["add_u32"])
    k.release()
    k.release()  # idempotent
    assert _code(k.launch, [b, b, b], global_size=4) == "E_VK_KERNEL_RELEASED"
    b.free()


def test_dropped_kernels_give_back_their_descriptor_sets(ctx, spirv):
    """Kernels garbage-collected without release() return their descriptor sets at the context's next
    call, so a loop that never releases does not grow the descriptor pools."""
    b = ctx.buffer(256)
    push = struct.pack("<I", 64)

    def sets_in_use() -> int:
        from hlx_vulkan_raw.pipelines import SETS_PER_POOL
        return sum(SETS_PER_POOL - left for _pool, left in ctx.core.pipelines.pools)

    ctx.kernel(spirv["add_u32"]).launch([b, b, b], global_size=64, push_constants=push)
    ctx.sync()
    base = sets_in_use()
    for _ in range(3 * 64):  # three pools' worth if the sets leaked
        ctx.kernel(spirv["add_u32"]).launch([b, b, b], global_size=64, push_constants=push)
    ctx.sync()
    assert sets_in_use() <= base + 1
    b.free()
