"""Device memory: blocks sub-allocated into buffers, a reusable staging ring, and memory statistics.

Drivers cap the number of vkAllocateMemory calls and each costs a kernel round trip, so memory comes from
large blocks per memory type and every buffer is a VkBuffer bound at an aligned offset inside a block.
Space is handed out in whole granules, best fit, from free ranges indexed by size; freed ranges merge with
their neighbours, so free space is never split into slivers no request can use, and placing a buffer costs
a bisection however many buffers live in the block. Where device-local memory is also host-visible and
coherent on a unified-memory device (lavapipe, integrated GPUs), buffers live there and are written and
read through their mapping: no staging copies at all ("zero-copy").

A buffer larger than half a block gets a dedicated block. Allocating one is the costly call (on the H200 a
run with two fresh 256 MiB inputs and a 256 MiB result took 206 ms against 142 ms from reused 1 GiB
blocks), and runs whose large outputs stay on the device need a new one each, so a freed dedicated block
is kept as a *spare*, up to ``HLX_VULKAN_SPARE_MB`` (by default the residency budget, so a chain of runs
whose outputs the residency evicts in turn cycles through the same blocks; 0: none) least recently freed
first out, and the next request of exactly its size, memory type and kind takes it instead of the driver.
On the H200 a fresh 256 MiB block costs 4–6 ms of vkAllocateMemory; a chain of adds on 256 MiB tensors went
from 6.5 to 2.2 ms per run with spares enough for the whole cycle (1 GiB held only four). Spares are
returned to the driver before an allocation is retried when the device runs out of memory.
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from hlx_core.device.layout import align
from hlx_core.errors import HLXError
from hlx_core.settings import env_flag, env_number

from hlx_vulkan_raw.devices import PhysicalDevice
from hlx_vulkan_raw.errors import check, create, result_error, usage
from hlx_vulkan_raw.loader import NULL, chain, ffi, lib, new_struct, vk

MiB = 1 << 20
DEFAULT_BLOCK_BYTES = 64 * MiB
GRANULE = 256  # unit of sub-allocation: at least any buffer alignment drivers ask for in practice
BUFFER_USAGE = (vk.VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | vk.VK_BUFFER_USAGE_UNIFORM_BUFFER_BIT
                | vk.VK_BUFFER_USAGE_TRANSFER_SRC_BIT | vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT)
DEVICE_LOCAL = vk.VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
HOST_VISIBLE = vk.VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
HOST_COHERENT = vk.VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
HOST_CACHED = vk.VK_MEMORY_PROPERTY_HOST_CACHED_BIT


def residency_budget(device_local_bytes: int) -> int:
    """Bytes of buffers kept resident between runs (inputs, and outputs left on the device):
    ``HLX_VULKAN_RESIDENCY_MB``, by default a quarter of the device-local memory and at most 4 GiB."""
    mb = env_number("HLX_VULKAN_RESIDENCY_MB", None)
    if mb is not None:
        return int(mb * MiB)
    return min(device_local_bytes // 4, 4096 * MiB)


class Block:
    """One VkDeviceMemory of a memory type, its free space kept as coalesced ranges of whole granules.

    Every range starts and ends on a ``GRANULE`` boundary, so what an allocation leaves over is always
    usable by the next one: no sliver too small or misaligned for any request accumulates. The free ranges
    are indexed by (size, offset), so ``take`` finds the smallest range that fits by bisection (best fit,
    lowest offset among equals) instead of scanning, and by both ends, so ``give_back`` merges a range with
    its neighbours in constant time. ``probes`` counts the free ranges ``take`` examined, for tests."""

    def __init__(self, memory, size: int, type_index: int, mapped: Any, dedicated: bool, host: bool) -> None:
        self.memory = memory
        self.host = host  # staging memory (always mapped) rather than device buffers
        self.size = size
        self.type_index = type_index
        self.mapped = mapped  # host address of offset 0 when the memory is host-visible
        self.dedicated = dedicated
        self.free: list[tuple[int, int]] = []  # (size, offset), sorted
        self._by_start: dict[int, int] = {}     # offset -> size of each free range
        self._by_end: dict[int, int] = {}       # offset + size -> offset
        self.used = 0
        self.probes = 0
        self._add(0, size // GRANULE * GRANULE)

    @staticmethod
    def reserved(size: int) -> int:
        """Bytes a ``size``-byte buffer takes in a block: whole granules."""
        return align(max(size, 1), GRANULE)

    def take(self, size: int, alignment: int) -> int | None:
        """Best fit: the ``alignment``-aligned offset of ``reserved(size)`` bytes, or None when nothing fits."""
        need = self.reserved(size)
        # Ranges start on granules, so any range of ``need`` bytes fits an alignment up to a granule; a
        # coarser one may cost up to (alignment - granule) bytes of lead-in, and a range that large fits.
        for want in (need,) if alignment <= GRANULE else (need, need + alignment - GRANULE):
            i = bisect.bisect_left(self.free, (want, -1))
            if i == len(self.free):
                return None
            length, off = self.free[i]
            self.probes += 1
            start = align(off, alignment)
            if start + need <= off + length:
                self._remove(i, off, length)
                self._add(off, start - off)
                self._add(start + need, off + length - start - need)
                self.used += need
                return start
        return None

    def give_back(self, offset: int, size: int) -> None:
        """Free ``reserved(size)`` bytes at ``offset``, merged with the free ranges next to them."""
        size = self.reserved(size)
        self.used -= size
        after = self._by_start.get(offset + size)
        if after is not None:
            self._remove(bisect.bisect_left(self.free, (after, offset + size)), offset + size, after)
            size += after
        before = self._by_end.get(offset)
        if before is not None:
            length = offset - before
            self._remove(bisect.bisect_left(self.free, (length, before)), before, length)
            offset, size = before, size + length
        self._add(offset, size)

    def _add(self, offset: int, size: int) -> None:
        if size > 0:
            bisect.insort(self.free, (size, offset))
            self._by_start[offset] = size
            self._by_end[offset + size] = offset

    def _remove(self, index: int, offset: int, size: int) -> None:
        del self.free[index]
        del self._by_start[offset]
        del self._by_end[offset + size]

    @property
    def empty(self) -> bool:
        return self.used == 0


@dataclass(eq=False)
class DeviceBuffer:
    """A VkBuffer bound inside a block. ``ptr`` is its host address when mapped (zero-copy or staging)."""

    handle: Any
    size: int
    block: Block
    offset: int
    reserved: int
    ptr: Any = None
    serial: int = 0
    alive: bool = field(default=True)

    @property
    def host_visible(self) -> bool:
        return self.ptr is not None

    def write(self, data, offset: int = 0) -> None:
        """Copy bytes-like ``data`` into the mapped buffer (caller checks the size)."""
        ffi.memmove(self.ptr + offset, ffi.from_buffer(data), len(memoryview(data).cast("B")))

    def read(self, nbytes: int | None = None) -> bytes:
        return bytes(ffi.buffer(self.ptr, self.size if nbytes is None else nbytes))

    def view(self, nbytes: int) -> memoryview:
        """A live view of the mapped bytes (valid until the buffer is freed)."""
        return memoryview(ffi.buffer(self.ptr, nbytes))


class MemoryAllocator:
    """Sub-allocates DeviceBuffers for one logical device."""

    def __init__(self, device, phys: PhysicalDevice, block_bytes: int | None = None) -> None:
        self.device = device
        self.phys = phys
        env_mb = env_number("HLX_VULKAN_BLOCK_MB", None, minimum=1)
        self.block_bytes = block_bytes or (int(env_mb * MiB) if env_mb is not None else DEFAULT_BLOCK_BYTES)
        self.blocks: dict[Block, None] = {}  # every block, in creation order (spares included)
        spare_mb = env_number("HLX_VULKAN_SPARE_MB", None)
        self.spare_limit = int(spare_mb * MiB) if spare_mb is not None else residency_budget(phys.device_local_bytes)
        self._spares: OrderedDict[Block, None] = OrderedDict()  # freed dedicated blocks, oldest first
        self.spare_bytes = 0
        self.spare_hits = 0
        self._shared: dict[tuple[int, bool], list[Block]] = {}  # (type, host) -> blocks buffers share
        self._serial = 0
        self.types = phys.memory_types
        self.largest_heap = max(h["size"] for h in phys.memory_heaps)
        # HLX_VULKAN_ZERO_COPY=0 forces the staging path (to test it, or to compare on unified memory).
        self.zero_copy = self._unified_memory() and env_flag("HLX_VULKAN_ZERO_COPY", True)
        self.device_flags = DEVICE_LOCAL | (HOST_VISIBLE | HOST_COHERENT if self.zero_copy else 0)

    def _unified_memory(self) -> bool:
        """True when every device-local heap has a host-visible coherent type and the device is not a
        discrete GPU (whose host-visible VRAM window is slow to read back and may be small)."""
        if self.phys.kind == "gpu-discrete":
            return False
        local_heaps = {h["index"] for h in self.phys.memory_heaps if h["device_local"]}
        wanted = DEVICE_LOCAL | HOST_VISIBLE | HOST_COHERENT
        mappable = {t["heap"] for t in self.types if t["flags"] & wanted == wanted}
        return bool(local_heaps) and local_heaps <= mappable

    def pick_type(self, type_bits: int, required: int, preferred: int = 0) -> int:
        """The first memory type among ``type_bits`` with every ``required`` flag, preferring one that also
        has every ``preferred`` flag."""
        best = None
        for t in self.types:
            if not (type_bits >> t["index"]) & 1 or t["flags"] & required != required:
                continue
            if t["flags"] & preferred == preferred:
                return t["index"]
            if best is None:
                best = t["index"]
        if best is None:
            raise usage("E_VK_ERROR", f"no memory type with flags 0x{required:x} among 0x{type_bits:x}")
        return best

    def _new_block(self, type_index: int, size: int, dedicated: bool, host: bool) -> Block:
        heap = self.phys.memory_heaps[self.types[type_index]["heap"]]
        cap = self.phys.limits.get("maxMemoryAllocationSize") or heap["size"]
        if size > heap["size"] or size > cap:
            raise usage("E_DEVICE_OOM", f"{size} bytes do not fit: memory heap {heap['index']} has "
                        f"{heap['size']} bytes and one allocation may be at most {cap} bytes")
        info = new_struct("VkMemoryAllocateInfo", vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                          allocationSize=size, memoryTypeIndex=type_index)
        try:
            memory = create("VkDeviceMemory*", lib.vkAllocateMemory, self.device, info, NULL,
                            what=f"vkAllocateMemory of {size} bytes")
        except HLXError as exc:
            if exc.code != "E_DEVICE_OOM" or not self._spares:
                raise
            self.drop_spares()  # the memory they hold may be what this allocation lacks
            memory = create("VkDeviceMemory*", lib.vkAllocateMemory, self.device, info, NULL,
                            what=f"vkAllocateMemory of {size} bytes")
        mapped = None
        if host or self.zero_copy:
            pp = ffi.new("void**")
            result = lib.vkMapMemory(self.device, memory, 0, size, 0, pp)
            if result != 0:
                lib.vkFreeMemory(self.device, memory, NULL)
                raise result_error(result, "vkMapMemory")
            mapped = ffi.cast("char*", pp[0])
        block = Block(memory, size, type_index, mapped, dedicated, host)
        self.blocks[block] = None
        if not dedicated:
            self._shared.setdefault((type_index, host), []).append(block)
        return block

    def create_buffer(self, nbytes: int, host: bool = False, readback: bool = False) -> DeviceBuffer:
        """A buffer of ``nbytes`` in device memory (``host``: host-visible staging memory instead)."""
        if nbytes > self.largest_heap:  # refused here: sizes past 2^64 would not even reach the driver
            raise usage("E_DEVICE_OOM", f"{nbytes} bytes do not fit: the largest memory heap of "
                        f"{self.phys.name} has {self.largest_heap} bytes")
        info = new_struct("VkBufferCreateInfo", vk.VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, size=nbytes,
                          usage=BUFFER_USAGE, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE)
        handle = create("VkBuffer*", lib.vkCreateBuffer, self.device, info, NULL,
                        what=f"vkCreateBuffer of {nbytes} bytes")
        try:
            req = ffi.new("VkMemoryRequirements*")
            lib.vkGetBufferMemoryRequirements(self.device, handle, req)
            if host:
                type_index = self.pick_type(req.memoryTypeBits, HOST_VISIBLE | HOST_COHERENT,
                                             HOST_VISIBLE | HOST_COHERENT | (HOST_CACHED if readback else 0))
            else:
                type_index = self.pick_type(req.memoryTypeBits, self.device_flags)
            block, offset = self._place(type_index, int(req.size), int(req.alignment), host)
            reserved = block.size if block.dedicated else block.reserved(int(req.size))
            try:
                check(lib.vkBindBufferMemory(self.device, handle, block.memory, offset), "vkBindBufferMemory")
            except Exception:
                self._release(block, offset, reserved)
                raise
        except Exception:
            lib.vkDestroyBuffer(self.device, handle, NULL)
            raise
        self._serial += 1
        ptr = block.mapped + offset if block.mapped is not None else None
        return DeviceBuffer(handle, nbytes, block, offset, reserved, ptr, self._serial)

    def _place(self, type_index: int, size: int, alignment: int, host: bool) -> tuple[Block, int]:
        if size > self.block_bytes // 2:  # large buffers get their own block, kept as a spare when freed
            size = align(size, alignment)
            spare = self._take_spare(type_index, size, host)
            if spare is not None:
                return spare, 0
            return self._new_block(type_index, size, dedicated=True, host=host), 0
        for block in self._shared.get((type_index, host), ()):  # one per block_bytes in use: a few
            off = block.take(size, alignment)
            if off is not None:
                return block, off
        block = self._new_block(type_index, self.block_bytes, dedicated=False, host=host)
        off = block.take(size, alignment)
        assert off is not None
        return block, off

    def _take_spare(self, type_index: int, size: int, host: bool) -> Block | None:
        """The most recently freed spare of exactly this size, type and kind, taken out of the spares."""
        for block in reversed(self._spares):
            if block.size == size and block.type_index == type_index and block.host == host:
                del self._spares[block]
                self.spare_bytes -= block.size
                self.spare_hits += 1
                return block
        return None

    def _keep_spare(self, block: Block) -> None:
        """Keep a freed dedicated block for reuse, returning the oldest spares past the limit."""
        if block.size > self.spare_limit:
            self._free_block(block)
            return
        self._spares[block] = None
        self.spare_bytes += block.size
        while self.spare_bytes > self.spare_limit:
            oldest = next(iter(self._spares))
            del self._spares[oldest]
            self.spare_bytes -= oldest.size
            self._free_block(oldest)

    def drop_spares(self) -> None:
        """Return every spare block to the driver."""
        while self._spares:
            block, _ = self._spares.popitem(last=False)
            self._free_block(block)
        self.spare_bytes = 0

    def _release(self, block: Block, offset: int, size: int) -> None:
        if block.dedicated:
            self._keep_spare(block)
            return
        block.give_back(offset, size)
        if block.empty:
            # Keep one empty block per type for reuse; return the others to the driver.
            spare = [b for b in self._shared[(block.type_index, block.host)] if b.empty]
            if len(spare) > 1:
                self._free_block(block)

    def _free_block(self, block: Block) -> None:
        if block.mapped is not None:
            lib.vkUnmapMemory(self.device, block.memory)
        lib.vkFreeMemory(self.device, block.memory, NULL)
        del self.blocks[block]
        if not block.dedicated:
            self._shared[(block.type_index, block.host)].remove(block)

    def free(self, buf: DeviceBuffer) -> None:
        if not buf.alive:
            return
        buf.alive = False
        lib.vkDestroyBuffer(self.device, buf.handle, NULL)
        self._release(buf.block, buf.offset, buf.reserved)

    def destroy(self) -> None:
        """Free every block (buffers must already be destroyed)."""
        self._spares.clear()
        self.spare_bytes = 0
        for block in list(self.blocks):
            self._free_block(block)

    def stats(self) -> dict[str, int]:
        """Blocks and their bytes, and the free ranges of the shared blocks (bounded by the live buffers)."""
        return {"blocks": len(self.blocks), "allocated_bytes": sum(b.size for b in self.blocks),
                "used_bytes": sum(b.used for b in self.blocks),
                "free_ranges": sum(len(b.free) for b in self.blocks if not b.dedicated),
                "spare_blocks": len(self._spares), "spare_bytes": self.spare_bytes, "spare_hits": self.spare_hits}

    def heap_info(self) -> list[dict[str, Any]]:
        """Heaps with size and, with VK_EXT_memory_budget, the driver's usage and budget."""
        heaps = [dict(h) for h in self.phys.memory_heaps]
        if "VK_EXT_memory_budget" in self.phys.extensions:
            props = new_struct("VkPhysicalDeviceMemoryProperties2",
                               vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2)
            budget = new_struct("VkPhysicalDeviceMemoryBudgetPropertiesEXT",
                                vk.VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT)
            chain(props, budget)
            lib.vkGetPhysicalDeviceMemoryProperties2(self.phys.handle, props)
            for h in heaps:
                h["usage"] = int(budget.heapUsage[h["index"]])
                h["budget"] = int(budget.heapBudget[h["index"]])
        return heaps


class StagingRing:
    """A host-visible buffer reused by every submit for uploads and downloads. Space is handed out
    linearly and reclaimed as a whole once the submit that used it has completed (``reset``); it grows
    (replacing the buffer) only between submits."""

    def __init__(self, allocator: MemoryAllocator, initial: int = 4 * MiB) -> None:
        self.allocator = allocator
        self.buffer: DeviceBuffer | None = None
        self.capacity = 0
        self.head = 0
        self._initial = initial

    def reset(self, needed: int = 0) -> None:
        """Start a new submit's worth of staging with room for at least ``needed`` bytes."""
        self.head = 0
        if needed > self.capacity or self.buffer is None:
            cap = max(self._initial, 1 << max(needed - 1, 1).bit_length())
            if self.buffer is not None:
                self.allocator.free(self.buffer)
                self.buffer = None
                self.capacity = 0
            self.buffer = self.allocator.create_buffer(cap, host=True, readback=True)
            self.capacity = cap

    def reserve(self, nbytes: int, alignment: int = 16) -> int:
        """Offset of ``nbytes`` of staging space (``reset(needed)`` must have made room)."""
        off = align(self.head, alignment)
        if off + nbytes > self.capacity:
            raise usage("E_VK_ERROR", f"staging ring overflow: {off + nbytes} > {self.capacity}")
        self.head = off + nbytes
        return off

    def destroy(self) -> None:
        if self.buffer is not None:
            self.allocator.free(self.buffer)
            self.buffer = None
            self.capacity = 0
