"""Command pools, submission with fences, barriers and timestamp queries.

A submit is a list of command buffers handed to the compute queue in one vkQueueSubmit with a fence.
``Recorder`` wraps a command buffer being recorded with the few commands HLX uses, so barrier and timestamp
rules live in one place.
"""
from __future__ import annotations

import time
from typing import Any

from hlx_core.backend import timeout_message
from hlx_core.device.waiting import SpinBudget, timeout_s

from hlx_vulkan_raw.errors import VulkanError, check, create, result_error
from hlx_vulkan_raw.loader import NULL, ffi, lib, new_struct, vk

COMPUTE = vk.VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT
TOP_OF_PIPE = vk.VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT
TRANSFER = vk.VK_PIPELINE_STAGE_TRANSFER_BIT
HOST = vk.VK_PIPELINE_STAGE_HOST_BIT
SHADER_READ = vk.VK_ACCESS_SHADER_READ_BIT
SHADER_WRITE = vk.VK_ACCESS_SHADER_WRITE_BIT
TRANSFER_READ = vk.VK_ACCESS_TRANSFER_READ_BIT
TRANSFER_WRITE = vk.VK_ACCESS_TRANSFER_WRITE_BIT
HOST_READ = vk.VK_ACCESS_HOST_READ_BIT
UNIFORM_READ = vk.VK_ACCESS_UNIFORM_READ_BIT
NOT_READY = vk.VK_NOT_READY
TIMEOUT = vk.VK_TIMEOUT


SPIN_SETTING = "HLX_VULKAN_SPIN_US"
SPIN_MAX_SETTING = "HLX_VULKAN_SPIN_MAX_US"
TIMEOUT_SETTING = "HLX_VULKAN_TIMEOUT_S"


class Recorder:
    """A command buffer in the recording state."""

    def __init__(self, cb, one_time: bool) -> None:
        self.cb = cb
        flags = vk.VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT if one_time else 0
        begin = new_struct("VkCommandBufferBeginInfo", vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO, flags=flags)
        check(lib.vkBeginCommandBuffer(cb, begin), "vkBeginCommandBuffer")
        self._barrier = new_struct("VkMemoryBarrier", vk.VK_STRUCTURE_TYPE_MEMORY_BARRIER)

    def barrier(self, src_stage: int, src_access: int, dst_stage: int, dst_access: int) -> None:
        """A global memory barrier (cheaper to record than per-buffer barriers and as precise on every
        driver HLX targets, which track buffer hazards per queue)."""
        self._barrier.srcAccessMask = src_access
        self._barrier.dstAccessMask = dst_access
        lib.vkCmdPipelineBarrier(self.cb, src_stage, dst_stage, 0, 1, self._barrier, 0, NULL, 0, NULL)

    def copy(self, src, src_offset: int, dst, dst_offset: int, size: int) -> None:
        region = ffi.new("VkBufferCopy*", {"srcOffset": src_offset, "dstOffset": dst_offset, "size": size})
        lib.vkCmdCopyBuffer(self.cb, src, dst, 1, region)

    def fill(self, dst, size: int, word: int) -> None:
        """Fill the first ``size`` bytes (a multiple of 4) of ``dst`` with the 32-bit ``word``."""
        lib.vkCmdFillBuffer(self.cb, dst, 0, size, word)

    def dispatch(self, pipe, dset, push: bytes, groups: tuple[int, int, int]) -> None:
        lib.vkCmdBindPipeline(self.cb, vk.VK_PIPELINE_BIND_POINT_COMPUTE, pipe.handle)
        if dset is not None:
            sets = ffi.new("VkDescriptorSet[]", [dset])
            lib.vkCmdBindDescriptorSets(self.cb, vk.VK_PIPELINE_BIND_POINT_COMPUTE, pipe.layout, 0, 1, sets, 0, NULL)
        if pipe.push_size:
            data = push.ljust(pipe.push_size, b"\0")
            lib.vkCmdPushConstants(self.cb, pipe.layout, vk.VK_SHADER_STAGE_COMPUTE_BIT, 0, pipe.push_size,
                                   ffi.from_buffer(data))
        lib.vkCmdDispatch(self.cb, *groups)

    def reset_queries(self, pool, count: int) -> None:
        lib.vkCmdResetQueryPool(self.cb, pool, 0, count)

    def timestamp(self, pool, index: int, stage: int = COMPUTE) -> None:
        lib.vkCmdWriteTimestamp(self.cb, stage, pool, index)

    def end(self):
        check(lib.vkEndCommandBuffer(self.cb), "vkEndCommandBuffer")
        return self.cb


class Pending:
    """A submitted batch: its fence and what must stay alive until it completes (a plain slotted class:
    one is made per run)."""

    __slots__ = ("fence", "recycle", "submitted_ns")

    def __init__(self, fence: Any, recycle: list | tuple = (), submitted_ns: int = 0) -> None:
        self.fence = fence
        self.recycle = recycle  # one-time command buffers to free afterwards
        self.submitted_ns = submitted_ns  # perf_counter_ns at the submit: how long the wait took


class Submitter:
    """The command pool, a fence pool and the compute queue of one device."""

    def __init__(self, device, queue, family: int, spin: SpinBudget | None = None) -> None:
        self.device = device
        self.queue = queue
        ci = new_struct("VkCommandPoolCreateInfo", vk.VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                        flags=vk.VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, queueFamilyIndex=family)
        self.pool = create("VkCommandPool*", lib.vkCreateCommandPool, device, ci, NULL, what="vkCreateCommandPool")
        self.free_fences: list[Any] = []
        self.free_cbs: list[Any] = []
        self.pending: list[Pending] = []
        self.submits = 0  # vkQueueSubmit calls made (tests and benchmarks check "one per run")
        self._submit = new_struct("VkSubmitInfo", vk.VK_STRUCTURE_TYPE_SUBMIT_INFO)
        self._waited = ffi.new("VkFence[1]")  # reused by every wait: nothing per call but the fence handle
        self.timeout_ns = int(timeout_s(TIMEOUT_SETTING) * 1e9)  # read once: the wait is on the hot path
        self.spin = spin or SpinBudget(0, 0)  # how long a wait polls before it blocks (hlx_core.device.waiting)

    def command_buffer(self):
        """A command buffer ready to record (recycled when possible)."""
        if self.free_cbs:
            cb = self.free_cbs.pop()
            check(lib.vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer")
            return cb
        ai = new_struct("VkCommandBufferAllocateInfo", vk.VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                        commandPool=self.pool, level=vk.VK_COMMAND_BUFFER_LEVEL_PRIMARY, commandBufferCount=1)
        return create("VkCommandBuffer*", lib.vkAllocateCommandBuffers, self.device, ai,
                      what="vkAllocateCommandBuffers")

    def release(self, cb) -> None:
        """Give back a command buffer that no pending submit uses."""
        self.free_cbs.append(cb)

    def _fence(self):
        ci = new_struct("VkFenceCreateInfo", vk.VK_STRUCTURE_TYPE_FENCE_CREATE_INFO)
        return create("VkFence*", lib.vkCreateFence, self.device, ci, NULL, what="vkCreateFence")

    @staticmethod
    def batch(cbs: list) -> Any:
        """``cbs`` as the array ``submit`` hands to vkQueueSubmit: an owner that submits the same command
        buffers every run builds it once instead of once per submit."""
        return ffi.new("VkCommandBuffer[]", cbs)

    def submit(self, cbs: list | Any, recycle: list | None = None) -> Pending:
        """Submit ``cbs`` (a list, or an array from ``batch``) in order as one batch; the caller waits with
        ``wait`` (or ``sync``)."""
        fence = self.free_fences.pop() if self.free_fences else self._fence()
        arr = cbs if isinstance(cbs, ffi.CData) else ffi.new("VkCommandBuffer[]", cbs)
        info = self._submit
        info.commandBufferCount = len(arr)
        info.pCommandBuffers = arr
        result = lib.vkQueueSubmit(self.queue, 1, info, fence)
        if result != 0:
            self.free_fences.append(fence)
            raise result_error(result, "vkQueueSubmit")
        self.submits += 1
        p = Pending(fence, recycle or (), time.perf_counter_ns())
        self.pending.append(p)
        return p

    def wait(self, p: Pending) -> None:
        """Wait for one batch, then recycle its fence and one-time command buffers."""
        fences = self._waited
        fences[0] = p.fence
        budget = self.spin.budget_ns()
        result = self._poll(p.fence, budget) if budget else NOT_READY
        if result == NOT_READY:
            result = lib.vkWaitForFences(self.device, 1, fences, 1, self.timeout_ns)
        self.spin.observe(time.perf_counter_ns() - p.submitted_ns)
        if result == TIMEOUT:
            raise VulkanError("E_TIMEOUT", timeout_message(self.timeout_ns / 1e9, TIMEOUT_SETTING,
                                                           "vkWaitForFences: VK_TIMEOUT"), result=result)
        if result != 0:
            raise result_error(result, "vkWaitForFences")
        # Retire the batch: its fence reset for reuse, its one-time command buffers recycled.
        result = lib.vkResetFences(self.device, 1, fences)
        if result != 0:
            raise result_error(result, "vkResetFences")
        self.free_fences.append(p.fence)
        if p.recycle:
            self.free_cbs.extend(p.recycle)
        self.pending.remove(p)

    def _poll(self, fence, budget_ns: int) -> int:
        """vkGetFenceStatus until the fence signals, fails, or ``budget_ns`` has passed (then NOT_READY). The
        raw cffi function: the ``vulkan`` package's wrapper raises an exception for every VK_NOT_READY."""
        status = lib.vkGetFenceStatus
        device = self.device
        deadline = time.perf_counter_ns() + budget_ns
        while True:
            result = status(device, fence)
            if result != NOT_READY or time.perf_counter_ns() > deadline:
                return result

    def sync(self) -> None:
        """Wait for every pending batch."""
        for p in list(self.pending):
            self.wait(p)

    def destroy(self) -> None:
        """Wait for the queue and destroy the pool and fences (a lost device is tolerated here)."""
        lib.vkQueueWaitIdle(self.queue)
        for p in self.pending:
            self.free_fences.append(p.fence)
        self.pending.clear()
        for f in self.free_fences:
            lib.vkDestroyFence(self.device, f, NULL)
        self.free_fences.clear()
        self.free_cbs.clear()
        lib.vkDestroyCommandPool(self.device, self.pool, NULL)


class QueryPool:
    """Timestamps for one recorded plan: query 0 before the first dispatch, query i+1 after stage i.

    ``timings`` reads every query with one vkGetQueryPoolResults into a buffer allocated once and converts
    them with the keys made once: a warm run pays one driver call and a few float operations for them."""

    def __init__(self, device, count: int, valid_bits: int, period_ns: float) -> None:
        self.device = device
        self.count = count
        self.mask = (1 << valid_bits) - 1 if valid_bits < 64 else None  # None: every bit is valid
        self.period_ns = period_ns
        ci = new_struct("VkQueryPoolCreateInfo", vk.VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                        queryType=vk.VK_QUERY_TYPE_TIMESTAMP, queryCount=count)
        self.handle = create("VkQueryPool*", lib.vkCreateQueryPool, device, ci, NULL, what="vkCreateQueryPool")
        self._data = ffi.new("uint64_t[]", count)
        self._stage_keys = tuple(f"stage{i}_gpu_ms" for i in range(count - 1))

    def timings(self) -> dict[str, float]:
        """``gpu_ms`` (query 0 to the last) and ``stage<i>_gpu_ms``, or {} when the results are not
        available. Read after the submit's fence: every result is then available."""
        result = lib.vkGetQueryPoolResults(self.device, self.handle, 0, self.count, 8 * self.count, self._data, 8,
                                           vk.VK_QUERY_RESULT_64_BIT)
        if result != 0:
            return {}
        mask, ms = self.mask, self.period_ns * 1e-6
        ticks = ffi.unpack(self._data, self.count)
        if mask is not None:
            ticks = [t & mask for t in ticks]
        out = {"gpu_ms": (ticks[-1] - ticks[0]) * ms}
        for key, start, end in zip(self._stage_keys, ticks, ticks[1:]):
            out[key] = (end - start) * ms
        return out

    def destroy(self) -> None:
        lib.vkDestroyQueryPool(self.device, self.handle, NULL)
