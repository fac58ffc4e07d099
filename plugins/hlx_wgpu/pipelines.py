"""Compute pipelines and bind groups, cached by what they are made of.

A pipeline is keyed by its module, binding types, immediate size and override constants, so two contracts
that differ only in their data share it. Bind groups are keyed by layout and the serials of the pooled
buffers bound, and forgotten when the pool destroys one of those buffers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hlx_core.device.layout import align
from hlx_core.device.lru import LRU
from hlx_core.plan import Stage

from hlx_wgpu.buffers import PooledBuffer
from hlx_wgpu.errors import wgpu_call
from hlx_wgpu.shaders import BindingType, CompiledShader

MAX_BIND_GROUPS = 512
UNIFORM_LAYOUT: tuple[tuple[int, BindingType], ...] = ((0, "uniform"),)  # group 1: push constants as a uniform


@dataclass(frozen=True)
class Pipeline:
    """A compute pipeline with the layouts its bind groups are made from."""

    pipeline: Any
    storage_layout: Any
    storage_key: tuple[tuple[int, BindingType], ...]
    uniform_layout: Any | None  # push constants fed as a uniform buffer


def override_constants(stage: Stage) -> dict[str, float]:
    """The stage's specialization constants as pipeline override constants (naga names SPIR-V SpecId N
    override "N"); those the workgroup-size patch froze into the module are left out."""
    frozen = {i for i in stage.shader.info.local_size_ids if i is not None}
    return {str(spec_id): float(value) for spec_id, value in stage.specialization_constants
            if spec_id not in frozen}


class PipelineCache:
    def __init__(self, device: Any, wgpu: Any) -> None:
        self._device = device
        self._visibility = wgpu.ShaderStage.COMPUTE
        self._layouts: dict[tuple, Any] = {}
        self._pipelines: dict[tuple, Pipeline] = {}
        self._bind_groups: LRU[tuple, Any] = LRU(MAX_BIND_GROUPS)
        self.bind_groups_created = 0

    def __len__(self) -> int:
        return len(self._pipelines)

    def _layout(self, key: tuple[tuple[int, BindingType], ...]) -> Any:
        if key not in self._layouts:
            entries = [{"binding": b, "visibility": self._visibility, "buffer": {"type": t}} for b, t in key]
            with wgpu_call("creating a bind group layout"):
                self._layouts[key] = self._device.create_bind_group_layout(entries=entries)
        return self._layouts[key]

    def get(self, stage: Stage, shader: CompiledShader) -> Pipeline:
        slots = len(stage.bindings)
        storage_key = tuple((i, shader.binding_types.get(i, "storage")) for i in range(slots))
        immediate_size = align(stage.shader.info.push_constant_size, 4) if shader.push_mode == "immediates" else 0
        constants = override_constants(stage)
        key = (id(shader.module), storage_key, shader.push_mode, immediate_size, tuple(sorted(constants.items())))
        if key not in self._pipelines:
            layouts = [self._layout(storage_key)]
            uniform_layout = None
            if shader.push_mode == "uniform":
                uniform_layout = self._layout(UNIFORM_LAYOUT)
                layouts.append(uniform_layout)
            with wgpu_call(f"the pipeline of kernel {stage.kernel_name!r} ({shader.path} path)"):
                layout = self._device.create_pipeline_layout(bind_group_layouts=layouts,
                                                             immediate_size=immediate_size)
                compute: dict[str, Any] = {"module": shader.module, "entry_point": stage.shader.entry_point}
                if constants:
                    compute["constants"] = constants
                pipeline = self._device.create_compute_pipeline(label=stage.kernel_name, layout=layout,
                                                                compute=compute)
            self._pipelines[key] = Pipeline(pipeline, layouts[0], storage_key, uniform_layout)
        return self._pipelines[key]

    def bind_group(self, layout: Any, layout_key: tuple, buffers: list[tuple[int, PooledBuffer, int]]) -> Any:
        """A bind group for (binding, buffer, bound size) triples, reused while the same buffers are bound."""
        key = (layout_key, tuple((b, buf.serial, size) for b, buf, size in buffers))
        group = self._bind_groups.get(key)
        if group is None:
            entries = [{"binding": b, "resource": {"buffer": buf.buffer, "offset": 0, "size": size}}
                       for b, buf, size in buffers]
            with wgpu_call("creating a bind group"):
                group = self._device.create_bind_group(layout=layout, entries=entries)
            self.bind_groups_created += 1
            self._bind_groups.put(key, group)
        return group

    def forget_buffer(self, serial: int) -> None:
        """Drop the bind groups that bind the buffer ``serial`` (it is being destroyed)."""
        self._bind_groups.discard_where(lambda key, _: any(s == serial for _, s, _ in key[1]))
