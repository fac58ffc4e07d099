"""A block's free space stays a few coalesced ranges whatever sizes come and go, and placing a buffer
examines a bounded number of them: runs with ever new inputs cost the same on the 20,000th run as on the
first. Blocks are driven directly (their bookkeeping needs no device memory)."""
from __future__ import annotations

from hlx_vulkan_raw import memory
from hlx_vulkan_raw.memory import Block

MiB = 1 << 20


def _block(size: int = 64 * MiB) -> Block:
    return Block(None, size, 0, None, dedicated=False, host=False)


def test_inputs_that_stay_leave_no_slivers(rng):
    """The drift pattern: each run keeps a new odd-sized input and takes and frees an output."""
    block = _block()
    takes = 0
    for run in range(20_000):
        kept = block.take(int(rng.integers(1, 200)), 64)
        size = int(rng.integers(1, 200))
        out = block.take(size, 64)
        takes += 2
        assert kept is not None and out is not None and kept % 64 == 0 and out % 64 == 0
        block.give_back(out, size)
        assert len(block.free) <= 2, f"run {run}: {len(block.free)} free ranges"
    assert block.probes <= takes  # one free range examined per placement


def test_random_sizes_and_alignments_coalesce(rng):
    block = _block(16 * MiB)
    live: dict[int, int] = {}
    takes = 0
    for step in range(4000):
        if live and rng.random() < 0.45:
            offset = list(live)[int(rng.integers(len(live)))]
            block.give_back(offset, live.pop(offset))
            continue
        size = int(rng.choice([1, 16, 100, 255, 257, 4095, 4097, 70_000]) + rng.integers(0, 64))
        alignment = int(rng.choice([4, 64, 256, 4096, 65536]))
        offset = block.take(size, alignment)
        takes += 1
        assert offset is not None and offset % alignment == 0
        live[offset] = size
        assert len(block.free) <= len(live) + 1  # ranges only between live buffers
        if step % 200 == 0:
            spans = sorted((o, o + Block.reserved(s)) for o, s in live.items())
            assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), "overlapping buffers"
    assert block.probes <= 2 * takes  # an alignment above a granule may look at a second range
    assert block.used == sum(Block.reserved(s) for s in live.values())
    for offset, size in live.items():
        block.give_back(offset, size)
    assert block.free == [(16 * MiB, 0)] and block.empty


def test_a_full_block_says_so_without_scanning():
    granule = memory.GRANULE
    block = _block(64 * granule)
    offsets = [block.take(granule - 3, 64) for _ in range(64)]
    assert sorted(offsets) == [i * granule for i in range(64)] and block.free == []
    assert block.take(1, 4) is None
    for offset in offsets[::2]:
        block.give_back(offset, granule - 3)
    before = block.probes
    assert block.take(2 * granule, 4) is None and block.probes == before  # 32 holes, none examined
    assert len(block.free) == 32
