"""The sub-allocator: buffers share large blocks at aligned offsets, freed ranges are reused, freed dedicated
blocks are kept as bounded spares for the next buffer of their size, and memory info reports the heaps."""
from __future__ import annotations

import numpy as np


def test_buffers_share_one_block_at_aligned_offsets(ctx, rng):
    from hlx_vulkan_raw.loader import ffi, lib
    alloc = ctx.core.allocator
    blocks_before = len(alloc.blocks)
    sizes = [int(s) for s in rng.integers(1, 5000, 40)]
    bufs = [alloc.create_buffer(s) for s in sizes]
    try:
        req = ffi.new("VkMemoryRequirements*")
        for buf in bufs:
            lib.vkGetBufferMemoryRequirements(ctx.core.device, buf.handle, req)
            assert buf.offset % req.alignment == 0 and buf.reserved >= buf.size
        assert len({b.block.memory for b in bufs}) == 1  # no vkAllocateMemory per buffer
        assert len(alloc.blocks) <= blocks_before + 1
        spans = sorted((b.offset, b.offset + b.reserved) for b in bufs)
        assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:]))  # no overlap
    finally:
        for b in bufs:
            alloc.free(b)


def test_freed_ranges_are_reused_and_coalesced():
    from hlx_vulkan_raw import VulkanContext
    with VulkanContext() as fresh:  # an allocator with no holes yet: placement is predictable
        _reuse(fresh.core.allocator)


def _reuse(alloc) -> None:
    a, b, c = (alloc.create_buffer(4096) for _ in range(3))
    assert b.offset == a.offset + a.reserved and c.block is a.block
    block, offset_a = a.block, a.offset
    alloc.free(a)
    alloc.free(b)  # a and b coalesce into one range that an 8 KiB buffer fits
    d = alloc.create_buffer(8192)
    assert d.block is block and d.offset == offset_a
    alloc.free(c)
    alloc.free(d)


def test_large_buffers_get_a_dedicated_block_kept_as_a_spare_and_reused(ctx):
    alloc = ctx.core.allocator
    n = alloc.block_bytes // 2 + 4096
    alloc.drop_spares()
    before = len(alloc.blocks)
    big = alloc.create_buffer(n)
    assert big.block.dedicated and big.offset == 0 and len(alloc.blocks) == before + 1
    block = big.block
    alloc.free(big)
    stats = alloc.stats()
    assert len(alloc.blocks) == before + 1 and stats["spare_blocks"] == 1 and stats["spare_bytes"] == block.size
    hits = stats["spare_hits"]
    other = alloc.create_buffer(n + (1 << 20))  # another size: a new block, the spare stays
    assert other.block is not block and alloc.stats()["spare_blocks"] == 1
    again = alloc.create_buffer(n)  # the same size: the spare, no vkAllocateMemory
    assert again.block is block and alloc.stats()["spare_hits"] == hits + 1
    alloc.free(again)
    alloc.free(other)
    alloc.drop_spares()
    assert len(alloc.blocks) == before and alloc.stats()["spare_bytes"] == 0


def test_spares_are_bounded_and_can_be_turned_off(monkeypatch):
    from hlx_vulkan_raw import VulkanContext
    monkeypatch.setenv("HLX_VULKAN_BLOCK_MB", "1")  # dedicated blocks from 512 KiB: small tests
    monkeypatch.setenv("HLX_VULKAN_SPARE_MB", "2")
    with VulkanContext() as c:
        alloc = c.core.allocator
        bufs = [alloc.create_buffer((768 + 16 * i) << 10) for i in range(4)]  # 3.2 MiB in all
        before = len(alloc.blocks)
        for b in bufs:
            alloc.free(b)
        stats = alloc.stats()
        assert 0 < stats["spare_bytes"] <= 2 << 20 and len(alloc.blocks) == before - 4 + stats["spare_blocks"]
        kept = {b.block for b in bufs} & set(alloc.blocks)
        assert {b.block for b in bufs[-stats["spare_blocks"]:]} == kept  # the most recently freed stay
    monkeypatch.setenv("HLX_VULKAN_SPARE_MB", "0")
    with VulkanContext() as c:
        alloc = c.core.allocator
        before = len(alloc.blocks)
        alloc.free(alloc.create_buffer(768 << 10))
        assert len(alloc.blocks) == before and alloc.stats()["spare_blocks"] == 0


def test_spares_are_returned_when_the_device_runs_out_of_memory(ctx, monkeypatch):
    from hlx_core.errors import HLXError

    from hlx_vulkan_raw import memory
    alloc = ctx.core.allocator
    n = alloc.block_bytes // 2 + 4096
    alloc.free(alloc.create_buffer(n))
    assert alloc.stats()["spare_blocks"] >= 1
    real, calls = memory.create, []

    def out_of_memory_once(kind, fn, *args, **kwargs):
        if kind == "VkDeviceMemory*" and not calls:
            calls.append(kind)
            raise HLXError("E_DEVICE_OOM", "vkAllocateMemory: VK_ERROR_OUT_OF_DEVICE_MEMORY")
        return real(kind, fn, *args, **kwargs)

    monkeypatch.setattr(memory, "create", out_of_memory_once)
    buf = alloc.create_buffer(n + 8192)  # no spare of this size: the driver is asked, fails, spares go, retry
    assert calls and alloc.stats()["spare_blocks"] == 0
    alloc.free(buf)


def test_data_written_through_a_buffer_round_trips(ctx, rng):
    data = rng.integers(0, 256, 70_000, dtype=np.uint8)
    b = ctx.buffer(data.nbytes + 5)
    b.upload(data, offset=5)
    got = np.frombuffer(b.download(), np.uint8)
    np.testing.assert_array_equal(got[5:], data)
    b.free()


def test_memory_info_reports_heaps(ctx):
    info = ctx.get_memory_info()
    heaps = info["heaps"]
    assert [h["index"] for h in heaps] == list(range(len(heaps))) and all(h["size"] > 0 for h in heaps)
    assert sum(h["size"] for h in heaps if h["device_local"]) == ctx.core.phys.device_local_bytes
    if ctx.core.phys.features["memoryBudget"]:
        assert all(0 <= h["usage"] and h["budget"] > 0 for h in heaps)
    else:  # lavapipe has no VK_EXT_memory_budget: sizes only
        assert all("budget" not in h for h in heaps)
    assert info["used_bytes"] <= info["allocated_bytes"]


def test_staging_path_of_the_handle_api(rng, monkeypatch):
    """With zero-copy off, Buffer.upload and Buffer.download go through the staging ring."""
    from hlx_vulkan_raw import VulkanContext
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    with VulkanContext() as c:
        assert not c.zero_copy
        x = rng.standard_normal(2000).astype(np.float32)
        buf = c.buffer(x.nbytes)
        buf.upload(x)
        assert buf.download() == x.tobytes() and c.get_memory_info()["staging_bytes"] > 0
        buf.free()
