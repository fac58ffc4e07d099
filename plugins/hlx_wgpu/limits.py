"""Checking a plan against the device's limits before anything is allocated or recorded.

wgpu would refuse most of these too, but later and with a message about a buffer or a pass rather than
about the contract; checking first names the stage, the binding, the limit and the adapter's value, and
leaves the device untouched.
"""
from __future__ import annotations

from hlx_core.device.layout import BufferLayout
from hlx_core.plan import Plan

from hlx_wgpu.buffers import BUFFER_ALIGN, align
from hlx_wgpu.errors import limit_exceeded


def check_plan(plan: Plan, layout: BufferLayout, limits: dict[str, int], adapter: str) -> None:
    """Raise E_LIMIT_EXCEEDED for the first thing in ``plan`` the device cannot do."""

    def need(what: str, needed: int, limit: str) -> None:
        if limit in limits and needed > limits[limit]:
            raise limit_exceeded(what, needed, limit, limits[limit], adapter)

    for slot in layout.slots:
        need(f"buffer {slot.index} ({slot.alloc_bytes} bytes)", align(slot.alloc_bytes, BUFFER_ALIGN),
             "max-buffer-size")
    for s, stage in enumerate(plan.stages):
        where = f"stage {s} ({stage.kernel_name})"
        kinds = {b.binding: b.kind for b in stage.shader.info.bindings if b.set == 0}
        for i, slot_index in enumerate(layout.bindings[s]):
            slot = layout.slots[slot_index]
            limit = "max-uniform-buffer-binding-size" if kinds.get(i) == "uniform" else \
                "max-storage-buffer-binding-size"
            need(f"{where} binding {i} ({slot.nbytes} bytes)", align(slot.alloc_bytes, 4), limit)
        need(f"{where}: {len(stage.bindings)} storage bindings", len(stage.bindings),
             "max-storage-buffers-per-shader-stage")
        for axis, size, count in zip("xyz", stage.workgroup_size, stage.dispatch):
            need(f"{where} workgroup size {axis}", size, f"max-compute-workgroup-size-{axis}")
            need(f"{where} dispatch {axis} (workgroups)", count, "max-compute-workgroups-per-dimension")
        x, y, z = stage.workgroup_size
        need(f"{where} workgroup {x}x{y}x{z} invocations", x * y * z, "max-compute-invocations-per-workgroup")
        need(f"{where} shared memory bytes", stage.shared_memory_bytes, "max-compute-workgroup-storage-size")
        push = max(len(stage.push_constants), stage.shader.info.push_constant_size)
        # Push constants too large for immediates go through a uniform buffer, so that is the real bound.
        need(f"{where} push constants", push, "max-uniform-buffer-binding-size")
