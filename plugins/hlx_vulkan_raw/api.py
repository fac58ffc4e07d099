"""The handle API's Buffer and Kernel, and the ContextState a VulkanContext shares with them.

Launches are asynchronous (one submit each, ordered on the queue by a trailing barrier); ``ctx.sync()``,
``Buffer.download()``, ``Buffer.upload()`` and ``Buffer.free()`` wait for them. Every misuse is an
HLXError with a code: E_VK_BUFFER_SIZE, E_VK_BUFFER_DATA, E_VK_BUFFER_FREED, E_VK_BINDINGS, E_VK_DISPATCH,
E_VK_PUSH_CONSTANTS, E_VK_WORKGROUP, E_VK_KERNEL_RELEASED, E_BACKEND_CLOSED, E_LIMIT_EXCEEDED, E_DEVICE_OOM.
Unlike plans, which the planner and the device kit check, these arguments are checked here.
"""
from __future__ import annotations

import math
import threading
import weakref
from typing import Any, Sequence

import numpy as np

from hlx_core.device.layout import host_bytes
from hlx_core.device.lru import LRU

from hlx_vulkan_raw.commands import (
    COMPUTE,
    HOST,
    HOST_READ,
    SHADER_READ,
    SHADER_WRITE,
    TRANSFER,
    TRANSFER_READ,
    TRANSFER_WRITE,
    UNIFORM_READ,
    Recorder,
)
from hlx_vulkan_raw.core import DeviceCore
from hlx_vulkan_raw.errors import guarded, usage
from hlx_vulkan_raw.memory import DeviceBuffer
from hlx_vulkan_raw.pipelines import Pipeline, resolve_workgroup

MAX_PENDING = 64      # launches in flight before launch() waits
SETS_PER_KERNEL = 16  # cached descriptor sets per kernel (by bound buffers)
_ALL_ACCESS = SHADER_READ | SHADER_WRITE | UNIFORM_READ | TRANSFER_READ | TRANSFER_WRITE | HOST_READ


def _bytes_of(data: Any, code: str, what: str) -> memoryview:
    """The bytes of a bytes-like object or NumPy array (C order); anything else is ``code``."""
    if isinstance(data, np.ndarray):
        return host_bytes(data)
    try:
        view = memoryview(data)
        return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
    except TypeError:
        raise usage(code, f"{what} takes bytes or a NumPy array, got {type(data).__name__}") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class ContextState:
    """What one VulkanContext shares with its Buffers and Kernels: the device core, the lock every public
    call takes, the live buffers and kernels, and those garbage-collected without free()/release(), whose
    device objects are released at the next call (after the launches that may still use them)."""

    def __init__(self, core: DeviceCore) -> None:
        self.core = core
        self.lock = threading.RLock()
        self.closed = False
        self._buffers: dict[int, DeviceBuffer] = {}  # serial -> DeviceBuffer of every Buffer not yet freed
        self._kernels: "weakref.WeakSet[Kernel]" = weakref.WeakSet()
        self._graveyard: list[int] = []  # serials of Buffers garbage-collected without free()
        self._dead_sets: list[tuple] = []  # descriptor sets of Kernels garbage-collected without release()

    def live(self) -> None:
        if self.closed:
            raise usage("E_BACKEND_CLOSED", "this VulkanContext was cleaned up; create a new one")

    @property
    def buffer_count(self) -> int:
        return len(self._buffers)

    def new_buffer(self, nbytes: int) -> DeviceBuffer:
        """A device buffer the context frees at cleanup if its Buffer never does."""
        buf = self.core.allocator.create_buffer(nbytes)
        self._buffers[buf.serial] = buf
        return buf

    def add_kernel(self, kernel: "Kernel") -> None:
        self._kernels.add(kernel)

    def free_buffer(self, serial: int) -> None:
        """Free a buffer and the kernel descriptor sets that point at it (the caller has synced)."""
        buf = self._buffers.pop(serial, None)
        if buf is None:
            return
        for k in list(self._kernels):
            k.forget(serial)
        self.core.allocator.free(buf)

    def dropped_buffer(self, serial: int) -> None:
        """A Buffer was garbage-collected without free() (GC-safe: nothing is freed here)."""
        self._graveyard.append(serial)

    def dropped_sets(self, sets: list[tuple]) -> None:
        """A Kernel was garbage-collected without release() (GC-safe: nothing is freed here)."""
        self._dead_sets.extend(sets)

    def collect(self) -> None:
        """Free what was garbage-collected, after the launches that may still use it."""
        if self._graveyard or self._dead_sets:
            self.core.submitter.sync()
            while self._dead_sets:
                self.core.pipelines.free_set(*self._dead_sets.pop())
            while self._graveyard:
                self.free_buffer(self._graveyard.pop())

    def release(self) -> None:
        """Hand back every buffer and descriptor set (the core calls this when it closes, device idle)."""
        with self.lock:
            self.closed = True
            for k in list(self._kernels):
                k.free_sets()
            for serial in list(self._buffers):
                self.core.allocator.free(self._buffers.pop(serial))
            self._graveyard.clear()
            self._dead_sets.clear()  # their pools are destroyed with the core


class Buffer:
    """A device buffer of ``nbytes``; freed explicitly, by its context's cleanup, or at exit."""

    def __init__(self, state: ContextState, nbytes: int) -> None:
        if not _is_int(nbytes) or nbytes <= 0:
            raise usage("E_VK_BUFFER_SIZE", f"buffer size must be a positive int, got {nbytes!r}")
        self.state = state
        self.nbytes = int(nbytes)
        self._buf: DeviceBuffer | None = state.new_buffer(self.nbytes)

    def device_buffer(self) -> DeviceBuffer:
        """The live device buffer (E_BACKEND_CLOSED, E_VK_BUFFER_FREED otherwise)."""
        self.state.live()
        if self._buf is None:
            raise usage("E_VK_BUFFER_FREED", "this buffer was freed")
        return self._buf

    @property
    def freed(self) -> bool:
        return self._buf is None

    @guarded
    def upload(self, data: Any, offset: int = 0) -> None:
        """Copy bytes or an array into the buffer at ``offset`` (waits for pending launches first)."""
        with self.state.lock:
            buf = self.device_buffer()
            view = _bytes_of(data, "E_VK_BUFFER_DATA", "upload")
            if not _is_int(offset):
                raise usage("E_VK_BUFFER_SIZE", f"upload offset must be an int, got {type(offset).__name__}")
            offset = int(offset)
            if offset < 0 or offset + view.nbytes > self.nbytes:
                raise usage("E_VK_BUFFER_SIZE", f"upload of {view.nbytes} bytes at offset {offset} does not fit "
                            f"a {self.nbytes}-byte buffer")
            if not view.nbytes:
                return
            core = self.state.core
            core.submitter.sync()
            if buf.host_visible:
                buf.write(view, offset)
                return
            core.staging.reset(view.nbytes)
            core.staging.buffer.write(view, 0)
            rec = Recorder(core.submitter.command_buffer(), one_time=True)
            rec.copy(core.staging.buffer.handle, 0, buf.handle, offset, view.nbytes)
            rec.barrier(TRANSFER, TRANSFER_WRITE, COMPUTE | TRANSFER | HOST, _ALL_ACCESS)
            cb = rec.end()
            core.submitter.wait(core.submitter.submit([cb], recycle=[cb]))

    @guarded
    def download(self) -> bytes:
        """The buffer's bytes, after every pending launch has finished."""
        with self.state.lock:
            buf = self.device_buffer()
            core = self.state.core
            core.submitter.sync()
            if buf.host_visible:
                return buf.read()
            core.staging.reset(self.nbytes)
            rec = Recorder(core.submitter.command_buffer(), one_time=True)
            rec.copy(buf.handle, 0, core.staging.buffer.handle, 0, self.nbytes)
            rec.barrier(TRANSFER, TRANSFER_WRITE, HOST, HOST_READ)
            cb = rec.end()
            core.submitter.wait(core.submitter.submit([cb], recycle=[cb]))
            return core.staging.buffer.read(self.nbytes)

    @guarded
    def free(self) -> None:
        """Release the device memory; later use raises E_VK_BUFFER_FREED (freeing twice is a no-op)."""
        with self.state.lock:
            if self._buf is not None and not self.state.closed:
                self.state.core.submitter.sync()
                self.state.free_buffer(self._buf.serial)
            self._buf = None

    def __del__(self) -> None:
        buf = self.__dict__.get("_buf")
        if buf is not None:
            self.state.dropped_buffer(buf.serial)  # freed by the context at its next call (GC-safe)

    def __repr__(self) -> str:
        return f"<Buffer {self.nbytes} bytes{' freed' if self._buf is None else ''}>"


class Kernel:
    """A compute shader ready to launch on buffers (binding i gets ``buffers[i]`` in binding order)."""

    def __init__(self, state: ContextState, spirv: bytes, entry_point: str = "main") -> None:
        self.state = state
        self.entry_point = entry_point
        pipelines = state.core.pipelines
        # Descriptor sets by (pipeline, bound buffers); an evicted one is freed (launch() syncs first).
        self._sets: LRU[tuple, tuple] = LRU(SETS_PER_KERNEL, lambda _key, s: pipelines.free_set(*s))
        self._pipes: dict[tuple[int, int, int] | None, Pipeline] = {}  # local size -> pipeline
        self._released = False
        module, self.info = state.core.shaders.load(spirv, entry_point)
        self._bindings = [b.binding for b in self.info.bindings]
        self.shader_id = module.id
        self._spirv = module.spirv

    @property
    def local_size(self) -> tuple[int, int, int]:
        return self.info.local_size

    @guarded
    def launch(self, buffers: Sequence[Buffer], global_size: int | Sequence[int] = (1, 1, 1),
               local_size: Sequence[int] | None = None, push_constants: bytes = b"") -> None:
        """Dispatch enough workgroups to cover ``global_size`` invocations. ``local_size`` other than the
        shader's needs local_size_*_id specialization constants. Returns once submitted."""
        state = self.state
        with state.lock:
            state.live()
            state.collect()
            if self._released:
                raise usage("E_VK_KERNEL_RELEASED", "this kernel was released")
            core = state.core
            gsize = self._triple(global_size, "global_size")
            lsize = None if local_size is None else self._triple(local_size, "local_size")
            pipe = self._pipes.get(lsize)
            if pipe is None:  # pipelines live as long as the core, so the kernel may keep them
                self._check_pipeline(lsize)
                pipe = self._pipes[lsize] = core.pipelines.get(self._spirv, self.entry_point, lsize)
            bindings = self._bindings
            if isinstance(buffers, Buffer) or not isinstance(buffers, (list, tuple)):
                raise usage("E_VK_BINDINGS", f"buffers must be a list or tuple of Buffers, got "
                            f"{type(buffers).__name__}")
            if len(buffers) != len(bindings):
                raise usage("E_VK_BINDINGS", f"kernel {self.entry_point!r} has {len(bindings)} bindings "
                            f"{bindings}, {len(buffers)} buffers were given")
            devbufs = []
            for i, b in enumerate(buffers):
                if not isinstance(b, Buffer) or b.state is not state:
                    raise usage("E_VK_BINDINGS", f"buffers[{i}] is not a Buffer of this context")
                devbufs.append(b.device_buffer())
            push = _bytes_of(push_constants, "E_VK_PUSH_CONSTANTS", "push_constants").tobytes()
            if len(push) > pipe.push_size:
                raise usage("E_VK_PUSH_CONSTANTS", f"{len(push)} bytes of push constants, the shader's push "
                            f"block has {pipe.push_size}")
            groups = tuple(math.ceil(g / lo) for g, lo in zip(gsize, pipe.workgroup))
            limit = core.limits.max_workgroup_count
            if any(g > m for g, m in zip(groups, limit)):
                raise usage("E_LIMIT_EXCEEDED", f"global size {gsize} needs {groups} workgroups, over "
                            f"maxComputeWorkGroupCount {limit}")
            if len(core.submitter.pending) >= MAX_PENDING:
                core.submitter.sync()
            dset = self._set(pipe, dict(zip(bindings, devbufs)))
            rec = Recorder(core.submitter.command_buffer(), one_time=True)
            rec.dispatch(pipe, dset, push, groups)
            rec.barrier(COMPUTE, SHADER_WRITE, COMPUTE | TRANSFER | HOST, _ALL_ACCESS)
            cb = rec.end()
            core.submitter.submit([cb], recycle=[cb])

    @staticmethod
    def _triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
        vals = [value] if _is_int(value) else list(value) if isinstance(value, (list, tuple)) else []
        if not 1 <= len(vals) <= 3 or any(not _is_int(v) or v < 1 for v in vals):
            raise usage("E_VK_DISPATCH", f"{name} must be 1 to 3 positive ints, got {value!r}")
        return tuple(int(v) for v in vals) + (1,) * (3 - len(vals))  # type: ignore[return-value]

    def _check_pipeline(self, local_size: tuple[int, int, int] | None) -> None:
        """The workgroup size and push-constant block a launch at ``local_size`` would build a pipeline with,
        against the device's limits (E_LIMIT_EXCEEDED), before the driver sees them."""
        core = self.state.core
        lim = core.limits
        info = self.info
        size, _values = resolve_workgroup(info, local_size, ())
        if any(s > m for s, m in zip(size, lim.max_workgroup_size)) \
                or size[0] * size[1] * size[2] > lim.max_workgroup_invocations:
            raise usage("E_LIMIT_EXCEEDED", f"workgroup size {tuple(size)} exceeds {core.name}'s limits "
                        f"(per dimension {lim.max_workgroup_size}, {lim.max_workgroup_invocations} invocations)")
        if lim.max_push_constant_bytes is not None and info.push_constant_size > lim.max_push_constant_bytes:
            raise usage("E_LIMIT_EXCEEDED", f"push-constant block of {info.push_constant_size} bytes exceeds "
                        f"{core.name}'s maxPushConstantsSize {lim.max_push_constant_bytes}")

    def _set(self, pipe: Pipeline, by_binding: dict[int, DeviceBuffer]):
        key = (pipe.key, tuple(b.serial for b in by_binding.values()))
        hit = self._sets.get(key)
        if hit is not None:
            return hit[0]
        pipelines = self.state.core.pipelines
        if len(self._sets) >= SETS_PER_KERNEL:
            self.state.core.submitter.sync()  # the set put() evicts may still be in use by a pending launch
        dset, entry = pipelines.allocate_set(pipe)
        pipelines.write_set(dset, pipe, by_binding)
        self._sets.put(key, (dset, entry))
        return dset

    def forget(self, serial: int) -> None:
        """Free cached descriptor sets that point at a buffer being freed (the caller has synced)."""
        self._sets.discard_where(lambda key, _s: serial in key[1])

    @guarded
    def release(self) -> None:
        """Free this kernel's descriptor sets (the pipeline stays cached in the context)."""
        with self.state.lock:
            if not self.state.closed:
                self.state.core.submitter.sync()
                self.free_sets()
            self._released = True

    def free_sets(self) -> None:
        """Free every cached descriptor set now (no launch may still use them) and refuse later launches."""
        self._released = True
        self._sets.clear()

    def __del__(self) -> None:
        sets = self.__dict__.get("_sets")
        if sets and not self.__dict__.get("_released") and not self.state.closed:
            self.state.dropped_sets(list(sets.values()))  # freed by the context at its next call (GC-safe)
