"""wgpu-native entry points that wgpu-py 0.32 declares (its cffi header) but does not wrap.

* ``create_trusted_module``: ``wgpuDeviceCreateShaderModuleTrusted`` with no runtime checks. By default naga
  adds a bounds check to every array access and bounds every loop; the raw Vulkan backend runs the same
  SPIR-V without either, so for HLX these checks cost speed (notably in GEMM's shared-memory loops) without
  adding safety the product relies on. ``HLX_WGPU_RUNTIME_CHECKS=1`` keeps wgpu's checked modules.
* ``timestamp_period_ns``: ``wgpuQueueGetTimestampPeriod``, to turn timestamp ticks into nanoseconds.

Both go through wgpu-py's error-capturing call wrapper, so failures raise its GPUError types as usual.
"""
from __future__ import annotations

from typing import Any

from hlx_core.settings import env_flag

ENV_RUNTIME_CHECKS = "HLX_WGPU_RUNTIME_CHECKS"


def runtime_checks_wanted() -> bool:
    return env_flag(ENV_RUNTIME_CHECKS, False)


def create_trusted_module(device: Any, code: bytes | str, label: str) -> Any:
    """A shader module from SPIR-V (bytes) or WGSL (str) without naga's runtime checks."""
    from wgpu.backends.wgpu_native import _api

    ffi, lib = _api.ffi, _api.lib
    if isinstance(code, bytes):
        words = ffi.new("uint8_t[]", code)
        source = _api.new_struct_p("WGPUShaderSourceSPIRV *", codeSize=len(code) // 4,
                                   code=ffi.cast("uint32_t *", words))
        source[0].chain.sType = lib.WGPUSType_ShaderSourceSPIRV
    else:
        source = _api.new_struct_p("WGPUShaderSourceWGSL *", code=_api.to_c_string_view(code))
        source[0].chain.sType = lib.WGPUSType_ShaderSourceWGSL
    source[0].chain.next = ffi.NULL
    descriptor = _api.new_struct_p("WGPUShaderModuleDescriptor *",
                                   nextInChain=ffi.cast("WGPUChainedStruct *", source),
                                   label=_api.to_c_string_view(label))
    module_id = _api.libf.wgpuDeviceCreateShaderModuleTrusted(device._internal, descriptor,
                                                              lib.WGPUShaderRuntimeChecks_None)
    if module_id == ffi.NULL:
        raise RuntimeError("shader module creation failed")
    return _api.GPUShaderModule(label, module_id, device)


def timestamp_period_ns(queue: Any) -> float:
    """Nanoseconds per timestamp tick."""
    from wgpu.backends.wgpu_native._ffi import lib

    return float(lib.wgpuQueueGetTimestampPeriod(queue._internal)) or 1.0
