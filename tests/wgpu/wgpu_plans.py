"""Building Plans directly for the wgpu tests (what the planner makes from a contract), so the backend is
tested on shaders the kernel library does not have: spec-constant workgroup sizes, WGSL fallbacks, refusals."""
from __future__ import annotations

import struct
from pathlib import Path

import blake3
import numpy as np

from hlx_core.codec.handle import Handle
from hlx_core.plan import InputRef, OutputRef, Plan, Shader, Stage
from hlx_core.spirv.reflect import reflect_entry

SHADERS = Path(__file__).parent / "shaders"
POISON = 0x7FC0DEAD  # a NaN payload no kernel computes


def _digest(*parts: bytes) -> bytes:
    h = blake3.blake3()
    for part in parts:
        h.update(part)
    return h.digest()


def make_shader(spirv: bytes, wgsl: str | None = None) -> Shader:
    return Shader(Handle.from_digest("blob", _digest(spirv)), spirv, "main", reflect_entry(spirv), wgsl)


def inp(array: np.ndarray) -> InputRef:
    array = np.ascontiguousarray(array)
    key = _digest(str(array.dtype).encode(), str(array.shape).encode(), array.tobytes())
    return InputRef(Handle.from_digest("tensor", key), array)


def out(dtype: str, *shape: int) -> OutputRef:
    return OutputRef(np.dtype(dtype), tuple(shape))


def make_stage(name: str, shader: Shader, dispatch: tuple[int, int, int], bindings: list,
               push: bytes = b"", spec: dict[int, float] | None = None,
               workgroup: tuple[int, int, int] | None = None) -> Stage:
    return Stage(name, shader, workgroup or shader.info.local_size, dispatch, tuple(bindings), push,
                 tuple(sorted((spec or {}).items())))


def make_plan(*stages: Stage, outputs: list[tuple[int, int]] | None = None) -> Plan:
    key = Handle.from_digest("contract", _digest(repr(stages).encode(),
                                                 *(b.handle.encode() for s in stages for b in s.bindings
                                                   if isinstance(b, InputRef))))
    return Plan(key, tuple(stages), tuple(outputs or [(len(stages) - 1, 0)]))



def poison(session, spirv: dict[str, bytes], nbytes: int, count: int = 3) -> None:
    """Fill ``count`` pooled buffers of ``nbytes`` with POISON, so the next run of that size gets dirty
    buffers for its outputs too."""
    n = nbytes // 4
    stage = make_stage("fill", make_shader(spirv["fill"]), (-(-n // 64), 1, 1), [out("uint32", n)],
                       struct.pack("<II", n, POISON))
    got = session.execute(make_plan(*[stage] * count, outputs=[(i, 0) for i in range(count)])).arrays
    assert all((g == POISON).all() for g in got)
