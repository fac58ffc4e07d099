"""Building Plans directly from SPIR-V for the Vulkan tests (what the runtime does from contracts)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import blake3
import numpy as np

from hlx_core.codec.handle import Handle
from hlx_core.plan import InputRef, OutputRef, Plan, Shader, Stage
from hlx_core.spirv.reflect import reflect_entry


def handle_of(array: np.ndarray) -> Handle:
    """A content handle for test inputs (BLAKE3 of dtype, shape and bytes)."""
    h = blake3.blake3(repr((array.dtype.str, array.shape)).encode() + np.ascontiguousarray(array).tobytes())
    return Handle.from_digest("tensor", h.digest())


def inp(array: np.ndarray) -> InputRef:
    a = np.ascontiguousarray(array)
    a.setflags(write=False)
    return InputRef(handle_of(a), a)


def out(dtype, shape) -> OutputRef:
    return OutputRef(np.dtype(dtype), tuple(shape))


def shader(spv: bytes, entry: str = "main") -> Shader:
    return Shader(Handle.from_digest("blob", blake3.blake3(spv).digest()), spv, entry, reflect_entry(spv, entry))


def stage(name: str, spv: bytes, bindings, dispatch, push: bytes = b"", workgroup=None, spec=()) -> Stage:
    sh = shader(spv)
    return Stage(kernel_name=name, shader=sh, workgroup_size=tuple(workgroup or sh.info.local_size),
                 dispatch=tuple(dispatch), bindings=tuple(bindings), push_constants=push,
                 specialization_constants=tuple(spec))


def plan(*stages: Stage, outputs=None, barriers=()) -> Plan:
    """A Plan whose key depends on every stage (as the runtime's contract handle would)."""
    text = repr([(s.kernel_name, s.shader.handle, s.dispatch, s.push_constants, s.specialization_constants,
                  s.workgroup_size, [getattr(b, "handle", b) for b in s.bindings]) for s in stages])
    key = Handle.from_digest("contract", blake3.blake3(text.encode()).digest())
    if outputs is None:
        last = len(stages) - 1
        outputs = tuple((last, j) for j in range(len(stages[last].output_slots)))
    return Plan(key=key, stages=tuple(stages), outputs=tuple(outputs), barriers=tuple(barriers))



@contextmanager
def open_session(device=None) -> Iterator:
    """A VulkanSession of its own (for tests that set environment variables read when it opens)."""
    from hlx_vulkan_raw import VulkanSession
    session = VulkanSession(device)
    try:
        yield session
    finally:
        session.close()
