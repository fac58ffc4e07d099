"""The HLXError tree.

Every error HLX raises on bad input is an ``HLXError`` with a stable ``code`` (``E_...``) that callers and
tests match on, a human message, and where it applies the ``path`` of the offending field. Subclasses only
group codes by layer so callers can catch a layer; the code is what identifies the error.
"""
from __future__ import annotations


class HLXError(Exception):
    """Base of every HLX error: ``code`` is stable, ``message`` says what and where. Raised as is for
    E_CONFIG (an HLX_* environment variable that does not parse, named in the message) and by the command
    line: E_IO (a file it cannot read) and E_USAGE (a missing option)."""

    default_code = "E_HLX"

    def __init__(self, code: str | None = None, message: str = "", *, path: str | None = None) -> None:
        self.code = code or self.default_code
        self.message = message
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"[{self.code}]{where} {message}".rstrip())


class CodecError(HLXError):
    """LC-B encode/decode failures: E_LC_PARSE, E_FLOAT_SPECIAL, E_FIELD_ORDER, E_DEPTH_EXCEEDED, E_TYPE,
    E_SIZE_EXCEEDED."""

    default_code = "E_LC_PARSE"


class HandleError(HLXError):
    """Handle and store failures: E_HANDLE_INVALID, E_HANDLE_NOT_FOUND, E_INTEGRITY, E_STORE."""

    default_code = "E_HANDLE_INVALID"


class ContractError(HLXError):
    """Contract validation failures: E_CONTRACT_FIELD_MISSING, E_CONTRACT_FIELD_TYPE, E_CONTRACT_STRUCTURE,
    E_CONTRACT_UNKNOWN (and E_SHAPE / E_DTYPE from kernel helpers)."""

    default_code = "E_CONTRACT_STRUCTURE"


class SpirvError(HLXError):
    """SPIR-V header and reflection failures: E_SPIRV_INVALID; E_SPIRV_COMPILE when ``hlx shader pack``
    cannot compile GLSL."""

    default_code = "E_SPIRV_INVALID"


class BackendError(HLXError):
    """Backend selection and execution failures: E_BACKEND_UNKNOWN, E_BACKEND_UNAVAILABLE, E_BACKEND_CLOSED,
    E_DEVICE_UNKNOWN, E_NO_REFERENCE, E_REFERENCE_FAILED, E_REFERENCE_OUTPUT, E_KERNEL_CONFLICT, E_DEVICE_OOM,
    E_DEVICE_LOST, E_LIMIT_EXCEEDED, E_VK_*, E_WGPU_*, E_PLUGIN."""

    default_code = "E_BACKEND"
