"""The HLXError tree and the one list of error codes.

Every error HLX raises on bad input is an ``HLXError`` with a stable ``code`` (``E_...``) that callers and
tests match on, a human message, and where it applies the ``path`` of the offending field. Subclasses only
group codes by layer so callers can catch a layer; the code is what identifies the error. ``CODES`` lists
every code HLX raises with its meaning; raise sites write the code as a string literal, and
tests/test_error_codes.py keeps the source, ``CODES`` and docs/ERRORS.md in step.
"""
from __future__ import annotations

from functools import partial

#: Every code HLX raises, by layer (in the order of the exception classes below) -> what it means.
CODES: dict[str, str] = {
    # codec (CodecError)
    "E_LC_PARSE": "bytes that are not canonical LC-B: truncated, a non-shortest form, -0.0, bad or non-NFC "
                  "UTF-8, trailing bytes, a malformed tensor payload",
    "E_FLOAT_SPECIAL": "a NaN or infinite float, which LC-B neither encodes nor decodes",
    "E_FIELD_ORDER": "map keys out of order or repeated in LC-B bytes, or two keys that normalise to the same "
                     "string",
    "E_DEPTH_EXCEEDED": "containers nested deeper than LC-B's 64 levels, or JSON too deep for the command line",
    "E_TYPE": "a value LC-B cannot encode (its type, an int out of range, a non-str map key, a non-NFC string, "
              "a tensor's dtype or rank) or bytes it cannot read (an unknown ext type, a non-bytes input)",
    "E_SIZE_EXCEEDED": "an encoding or input over the size limit (set_limits), or a string, bytes, container "
                       "or tensor over its 32-bit length",
    # handle and store (HandleError)
    "E_HANDLE_INVALID": "not a well-formed handle: &h_<tag>_<64 hex> with a known tag and a 32-byte digest",
    "E_HANDLE_NOT_FOUND": "the store holds no object under the handle",
    "E_INTEGRITY": "stored bytes do not hash to their handle (a corrupt file, the wrong handle given to put, a "
                   "borrowed buffer that changed); the object is removed",
    "E_STORE": "a bad argument to a store (not a Store, a bad path, chunks or gc arguments) or a file-system "
               "error of a DiskStore",
    # contract (ContractError)
    "E_CONTRACT_UNKNOWN": "a contract id HLX does not know, or one hlx.run does not execute (it runs 901 and 902)",
    "E_CONTRACT_STRUCTURE": "a contract shaped wrongly: not a one-id map or a contract's handle, an unknown "
                            "field, bindings, dispatch or push constants that do not fit the shader, a bad "
                            "pipeline step",
    "E_CONTRACT_FIELD_MISSING": "a required contract field, or a param that the push-constant layout names, is "
                                "absent",
    "E_CONTRACT_FIELD_TYPE": "a field or kernel-helper argument of the wrong type or out of range (a handle, a "
                             "scalar, a specialization constant, a $bytes/$tensor/$npy/$file input)",
    "E_SHAPE": "tensor shapes the kernel cannot take: the wrong rank, operands that disagree, sizes past 32-bit "
               "indices or one dispatch; an output shape no LC-B tensor can have (over 32 dimensions, or over the "
               "size limit with a 0 dimension counted as 1)",
    "E_DTYPE": "a tensor dtype the kernel does not take, or operands whose dtypes differ",
    # SPIR-V (SpirvError)
    "E_SPIRV_INVALID": "SPIR-V that fails the header checks or reflection, lacks the entry point, or that "
                       "spirv-val or the driver rejects; a module to validate when no spirv-val is found",
    "E_COMPILE": "hlx.compile_glsl (hlx.Kernel given GLSL, hlx shader pack) cannot compile: a GLSL error "
                 "(the compiler's message names the line), bad options, or no glslangValidator",
    # backend and device (BackendError)
    "E_BACKEND": "a BackendError raised without a code of its own",
    "E_BACKEND_UNKNOWN": "no installed backend has this name, or the name is not a string",
    "E_BACKEND_UNAVAILABLE": "the backend cannot run here as asked: no library, loader, driver or device, an "
                             "option it cannot use, or the device failed to open",
    "E_BACKEND_CLOSED": "a closed session, or a closed Vulkan context or one of its handles, was used",
    "E_BACKEND_FORKED": "a session opened by the process this one was forked from was used (GPU driver state "
                        "does not survive fork: hlx.run opens the child's own; or use the spawn or forkserver "
                        "start method)",
    "E_DEVICE_UNKNOWN": "no device of the backend matches the selector (an index, a name substring, a UUID), or "
                        "the selector is of another type",
    "E_UNSUPPORTED": "the device lacks a feature, capability, extension or API version that a shader or a "
                     "request needs",
    "E_LIMIT_EXCEEDED": "a plan or call exceeds a device limit (workgroups, workgroup size, shared memory, buffer "
                        "or binding size, push constants, descriptors); the message names the limit and its value",
    "E_DEVICE_OOM": "the device is out of memory, or an allocation is larger than its memory heaps allow",
    "E_HOST_OOM": "the host ran out of memory (the graphics driver, or the copy a tensor encoding needs)",
    "E_DEVICE_LOST": "the device was lost (a driver reset, a hang, a removed device)",
    "E_TIMEOUT": "a wait for the device took longer than allowed (HLX_VULKAN_TIMEOUT_S, HLX_WGPU_TIMEOUT_S; the "
                 "run stays on the device and hlx.run uses a new session next), or a result was not ready",
    "E_BACKEND_INTERNAL": "an unexpected failure inside the graphics API or its Python binding that maps to no "
                          "other code",
    "E_NO_REFERENCE": "no registered kernel of this name has a NumPy reference, or its reference models another "
                      "shader than the stage runs",
    "E_REFERENCE_FAILED": "a kernel's NumPy reference raised",
    "E_REFERENCE_OUTPUT": "a kernel's NumPy reference returned the wrong number or shape of arrays",
    "E_KERNEL_CONFLICT": "a kernel name is already registered (replace=True overrides it)",
    "E_PLUGIN": "a plugin was refused or misbehaved: it failed to load or register, open returned no Session, "
                "execute raised or returned outputs unlike the plan's",
    "E_NONDETERMINISTIC": "a run checked against its memo record (memo=\"verify\") gave other output bytes; both "
                          "records are kept as evidence",
    "E_EXECUTOR": "an executor spec HLX does not know (hlx.executor, HLX_CLUSTER), a closed executor, or a "
                  "cluster with no worker that runs the backend asked for",
    "E_WORKER_LOST": "a contract's Dask workers died more often than the engine retries, or the cluster went "
                     "away before the contract finished",
    # Vulkan only (VulkanError in hlx_vulkan_raw)
    "E_VK_ERROR": "a VkResult with no more specific code (named in the message), or a Vulkan backend failure "
                  "that no other code fits (no fitting memory type, a staging overflow)",
    "E_VK_INIT": "Vulkan cannot start: older than 1.1, instance or device creation failed, a layer, extension "
                 "or feature is missing, no compute queue",
    "E_VK_MEMORY_MAP": "mapping device memory into the host failed",
    "E_VK_VALIDATION": "the driver returned VK_ERROR_VALIDATION_FAILED_EXT",
    "E_VK_SPEC_CONSTANT": "a specialization constant value that does not fit its type, or an id the entry point "
                          "does not declare",
    "E_VK_WORKGROUP": "a workgroup size that differs from the shader's in a dimension with no local_size_*_id "
                      "constant",
    "E_VK_BINDINGS": "the buffers are not a list or tuple of this context's Buffers matching the kernel's "
                     "bindings",
    "E_VK_PUSH_CONSTANTS": "push constants that are not bytes or an array, or longer than the shader's push block",
    "E_VK_BUFFER_SIZE": "a buffer size that is not a positive int, or an upload offset or length that does not "
                        "fit the buffer",
    "E_VK_BUFFER_DATA": "upload data that is neither bytes nor an array",
    "E_VK_BUFFER_FREED": "a freed Buffer was used",
    "E_VK_KERNEL_RELEASED": "a released Kernel was launched",
    "E_VK_DISPATCH": "a global or local size that is not 1 to 3 positive ints",
    # wgpu only
    "E_WGPU_VALIDATION": "wgpu or naga refused a shader, layout, pipeline or command (their message included)",
    # configuration and command line (HLXError)
    "E_HLX": "an HLXError raised without a code of its own",
    "E_CONFIG": "an HLX_* environment variable or a backend option with a value HLX cannot use (named in the "
                "message)",
    "E_IO": "the command line cannot or may not read a file: missing, not a regular file (a device, "
            "FIFO, directory), outside the contract's folder and every --allow-path, a .npy whose header does "
            "not fit its data, not UTF-8 text; or cannot write one (hlx bench --csv, --plot)",
    "E_USAGE": "a command-line invocation lacks a required option, or gives one a value it cannot use (hlx bench: "
               "an unknown suite, a size or count that is not a positive integer)",
    "E_DEPENDENCY": "an optional package a command needs is not installed (pytest for hlx conformance, "
                    "matplotlib for hlx bench --plot)",
    "E_BENCH": "hlx bench could not measure a case: a result differs from NumPy's float64, or a benchmark's "
               "child process failed",
    "E_RESULT_OUTPUTS": "np.asarray(result) or result.__dlpack__() on a Result that has other than one output "
                        "(result.arrays() lists them all)",
}


class HLXError(Exception):
    """Base of every HLX error: ``code`` is stable, ``message`` says what and where. Raised as is for
    configuration (HLX_* environment variables, backend options) and the command line."""

    default_code = "E_HLX"

    def __init__(self, code: str | None = None, message: str = "", *, path: str | None = None) -> None:
        self.code = code or self.default_code
        self.message = message
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"[{self.code}]{where} {message}".rstrip())

    def __reduce__(self) -> tuple:
        # Errors cross processes (Dask workers, multiprocessing): rebuild from the code and message, not from
        # the formatted text Exception would pickle, and keep every attribute a subclass adds.
        return (partial(type(self), path=self.path), (self.code, self.message), self.__dict__)


class CodecError(HLXError):
    """LC-B encode and decode failures."""

    default_code = "E_LC_PARSE"


class HandleError(HLXError):
    """Handle and store failures."""

    default_code = "E_HANDLE_INVALID"


class ContractError(HLXError):
    """Contract validation failures, including the shapes and dtypes the kernel helpers check."""

    default_code = "E_CONTRACT_STRUCTURE"


class SpirvError(HLXError):
    """SPIR-V header, reflection and compilation failures."""

    default_code = "E_SPIRV_INVALID"


class BackendError(HLXError):
    """Backend selection, plugin, kernel registry, device and execution failures, and every failure a
    graphics API reports (its own codes carry its prefix: E_VK_*, E_WGPU_*)."""

    default_code = "E_BACKEND"
