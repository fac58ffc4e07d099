"""``shader_contract``: build a validated 900 VULKAN_SHADER from SPIR-V bytes."""
from __future__ import annotations

from hlx_core.contracts.ids import VULKAN_SHADER
from hlx_core.contracts.validate import validate


def shader_contract(spirv: bytes, entry_point: str = "main", wgsl_source: str | None = None) -> dict:
    """``{"900": {...}}`` with the descriptor bindings reflected from ``spirv`` (in (set, binding) order).
    ``wgsl_source`` is for backends that cannot take this SPIR-V. Raises SpirvError E_SPIRV_INVALID for
    malformed SPIR-V or when ``entry_point`` is not a compute entry point of the module."""
    fields: dict = {"spirv_binary": spirv, "entry_point": entry_point, "shader_stage": "compute"}
    if wgsl_source is not None:
        fields["wgsl_source"] = wgsl_source
    return validate({VULKAN_SHADER: fields})
