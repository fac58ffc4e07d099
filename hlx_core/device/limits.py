"""Device limits in one backend-neutral form, and the one check of a plan against them.

Each GPU backend reads its API's limits into a ``DeviceLimits`` once per device and calls ``check_plan``
once per plan key, before anything is allocated or recorded: the driver would refuse most of these too,
but later and with a message about a buffer or a pass rather than about the contract. The check names the
stage, the binding, the limit and the device's value. What the planner already guarantees (binding count,
push constants against the shader's block) is not checked again here.
"""
from __future__ import annotations

from dataclasses import dataclass

from hlx_core.device.layout import BufferLayout, align
from hlx_core.errors import BackendError
from hlx_core.plan import Plan


@dataclass(frozen=True)
class DeviceLimits:
    """What one device can do for compute; ``None`` where the API sets no separate limit."""

    max_workgroup_count: tuple[int, int, int]
    max_workgroup_size: tuple[int, int, int]
    max_workgroup_invocations: int
    max_shared_memory_bytes: int
    max_storage_buffer_range: int
    max_uniform_buffer_range: int
    max_buffer_bytes: int | None = None
    max_storage_buffers_per_stage: int | None = None
    max_push_constant_bytes: int | None = None


def _exceeded(what: str, needed: int, limit: str, value: int, device: str, path: str) -> BackendError:
    return BackendError("E_LIMIT_EXCEEDED", f"{what} needs {needed}, over {limit} = {value} of {device}",
                        path=path)


def check_plan(plan: Plan, layout: BufferLayout, limits: DeviceLimits, device_name: str, *,
               buffer_align: int = 4) -> None:
    """Raise E_LIMIT_EXCEEDED for the first thing in ``plan`` the device cannot do. ``buffer_align`` is the
    granularity the backend allocates buffers in (the bytes it asks for)."""

    def need(what: str, needed: int, limit: str, value: int | None, path: str) -> None:
        if value is not None and needed > value:
            raise _exceeded(what, needed, limit, value, device_name, path)

    if limits.max_buffer_bytes is not None:
        for slot in layout.slots:
            need(f"buffer {slot.index}", align(slot.alloc_bytes, buffer_align), "max_buffer_bytes",
                 limits.max_buffer_bytes, "plan")
    for s, stage in enumerate(plan.stages):
        where = f"stages[{s}] ({stage.kernel_name})"
        kinds = {b.binding: b.kind for b in stage.shader.info.bindings if b.set == 0}
        for i, slot_index in enumerate(layout.bindings[s]):
            uniform = kinds.get(i) == "uniform"
            need(f"binding {i}", layout.slots[slot_index].nbytes,
                 "max_uniform_buffer_range" if uniform else "max_storage_buffer_range",
                 limits.max_uniform_buffer_range if uniform else limits.max_storage_buffer_range,
                 f"{where}.bindings[{i}]")
        need("storage bindings", len(stage.bindings), "max_storage_buffers_per_stage",
             limits.max_storage_buffers_per_stage, where)
        for axis, size, count, max_size, max_count in zip("xyz", stage.workgroup_size, stage.dispatch,
                                                          limits.max_workgroup_size, limits.max_workgroup_count):
            need(f"workgroup size {axis}", size, f"max_workgroup_size.{axis}", max_size, where)
            need(f"dispatch {axis} (workgroups)", count, f"max_workgroup_count.{axis}", max_count, where)
        x, y, z = stage.workgroup_size
        need(f"a {x}x{y}x{z} workgroup", x * y * z, "max_workgroup_invocations",
             limits.max_workgroup_invocations, where)
        need("shared memory bytes", stage.shared_memory_bytes, "max_shared_memory_bytes",
             limits.max_shared_memory_bytes, where)
        need("push constant bytes", max(len(stage.push_constants), stage.shader.info.push_constant_size),
             "max_push_constant_bytes", limits.max_push_constant_bytes, where)
