"""The compute contracts' ids, by their registry names: a contract is ``{id: {fields}}``, ids on the wire
are these digit strings."""
from __future__ import annotations

VULKAN_SHADER = "900"  # a SPIR-V compute shader (docs/CONTRACTS.md)
COMPUTE_KERNEL = "901"  # one dispatch of a 900 with its bindings
PIPELINE_CONFIG = "902"  # 901 stages in order, later ones reading earlier outputs on the device
