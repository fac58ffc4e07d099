"""Large outputs copied by the device straight into host memory that becomes the result array: no host copy.

A run's large output would otherwise cross host memory twice: the device copies it into a mapped readback
buffer, then the host copies it into a fresh array (on the H200's host that copy costs 14-16 ms for 64 MB,
page faults included, against 1.5 ms for the device's own copy at the 44 GB/s measured there). With
VK_EXT_external_memory_host the device can write into memory the host allocated: here page-aligned
anonymous mmaps, imported as Vulkan memory once and reused, so their pages are faulted in and pinned once,
not on every run. By default outputs this large are hashed on the device and stay there (resident.py), so
this path serves the runs that read them back all the same: HLX_VULKAN_DEVICE_HASH_BYTES=0, or set above
their size.

The result array is a view of such a block (``HostBlock.array``), so a block may only be written again once
nothing refers to it any more: not the caller's array, a view of it, nor a store that borrowed its bytes.
Every such reference holds the block's mmap, so its reference count tells (``HostBlock.idle``). A block
still referred to is never reused; past the pool's byte budget it is *let go*: its Vulkan import is
destroyed (nothing in flight uses it then) and its mmap is left to whoever still holds it, so a result stays
valid after its session closed, the device's memory having never been its owner.
"""
from __future__ import annotations

import logging
import math
import mmap
import sys
from typing import Any

import numpy as np

from hlx_core.device.layout import align, native_array
from hlx_core.errors import HLXError
from hlx_core.plan import OutputRef

from hlx_vulkan_raw.errors import check, create
from hlx_vulkan_raw.loader import NULL, chain, ffi, lib, new_struct, vk

HOST_ALLOCATION = vk.VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT
HOST_CACHED = vk.VK_MEMORY_PROPERTY_HOST_CACHED_BIT
MiB = 1 << 20
#: Outputs from this size on are read back into pooled host blocks; smaller ones are copied out of the
#: recorded readback buffer, which costs less than recording the per-run copy a block needs.
POOL_MIN_BYTES = 1 * MiB
#: Bytes of host blocks the pool keeps imported (idle or still referred to by results).
DEFAULT_POOL_BYTES = 1024 * MiB

log = logging.getLogger("hlx.vulkan")


class HostImport:
    """What importing host memory needs on one device: the extension's entry point and the alignment of an
    imported pointer and size (``minImportedHostPointerAlignment``)."""

    def __init__(self, device, get_properties, alignment: int, pick_type) -> None:
        self.device = device
        self._get_properties = get_properties
        self.alignment = alignment
        self._pick_type = pick_type  # MemoryAllocator.pick_type

    def block(self, nbytes: int) -> HostBlock:
        """A new block of at least ``nbytes`` (rounded up to the import alignment)."""
        return HostBlock(self, align(max(nbytes, 1), self.alignment))

    def import_memory(self, mm: mmap.mmap, size: int) -> tuple[Any, Any]:
        """(VkBuffer, VkDeviceMemory) over the ``size`` bytes of ``mm``, a transfer destination."""
        device = self.device
        address = ffi.cast("void*", ffi.from_buffer(mm))  # the cdata is dropped: it would hold an export of mm
        props = new_struct("VkMemoryHostPointerPropertiesEXT", vk.VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT)
        check(self._get_properties(device, HOST_ALLOCATION, address, props), "vkGetMemoryHostPointerPropertiesEXT")
        external = new_struct("VkExternalMemoryBufferCreateInfo",
                              vk.VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO, handleTypes=HOST_ALLOCATION)
        info = new_struct("VkBufferCreateInfo", vk.VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, size=size,
                          usage=vk.VK_BUFFER_USAGE_TRANSFER_DST_BIT, sharingMode=vk.VK_SHARING_MODE_EXCLUSIVE)
        chain(info, external)
        buffer = create("VkBuffer*", lib.vkCreateBuffer, device, info, NULL, what=f"vkCreateBuffer of {size} bytes")
        try:
            req = ffi.new("VkMemoryRequirements*")
            lib.vkGetBufferMemoryRequirements(device, buffer, req)
            type_index = self._pick_type(props.memoryTypeBits & req.memoryTypeBits, 0, HOST_CACHED)
            imported = new_struct("VkImportMemoryHostPointerInfoEXT",
                                  vk.VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
                                  handleType=HOST_ALLOCATION, pHostPointer=address)
            alloc = new_struct("VkMemoryAllocateInfo", vk.VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               allocationSize=size, memoryTypeIndex=type_index)
            chain(alloc, imported)
            memory = create("VkDeviceMemory*", lib.vkAllocateMemory, device, alloc, NULL,
                            what=f"vkAllocateMemory importing {size} bytes of host memory")
            try:
                check(lib.vkBindBufferMemory(device, buffer, memory, 0), "vkBindBufferMemory")
            except Exception:
                lib.vkFreeMemory(device, memory, NULL)
                raise
        except Exception:
            lib.vkDestroyBuffer(device, buffer, NULL)
            raise
        return buffer, memory


class HostBlock:
    """One anonymous mmap imported as a transfer destination. Results are views of ``mm``."""

    __slots__ = ("mm", "size", "buffer", "memory", "_device", "_idle_refs", "last_used")

    def __init__(self, importer: HostImport, size: int) -> None:
        self.mm = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_HUGEPAGE"):  # fewer faults and pinned pages; a hint the kernel may ignore
            self.mm.madvise(mmap.MADV_HUGEPAGE)
        self.size = size
        self._device = importer.device
        self.buffer, self.memory = importer.import_memory(self.mm, size)
        self.last_used = 0
        self._idle_refs = sys.getrefcount(self.mm)  # this block's own reference, and the call's argument

    def idle(self) -> bool:
        """Nothing but this block refers to its memory: no result array, view or borrowed buffer."""
        return sys.getrefcount(self.mm) <= self._idle_refs

    def array(self, spec: OutputRef) -> np.ndarray:
        """The output ``spec`` as a view of the block (the device has just written it, little-endian)."""
        view = np.frombuffer(self.mm, dtype=np.dtype(spec.dtype).newbyteorder("<"), count=math.prod(spec.shape))
        return native_array(view.reshape(spec.shape), copy=False)

    def release(self) -> None:
        """Destroy the Vulkan import (the device must not be using it); the mmap lives on with its users."""
        if self.buffer is not None:
            lib.vkDestroyBuffer(self._device, self.buffer, NULL)
            lib.vkFreeMemory(self._device, self.memory, NULL)
            self.buffer = self.memory = None


class HostPool:
    """Imported host blocks by size, least recently used first. ``acquire`` hands out idle blocks of the
    sizes (or imports new ones); ``trim``, called once nothing in flight uses any block, keeps at most
    ``budget`` bytes imported: idle blocks go first, then the oldest blocks still referred to are let go."""

    def __init__(self, importer: HostImport, budget: int = DEFAULT_POOL_BYTES) -> None:
        self.importer = importer
        self.budget = budget
        self.blocks: list[HostBlock] = []  # least recently used first
        self.bytes = 0
        self._clock = 0
        self.created = 0
        self._usable: bool | None = None

    def usable(self) -> bool:
        """Whether the driver imports host memory here: tried once, with one small block, before the first
        plan that would read back into the pool is recorded (a refusal leaves outputs to the readback copy)."""
        if self._usable is None:
            try:
                self.importer.block(self.importer.alignment).release()
                self._usable = True
            except HLXError as exc:
                log.warning("importing host memory failed (%s): large outputs are read back with a host copy", exc)
                self._usable = False
        return self._usable

    def acquire(self, sizes: list[int]) -> list[HostBlock]:
        """A distinct idle block for each of one run's outputs of ``sizes`` bytes (imported when none is)."""
        self._clock += 1
        taken: list[HostBlock] = []
        for nbytes in sizes:
            size = align(max(nbytes, 1), self.importer.alignment)
            block = next((b for b in reversed(self.blocks)
                          if b.size == size and b.last_used != self._clock and b.idle()), None)
            if block is None:
                block = self.importer.block(size)
                self.blocks.append(block)
                self.bytes += size
                self.created += 1
            block.last_used = self._clock
            taken.append(block)
        return taken

    def trim(self) -> None:
        if self.bytes <= self.budget:
            return
        self.blocks.sort(key=lambda b: (not b.idle(), b.last_used))  # idle first, each group oldest first
        while self.bytes > self.budget and self.blocks:
            block = self.blocks.pop(0)
            self.bytes -= block.size
            block.release()
        self.blocks.sort(key=lambda b: b.last_used)

    def destroy(self) -> None:
        """Release every import (results keep their memory)."""
        for block in self.blocks:
            block.release()
        self.blocks.clear()
        self.bytes = 0

    def stats(self) -> dict[str, int]:
        return {"blocks": len(self.blocks), "bytes": self.bytes, "budget": self.budget,
                "idle": sum(b.idle() for b in self.blocks), "created": self.created}
