"""The handle-based Buffer/Kernel API on a VulkanContext (``ctx.buffer(n)``, ``ctx.kernel(spirv)``).

Launches are asynchronous (one submit each, ordered on the queue by a trailing barrier); ``ctx.sync()``,
``Buffer.download()``, ``Buffer.upload()`` and ``Buffer.free()`` wait for them. Every misuse is an
HLXError with a code: E_VK_BUFFER_SIZE, E_VK_BUFFER_DATA, E_VK_BUFFER_FREED, E_VK_BINDINGS, E_VK_DISPATCH,
E_VK_PUSH_CONSTANTS, E_VK_KERNEL_RELEASED, E_VK_CONTEXT_CLOSED, E_LIMIT_EXCEEDED, E_DEVICE_OOM.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from hlx_core.device.layout import host_bytes

from hlx_vulkan_raw.commands import (COMPUTE, HOST, HOST_READ, SHADER_READ, SHADER_WRITE, TRANSFER, TRANSFER_READ,
                                     TRANSFER_WRITE, UNIFORM_READ, Recorder)
from hlx_vulkan_raw.errors import guarded, usage
from hlx_vulkan_raw.memory import DeviceBuffer

if TYPE_CHECKING:
    from hlx_vulkan_raw.context import VulkanContext

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


class Buffer:
    """A device buffer of ``nbytes``; freed explicitly, by its context's cleanup, or at exit."""

    def __init__(self, ctx: "VulkanContext", nbytes: int) -> None:
        if not _is_int(nbytes) or nbytes <= 0:
            raise usage("E_VK_BUFFER_SIZE", f"buffer size must be a positive int, got {nbytes!r}")
        self.ctx = ctx
        self.nbytes = int(nbytes)
        self._buf: DeviceBuffer | None = ctx.allocator.create_buffer(self.nbytes)
        ctx._api_buffers[self._buf.serial] = self._buf  # the context frees it if this object is dropped

    def _live(self) -> DeviceBuffer:
        self.ctx._live()
        if self._buf is None:
            raise usage("E_VK_BUFFER_FREED", "this buffer was freed")
        return self._buf

    @property
    def freed(self) -> bool:
        return self._buf is None

    @guarded
    def upload(self, data: Any, offset: int = 0) -> None:
        """Copy bytes or an array into the buffer at ``offset`` (waits for pending launches first)."""
        with self.ctx._lock:
            buf = self._live()
            view = _bytes_of(data, "E_VK_BUFFER_DATA", "upload")
            if not _is_int(offset):
                raise usage("E_VK_BUFFER_SIZE", f"upload offset must be an int, got {type(offset).__name__}")
            offset = int(offset)
            if offset < 0 or offset + view.nbytes > self.nbytes:
                raise usage("E_VK_BUFFER_SIZE", f"upload of {view.nbytes} bytes at offset {offset} does not fit "
                            f"a {self.nbytes}-byte buffer")
            if not view.nbytes:
                return
            ctx = self.ctx
            ctx.submitter.sync()
            if buf.host_visible:
                buf.write(view, offset)
                return
            ctx.staging.reset(view.nbytes)
            ctx.staging.buffer.write(view, 0)
            rec = Recorder(ctx.submitter.command_buffer(), one_time=True)
            rec.copy(ctx.staging.buffer.handle, 0, buf.handle, offset, view.nbytes)
            rec.barrier(TRANSFER, TRANSFER_WRITE, COMPUTE | TRANSFER | HOST, _ALL_ACCESS)
            cb = rec.end()
            ctx.submitter.wait(ctx.submitter.submit([cb], recycle=[cb]))

    @guarded
    def download(self) -> bytes:
        """The buffer's bytes, after every pending launch has finished."""
        with self.ctx._lock:
            buf = self._live()
            ctx = self.ctx
            ctx.submitter.sync()
            if buf.host_visible:
                return buf.read()
            ctx.staging.reset(self.nbytes)
            rec = Recorder(ctx.submitter.command_buffer(), one_time=True)
            rec.copy(buf.handle, 0, ctx.staging.buffer.handle, 0, self.nbytes)
            rec.barrier(TRANSFER, TRANSFER_WRITE, HOST, HOST_READ)
            cb = rec.end()
            ctx.submitter.wait(ctx.submitter.submit([cb], recycle=[cb]))
            return ctx.staging.buffer.read(self.nbytes)

    @guarded
    def free(self) -> None:
        """Release the device memory; later use raises E_VK_BUFFER_FREED (freeing twice is a no-op)."""
        with self.ctx._lock:
            if self._buf is None or self.ctx.closed:
                self._buf = None
                return
            self.ctx.submitter.sync()
            self._release()

    def _release(self) -> None:
        if self._buf is not None:
            self.ctx._free_api_buffer(self._buf.serial)
            self._buf = None

    def __del__(self) -> None:
        buf = self.__dict__.get("_buf")
        if buf is not None:
            self.ctx._graveyard.append(buf.serial)  # freed by the context at its next call (GC-safe)

    def __repr__(self) -> str:
        return f"<Buffer {self.nbytes} bytes{' freed' if self._buf is None else ''}>"


class Kernel:
    """A compute shader ready to launch on buffers (binding i gets ``buffers[i]`` in binding order)."""

    def __init__(self, ctx: "VulkanContext", spirv: bytes, entry_point: str = "main") -> None:
        self.ctx = ctx
        self.entry_point = entry_point
        self._sets: "OrderedDict[tuple, tuple]" = OrderedDict()
        self._pipes: dict[tuple[int, int, int] | None, Any] = {}  # local size -> pipeline
        self._released = False
        module, self.info = ctx.shaders.load(spirv, entry_point)
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
        ctx = self.ctx
        with ctx._lock:
            ctx._live()
            ctx._collect()
            if self._released:
                raise usage("E_VK_KERNEL_RELEASED", "this kernel was released")
            gsize = self._triple(global_size, "global_size")
            lsize = None if local_size is None else self._triple(local_size, "local_size")
            pipe = self._pipes.get(lsize)
            if pipe is None:  # pipelines live as long as the context, so the kernel may keep them
                pipe = self._pipes[lsize] = ctx.pipelines.get(self._spirv, self.entry_point, lsize)
            bindings = self._bindings
            if isinstance(buffers, Buffer) or not isinstance(buffers, (list, tuple)):
                raise usage("E_VK_BINDINGS", f"buffers must be a list or tuple of Buffers, got "
                            f"{type(buffers).__name__}")
            if len(buffers) != len(bindings):
                raise usage("E_VK_BINDINGS", f"kernel {self.entry_point!r} has {len(bindings)} bindings "
                            f"{bindings}, {len(buffers)} buffers were given")
            devbufs = []
            for i, b in enumerate(buffers):
                if not isinstance(b, Buffer) or b.ctx is not ctx:
                    raise usage("E_VK_BINDINGS", f"buffers[{i}] is not a Buffer of this context")
                devbufs.append(b._live())
            push = _bytes_of(push_constants, "E_VK_PUSH_CONSTANTS", "push_constants").tobytes()
            if len(push) > pipe.push_size:
                raise usage("E_VK_PUSH_CONSTANTS", f"{len(push)} bytes of push constants, the shader's push "
                            f"block has {pipe.push_size}")
            groups = tuple(math.ceil(g / l) for g, l in zip(gsize, pipe.workgroup))
            limit = ctx.phys.limits["maxComputeWorkGroupCount"]
            if any(g > m for g, m in zip(groups, limit)):
                raise usage("E_LIMIT_EXCEEDED", f"global size {gsize} needs {groups} workgroups, over "
                            f"maxComputeWorkGroupCount {limit}")
            if len(ctx.submitter.pending) >= MAX_PENDING:
                ctx.submitter.sync()
            dset = self._set(pipe, dict(zip(bindings, devbufs)))
            rec = Recorder(ctx.submitter.command_buffer(), one_time=True)
            rec.dispatch(pipe, dset, push, groups)
            rec.barrier(COMPUTE, SHADER_WRITE, COMPUTE | TRANSFER | HOST, _ALL_ACCESS)
            cb = rec.end()
            ctx.submitter.submit([cb], recycle=[cb])

    @staticmethod
    def _triple(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
        vals = [value] if _is_int(value) else list(value) if isinstance(value, (list, tuple)) else []
        if not 1 <= len(vals) <= 3 or any(not _is_int(v) or v < 1 for v in vals):
            raise usage("E_VK_DISPATCH", f"{name} must be 1 to 3 positive ints, got {value!r}")
        return tuple(int(v) for v in vals) + (1,) * (3 - len(vals))  # type: ignore[return-value]

    def _set(self, pipe, by_binding: dict[int, DeviceBuffer]):
        key = (pipe.key, tuple(b.serial for b in by_binding.values()))
        hit = self._sets.get(key)
        if hit is not None:
            self._sets.move_to_end(key)
            return hit[0]
        if len(self._sets) >= SETS_PER_KERNEL:
            self.ctx.submitter.sync()  # an evicted set may still be in use by a pending launch
            _, (old, entry) = self._sets.popitem(last=False)
            self.ctx.pipelines.free_set(old, entry)
        dset, entry = self.ctx.pipelines.allocate_set(pipe)
        self.ctx.pipelines.write_set(dset, pipe, by_binding)
        self._sets[key] = (dset, entry)
        return dset

    def _forget(self, serial: int) -> None:
        """Drop cached descriptor sets that point at a buffer being freed."""
        for key in [k for k in self._sets if serial in k[1]]:
            dset, entry = self._sets.pop(key)
            self.ctx.pipelines.free_set(dset, entry)

    @guarded
    def release(self) -> None:
        """Free this kernel's descriptor sets (the pipeline stays cached in the context)."""
        with self.ctx._lock:
            if not self.ctx.closed:
                self.ctx.submitter.sync()
            self._release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        if self.ctx.device is not None:
            for dset, entry in self._sets.values():
                self.ctx.pipelines.free_set(dset, entry)
        self._sets.clear()

    def __del__(self) -> None:
        sets = self.__dict__.get("_sets")
        if sets and not self.__dict__.get("_released") and not self.ctx.closed:
            self.ctx._dead_sets.extend(sets.values())  # freed by the context at its next call (GC-safe)
