"""Running Plans: buffers from the shared layout, one recorded command buffer per plan, one submit per run.

A plan is recorded once (keyed by plan.key and the identity of its resident input buffers) and resubmitted:
uploads of inputs not yet resident go into a small per-run command buffer submitted in the same
vkQueueSubmit as the recorded one, which holds every dispatch, the barriers between dependent stages, the
timestamps, and the copies of the requested outputs to a readback buffer. Intermediates never leave the
device. On unified-memory devices inputs are written and outputs read through the buffers' mappings.
With output poisoning on (hlx_core.device.poison, read once per context) the recorded command buffer starts by
filling every stage-written buffer with 0xFF bytes, so each resubmission poisons them again.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from hlx_core.backend import Execution
from hlx_core.device.layout import BufferLayout, buffer_layout, host_bytes, to_array
from hlx_core.plan import OutputRef, Plan
from hlx_core.device.poison import POISON_WORD, poison_enabled
from hlx_core.device.residency import Residency

from hlx_vulkan_raw.commands import (COMPUTE, HOST, HOST_READ, SHADER_READ, SHADER_WRITE, TRANSFER, TRANSFER_READ,
                                     TRANSFER_WRITE, UNIFORM_READ, QueryPool, Recorder)
from hlx_vulkan_raw.errors import usage
from hlx_vulkan_raw.memory import DeviceBuffer, align, residency_budget
from hlx_vulkan_raw.pipelines import Pipeline

if TYPE_CHECKING:
    from hlx_vulkan_raw.context import VulkanContext

MAX_RECORDED = 64
MAX_PREPARED = 256
TOP_OF_PIPE = 0x00000001  # VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT


@dataclass(eq=False)
class RecordedPlan:
    """What one recorded plan owns: its command buffer, output buffers, descriptor sets, timestamps."""

    cb: Any
    serials: frozenset[int]
    outputs: dict[int, DeviceBuffer]           # slot -> buffer written by a stage
    readback: DeviceBuffer | None              # host copy target (None: outputs read through mappings)
    readback_offsets: dict[int, int]
    sets: list = field(default_factory=list)   # (descriptor set, pool entry)
    queries: QueryPool | None = None
    barriers: int = 0                          # stage-to-stage barriers recorded


class _Prepared(NamedTuple):
    """What every run of one plan key needs: ``inputs`` as (slot, handle, bytes to allocate, written by a
    shader), ``outputs`` as (slot, OutputRef) in the order of plan.outputs."""

    pipes: list[Pipeline]
    inputs: tuple[tuple[int, str, int, bool], ...]
    outputs: tuple[tuple[int, OutputRef], ...]


class PlanExecutor:
    """Executes Plans on a VulkanContext (the caller holds the context lock)."""

    def __init__(self, ctx: "VulkanContext") -> None:
        self.ctx = ctx
        self.recorded: "OrderedDict[tuple, RecordedPlan]" = OrderedDict()
        self.prepared: "OrderedDict[str, _Prepared]" = OrderedDict()
        # Inputs are made resident, and evicted, only after a run's wait: an evicted buffer is never in flight.
        self.residency: Residency[DeviceBuffer] = Residency(residency_budget(ctx.phys.device_local_bytes),
                                                            self._discard)
        self.runs = 0
        self.poison = poison_enabled()  # fixed for the context: recorded plans are keyed without it
        self._deferred: list[DeviceBuffer] = []  # fresh inputs of a run whose wait failed (still in flight)

    # -- bookkeeping --------------------------------------------------------------------------------------
    def _evicted(self, serial: int) -> None:
        for key in [k for k, rec in self.recorded.items() if serial in rec.serials]:
            self._drop(key)

    def _discard(self, buf: DeviceBuffer) -> None:
        """Free an input buffer and every recorded plan that refers to it."""
        self._evicted(buf.serial)
        self.ctx.allocator.free(buf)

    def _drop(self, key: tuple) -> None:
        self._release(self.recorded.pop(key))

    def _release(self, rec: RecordedPlan) -> None:
        """Give back what a recorded plan owns (as much as it got, when its recording failed)."""
        ctx = self.ctx
        if rec.cb is not None:
            ctx.submitter.release(rec.cb)
        for dset, entry in rec.sets:
            ctx.pipelines.free_set(dset, entry)
        for buf in rec.outputs.values():
            ctx.allocator.free(buf)
        if rec.readback is not None:
            ctx.allocator.free(rec.readback)
        if rec.queries is not None:
            rec.queries.destroy()

    def clear(self) -> None:
        for key in list(self.recorded):
            self._drop(key)
        self.residency.clear()
        self._free_deferred()

    def _free_deferred(self) -> None:
        """Free the inputs of a failed wait, once nothing is in flight any more (the caller synced)."""
        while self._deferred:
            self._discard(self._deferred.pop())

    # -- checks -------------------------------------------------------------------------------------------
    def _check_stage(self, plan: Plan, s: int, pipe: Pipeline) -> None:
        stage = plan.stages[s]
        where = f"stages[{s}] ({stage.kernel_name})"
        lim = self.ctx.phys.limits
        if len(stage.push_constants) > pipe.push_size:
            raise usage("E_VK_PUSH_CONSTANTS", f"{len(stage.push_constants)} bytes of push constants, the "
                        f"shader's push block has {pipe.push_size}", path=where)
        if any(g > m for g, m in zip(stage.dispatch, lim["maxComputeWorkGroupCount"])):
            raise usage("E_LIMIT_EXCEEDED", f"dispatch {tuple(stage.dispatch)} exceeds "
                        f"maxComputeWorkGroupCount {lim['maxComputeWorkGroupCount']}", path=where)
        if stage.shared_memory_bytes > lim["maxComputeSharedMemorySize"]:
            raise usage("E_LIMIT_EXCEEDED", f"{stage.shared_memory_bytes} bytes of shared memory exceed "
                        f"maxComputeSharedMemorySize {lim['maxComputeSharedMemorySize']}", path=where)
        for b in pipe.info.bindings:
            if b.binding >= len(stage.bindings):
                raise usage("E_VK_BINDINGS", f"the shader declares binding {b.binding} but the stage binds "
                            f"{len(stage.bindings)} buffers", path=where)
            nbytes = plan.binding_spec(s, b.binding).nbytes
            cap = lim["maxStorageBufferRange"] if b.kind == "storage" else lim["maxUniformBufferRange"]
            if nbytes > cap:
                raise usage("E_LIMIT_EXCEEDED", f"binding {b.binding} is {nbytes} bytes, over the device's "
                            f"max{'Storage' if b.kind == 'storage' else 'Uniform'}BufferRange {cap}",
                            path=f"{where}.bindings[{b.binding}]")

    # -- execution ----------------------------------------------------------------------------------------
    def _prepare(self, plan: Plan) -> _Prepared:
        """Pipelines, checks, and where inputs and outputs live, computed once per plan.key (the key names
        the whole normalised contract, so they cannot change) to keep warm runs cheap. Nothing kept here
        refers to a plan's input arrays: uploads read them from the plan being run."""
        prep = self.prepared.get(plan.key)
        if prep is not None:
            self.prepared.move_to_end(plan.key)
            return prep
        ctx = self.ctx
        layout = buffer_layout(plan)
        pipes = [ctx.pipelines.get(st.shader.spirv, st.shader.entry_point, st.workgroup_size,
                                   st.specialization_constants) for st in plan.stages]
        for s, pipe in enumerate(pipes):
            self._check_stage(plan, s, pipe)
        written = self._written_slots(layout, pipes)
        prep = self.prepared[plan.key] = _Prepared(
            pipes,
            tuple((s.index, s.source.handle, s.alloc_bytes, s.index in written) for s in layout.inputs),
            tuple((k, layout.slots[k].source) for k in layout.outputs))
        while len(self.prepared) > MAX_PREPARED:
            self.prepared.popitem(last=False)
        return prep

    def execute(self, plan: Plan) -> Execution:
        """Run ``plan``; the caller has waited for every earlier submit."""
        t0 = time.perf_counter()
        ctx = self.ctx
        if self._deferred:
            self._free_deferred()
        prep = self._prepare(plan)
        inputs: dict[int, DeviceBuffer] = {}
        uploads: list[tuple[DeviceBuffer, memoryview]] = []
        fresh: list[tuple[str | None, DeviceBuffer]] = []  # new buffers; handle None: never kept resident
        committed = False
        try:
            for index, handle, alloc_bytes, volatile in prep.inputs:  # volatile: a shader writes it
                buf = None if volatile else self.residency.get(handle)
                if buf is None:
                    buf = ctx.allocator.create_buffer(alloc_bytes)
                    fresh.append((None if volatile else handle, buf))
                    uploads.append((buf, host_bytes(plan.input_arrays[handle])))
                inputs[index] = buf
            key = (plan.key, tuple(buf.serial for buf in inputs.values()))
            rec = self.recorded.get(key)
            if rec is None:
                rec = self._record(plan, buffer_layout(plan), prep.pipes, inputs)
                self.recorded[key] = rec
                while len(self.recorded) > MAX_RECORDED:
                    self._drop(next(iter(self.recorded)))
            else:
                self.recorded.move_to_end(key)
            cbs = self._uploads(uploads) + [rec.cb]
            ctx.submitter.wait(ctx.submitter.submit(cbs))
            self.runs += 1
            committed = True
            arrays = [self._read(rec, slot, spec) for slot, spec in prep.outputs]
            timings = self._timings(rec, len(plan.stages))
        finally:
            if not committed and ctx.submitter.pending:
                # The wait failed (E_VK_TIMEOUT, device lost) with the run still queued: its buffers and
                # recorded plan stay untouched until a later call has synced.
                self._deferred.extend(buf for _, buf in fresh)
            else:
                # After the outputs are read: what is released here may take the recorded plan with it.
                for handle, buf in fresh:  # resident only once its upload has completed
                    if committed and handle is not None:
                        self.residency.put(handle, buf)
                    else:
                        self._discard(buf)
                self.residency.trim()
        timings["host_ms"] = (time.perf_counter() - t0) * 1e3
        return Execution(arrays, timings)

    def _uploads(self, uploads: list[tuple[DeviceBuffer, memoryview]]) -> list:
        """Write new inputs: straight into mapped memory, or through the staging ring and a copy command
        buffer that runs first in the same submit."""
        if not uploads:
            return []
        ctx = self.ctx
        if all(buf.host_visible for buf, _ in uploads):
            for buf, data in uploads:
                if data.nbytes:
                    buf.write(data)
            return []
        ring = ctx.staging
        ring.reset(sum(align(d.nbytes, 16) for _, d in uploads) + 16)
        rec = Recorder(ctx.upload_cb, one_time=True)
        for buf, data in uploads:
            if data.nbytes:
                off = ring.reserve(data.nbytes)
                ring.buffer.write(data, off)
                rec.copy(ring.buffer.handle, off, buf.handle, 0, data.nbytes)
        rec.barrier(TRANSFER, TRANSFER_WRITE, COMPUTE, SHADER_READ | UNIFORM_READ)
        return [rec.end()]

    def _read(self, rec: RecordedPlan, slot: int, spec: OutputRef) -> np.ndarray:
        if rec.readback is None:
            return to_array(rec.outputs[slot].view(spec.nbytes), spec)
        return to_array(rec.readback.view(rec.readback_offsets[slot] + spec.nbytes)[rec.readback_offsets[slot]:], spec)

    def _timings(self, rec: RecordedPlan, n: int) -> dict[str, float]:
        if rec.queries is None:
            return {}
        ts = rec.queries.read_ms()
        if ts is None:
            return {}
        out = {"gpu_ms": ts[-1]}
        for i in range(n):
            out[f"stage{i}_gpu_ms"] = ts[i + 1] - ts[i]
        return out

    @staticmethod
    def _written_slots(layout: BufferLayout, pipes: list[Pipeline]) -> set[int]:
        return {layout.bindings[s][b.binding] for s, pipe in enumerate(pipes) for b in pipe.info.bindings
                if not b.readonly}

    # -- recording ----------------------------------------------------------------------------------------
    def _record(self, plan: Plan, layout: BufferLayout, pipes: list[Pipeline],
                inputs: dict[int, DeviceBuffer]) -> RecordedPlan:
        ctx = self.ctx
        alloc = ctx.allocator
        outputs: dict[int, DeviceBuffer] = {}
        rec = RecordedPlan(cb=None, serials=frozenset(b.serial for b in inputs.values()), outputs=outputs,
                           readback=None, readback_offsets={})
        try:
            for slot in layout.slots:
                if not slot.is_input:  # whole words: vkCmdFillBuffer fills multiples of 4 bytes
                    outputs[slot.index] = alloc.create_buffer(align(slot.alloc_bytes, 4))
            bufs = {**inputs, **outputs}
            wanted = list(dict.fromkeys(layout.outputs))
            if not all(outputs[s].host_visible for s in wanted):
                total = 0
                for s in wanted:
                    rec.readback_offsets[s] = total
                    total = align(total + layout.slots[s].nbytes, 16)
                rec.readback = alloc.create_buffer(max(total, 16), host=True, readback=True)
            for s, pipe in enumerate(pipes):
                dset, entry = ctx.pipelines.allocate_set(pipe)
                rec.sets.append((dset, entry))
                ctx.pipelines.write_set(dset, pipe, {b.binding: bufs[layout.bindings[s][b.binding]]
                                                     for b in pipe.info.bindings})
            if ctx.timestamps:
                rec.queries = QueryPool(ctx.device, len(plan.stages) + 1, ctx.timestamp_bits,
                                        ctx.phys.limits["timestampPeriod"])
            rec.cb = ctx.submitter.command_buffer()
            self._record_commands(rec, plan, layout, pipes, bufs, wanted)
        except Exception:
            self._release(rec)
            raise
        return rec

    def _record_commands(self, rec: RecordedPlan, plan: Plan, layout: BufferLayout, pipes: list[Pipeline],
                         bufs: dict[int, DeviceBuffer], wanted: list[int]) -> None:
        r = Recorder(rec.cb, one_time=False)
        if self.poison:
            for buf in rec.outputs.values():
                r.fill(buf.handle, buf.size, POISON_WORD)
            r.barrier(TRANSFER, TRANSFER_WRITE, COMPUTE, SHADER_READ | SHADER_WRITE | UNIFORM_READ)
        q = rec.queries
        if q is not None:
            r.reset_queries(q.handle, q.count)
            r.timestamp(q.handle, 0, TOP_OF_PIPE)
        asked = {s for s, _scope in plan.barriers}
        written: set[int] = set()  # slots written since the last barrier
        read: set[int] = set()     # slots read since the last barrier
        for s, pipe in enumerate(pipes):
            row = layout.bindings[s]
            reads = {row[b.binding] for b in pipe.info.bindings if not b.writeonly}
            writes = {row[b.binding] for b in pipe.info.bindings if not b.readonly}
            if (reads | writes) & written or writes & read or (s - 1) in asked:
                r.barrier(COMPUTE, SHADER_WRITE, COMPUTE, SHADER_READ | SHADER_WRITE | UNIFORM_READ)
                rec.barriers += 1
                written.clear()
                read.clear()
            stage = plan.stages[s]
            r.dispatch(pipe, rec.sets[s][0], stage.push_constants, tuple(stage.dispatch))
            written |= writes
            read |= reads
            if q is not None:
                r.timestamp(q.handle, s + 1)
        if rec.readback is None:
            r.barrier(COMPUTE, SHADER_WRITE, HOST, HOST_READ)
        else:
            r.barrier(COMPUTE, SHADER_WRITE, TRANSFER, TRANSFER_READ)
            for s in wanted:
                n = layout.slots[s].nbytes
                if n:
                    r.copy(bufs[s].handle, 0, rec.readback.handle, rec.readback_offsets[s], n)
            r.barrier(TRANSFER, TRANSFER_WRITE, HOST, HOST_READ)
        r.end()
