"""The session that executes Plans on a DeviceCore: one recorded command buffer per plan, one submit per run.

A plan is recorded once (keyed by plan.key and the identity of its resident input buffers) and resubmitted:
uploads of inputs not yet resident go into a small per-run command buffer submitted in the same
vkQueueSubmit as the recorded one, which holds every dispatch, the barriers between dependent stages, the
timestamps, and the copies of the requested outputs to a readback buffer. Intermediates never leave the
device. On unified-memory devices inputs are written and outputs read through the buffers' mappings.
Outputs hashed on the device (device_hash.py; by default every output of 1 MiB or more) are not read back
at all: they stay in the residency under their handles (resident.py), detached from the recorded plan,
until a run reads them, the host downloads them, or eviction spills them. Large outputs read back all the
same (device hashing off or set above their size) are copied, by a small per-run command buffer in the same
submit, into reused host memory that becomes the result array (readback.py): no host copy at all.
The recorded command buffer starts by filling with zeros every buffer a stage writes whose kernel may leave
elements unwritten (hlx_core.device.poison), so each resubmission clears them again: no output carries an
earlier run's data. With output poisoning on (read once per session) it fills every stage-written buffer
with 0xFF bytes instead.

A warm run of a plan whose inputs are all resident does only what changes between runs: the recorded plan
is found by plan.key alone (``_hot``; it is still recorded, so none of its inputs was freed), before any
kernel variant is chosen (a variant keeps the plan's key, and the recorded plan ran the one chosen then),
the submit array was built when it was recorded, each small output is one copy out of a NumPy view made
then, the residency is trimmed only by a run that put buffers in it, and the timestamps are one
vkGetQueryPoolResults.

A new plan of shaders the session has run before (new inputs at a new size) does only what is new about
it: its stages' pipelines come from the session's record of pipeline requests (shader bytes, entry point,
workgroup size and specialization constants: the whole request is the key) without the manager hashing and
reflecting each module again, its buffer layout is worked out once, and a recorded plan released earlier
(evicted, or dropped with a freed input) hands on its descriptor sets, rewritten for the new buffers, and
its timestamp queries.

The runtime serialises the calls on a session, so it takes no lock of its own; every submit of the session is
waited for within its run, so nothing needs a queue-wide sync.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hlx_core.backend import DeviceOutput, DeviceOutputs, Execution, Session
from hlx_core.codec.handle import Handle
from hlx_core.device.hash import min_bytes
from hlx_core.device.layout import BufferLayout, align, buffer_layout, host_bytes, native_array, output_view
from hlx_core.device.limits import check_plan
from hlx_core.device.lru import LRU
from hlx_core.device.poison import cleared_slots, fill_word, poison_enabled
from hlx_core.device.residency import Residency, Transfers
from hlx_core.errors import HLXError
from hlx_core.kernels.variants import specialise
from hlx_core.plan import OutputRef, Plan

from hlx_vulkan_raw.commands import (
    COMPUTE,
    HOST,
    HOST_READ,
    SHADER_READ,
    SHADER_WRITE,
    TOP_OF_PIPE,
    TRANSFER,
    TRANSFER_READ,
    TRANSFER_WRITE,
    UNIFORM_READ,
    Pending,
    QueryPool,
    Recorder,
)
from hlx_vulkan_raw.core import DeviceCore
from hlx_vulkan_raw.device_hash import ENV_DEVICE_HASH, OutputHashes, hash_pipeline, hash_request
from hlx_vulkan_raw.errors import VulkanError
from hlx_vulkan_raw.memory import DeviceBuffer, residency_budget
from hlx_vulkan_raw.pipelines import Pipeline
from hlx_vulkan_raw.readback import POOL_MIN_BYTES, HostBlock, HostPool
from hlx_vulkan_raw.resident import VulkanOutput

#: Plan outputs up to this size that no other stage touches live in host memory on a discrete GPU: the stage
#: writes them across the bus and the host reads them in place, with no copy command and transfer barrier in
#: the run. Larger ones (a bulk copy moves them faster than a shader's scattered writes) stay in device memory.
HOST_OUTPUT_MAX_BYTES = 64 << 10
MAX_RECORDED = 64
MAX_PREPARED = 256
MAX_STAGE_PIPES = 256  # pipeline requests remembered (cleared when full)
MAX_SPARES = 64  # descriptor sets per set layout, and query pools per size, kept from released recorded plans


def _module_bytes(spirv: Any) -> bytes:
    """A module as bytes, which a request key needs (a hand-made Plan may carry a bytearray or a view)."""
    return spirv if type(spirv) is bytes else bytes(spirv)


def host_output_limit(core: DeviceCore) -> int:
    """``HOST_OUTPUT_MAX_BYTES`` on a discrete GPU; 0 elsewhere (unified memory reads every output in place)."""
    return HOST_OUTPUT_MAX_BYTES if core.phys.kind == "gpu-discrete" else 0


@dataclass(eq=False)
class RecordedPlan:
    """What one recorded plan owns (its command buffer, output buffers, descriptor sets, timestamps) and
    what a warm run of it reads: ``views[k]`` is plan output k viewed in the mapped memory the recorded
    copies (or, under zero-copy, the stage) write, copied out each run; None where the output is ``pooled``
    instead: (output index, buffer, spec) copied per run into a block of the session's HostPool."""

    key: tuple
    serials: frozenset[int]
    handles: tuple[str, ...] | None             # the resident inputs; None when a shader writes an input
    cb: Any = None
    outputs: dict[int, DeviceBuffer] = field(default_factory=dict)  # slot -> buffer written by a stage
    readback: DeviceBuffer | None = None        # host copy target of the outputs that are not pooled
    readback_offsets: dict[int, int] = field(default_factory=dict)
    sets: list = field(default_factory=list)    # (descriptor set, pool entry, its set layout)
    queries: QueryPool | None = None
    barriers: int = 0                           # stage-to-stage barriers recorded
    views: list[np.ndarray | None] = field(default_factory=list)
    pooled: list[tuple[int, DeviceBuffer, OutputRef]] = field(default_factory=list)
    cbs: list = field(default_factory=list)     # what a run submits after its uploads, if any
    batch: Any = None                           # ``cbs`` as the array a run without uploads submits
    hashes: OutputHashes | None = None          # the outputs' handles, hashed on the device
    resident: dict[int, tuple[int, OutputRef]] = field(default_factory=dict)  # output k -> (slot, spec) kept
    host_bytes: int = 0                         # bytes of the outputs a run copies to the host
    native_views: bool = False                  # every output a view in the host's byte order: copied as is


@dataclass(frozen=True)
class PreparedPlan:
    """What every run of one plan key needs besides its input data (the key names the whole normalised
    contract, so this cannot change): the limits check passed, each stage's pipeline,
    ``inputs`` as (slot, handle, bytes to allocate, written by a shader), ``outputs`` as (slot, OutputRef) in
    the order of plan.outputs. Nothing here refers to a plan's input arrays: uploads read them from the plan
    being run."""

    pipes: tuple[Pipeline, ...]
    inputs: tuple[tuple[int, str, int, bool], ...]
    outputs: tuple[tuple[int, OutputRef], ...]


class VulkanSession(Session):
    """An open Vulkan device executing Plans."""

    backend = "vulkan"

    def __init__(self, device: int | str | None = None) -> None:
        self.core = core = DeviceCore(device)
        try:
            self.device = core.phys.info()
            self.recorded: LRU[tuple, RecordedPlan] = LRU(MAX_RECORDED, lambda _key, rec: self._release(rec))
            # plan.key -> its recorded plan whose inputs are all resident: a warm run starts here.
            self._hot: dict[Handle, RecordedPlan] = {}
            self.prepared: LRU[Handle, PreparedPlan] = LRU(MAX_PREPARED)
            # Inputs are made resident, and evicted, only after a run's wait: an evicted buffer is never in flight.
            self.residency: Residency[DeviceBuffer] = Residency(residency_budget(core.phys.device_local_bytes),
                                                                self._discard)
            self.poison = poison_enabled()  # fixed for the session: recorded plans are keyed without it
            self.hash_min_bytes = min_bytes(ENV_DEVICE_HASH)  # likewise; 0: every output hashed on the host, read back
            self._hash_pipe: Pipeline | None = None  # the hash shader's pipeline, made on first use
            self._stage_pipes: dict[tuple, Pipeline] = {}  # pipeline request -> the manager's pipeline
            # What released recorded plans owned that a new one needs again (plans of many sizes, each new
            # input a new plan): descriptor sets by set layout (every binding rewritten when reused), query
            # pools by size (reset by the commands of each run).
            self._spare_sets: dict[Any, list[tuple[Any, Any]]] = {}
            self._spare_queries: dict[int, list[QueryPool]] = {}
            self.upload_cb = core.submitter.command_buffer()  # reused by every run that uploads through staging
            # Large outputs of the readback path go straight into reused host memory (readback.py).
            self.host_pool = HostPool(core.host_import) if core.host_import and not core.zero_copy else None
            self.readback_cb = core.submitter.command_buffer() if self.host_pool else None
            self.host_output_max = host_output_limit(core)
            self.runs = 0
            self.transfers = Transfers()
            self._outputs = DeviceOutputs()  # the outputs resident buffers hold
            self._download_cb = None  # made on the first download of a resident output
            # A run whose wait failed (E_TIMEOUT, device lost) with its submit still queued, its fresh input
            # buffers and its host blocks: left untouched until a later run has waited for it, or the session
            # closes (after the device is idle). Meanwhile the session is ``broken``: the runtime opens a new
            # one rather than wait here.
            self._stuck: tuple[Pending, list[DeviceBuffer], list[HostBlock]] | None = None
        except BaseException:
            core.close()
            raise
        core.on_close(self._release_all)

    # -- execution ------------------------------------------------------------------------------------------
    def _execute(self, plan: Plan) -> Execution:
        t0 = time.perf_counter()
        submitter = self.core.submitter
        if self._stuck is not None:
            self._recover()
        # Every input resident (a freed input takes its recorded plans with it): a warm run uploads nothing,
        # and its plan was specialised when it was recorded (a variant keeps the plan's key).
        rec = self._hot.get(plan.key)
        if rec is not None and self.recorded.get(rec.key) is not rec:
            rec = None
        if rec is None:
            plan = specialise(plan, self.core.shaders.support)  # kernel variants this device runs (coopmat gemm)
        fresh: list[tuple[str | None, DeviceBuffer]] = []  # new buffers; handle None: never kept resident
        blocks: list[HostBlock] = []
        pending: Pending | None = None
        committed = False
        try:
            if rec is not None:
                for handle in rec.handles:
                    self.residency.get(handle)  # a hit, and most recently used
                batch = rec.batch
            else:
                rec, batch = self._resolve(plan, fresh)
            if rec.pooled:
                blocks = self._readback_into_pool(rec)
            pending = submitter.submit(batch)
            submitter.wait(pending)
            self.runs += 1
            committed = True
            # (every output a recorded view in the host's byte order: one copy each, no call)
            arrays = [view.copy() for view in rec.views] if rec.native_views else self._arrays(rec, blocks)
            timings = rec.queries.timings() if rec.queries is not None else {}
            handles = rec.hashes.handles() if rec.hashes is not None else None
            if rec.host_bytes:
                self.transfers.downloaded(rec.host_bytes)
            if rec.resident:
                self._keep(rec, handles, arrays)
        except HLXError:
            raise
        except Exception as exc:  # never a raw cffi or Python error out of a run
            raise VulkanError("E_BACKEND_INTERNAL", f"VulkanSession.execute: {type(exc).__name__}: {exc}") from exc
        finally:
            if not committed and pending is not None and pending in submitter.pending:
                self._stuck = (pending, [buf for _, buf in fresh], blocks)
                self.broken = True
            else:
                # After the outputs are read: what is released here may take the recorded plan with it.
                for handle, buf in fresh:  # resident only once its upload has completed
                    if committed and handle is not None:
                        self.residency.put(handle, buf)
                    else:
                        self._discard(buf)
                if fresh or (rec is not None and rec.resident):  # (only these put buffers in the residency)
                    self.residency.trim()
                if blocks:
                    self.host_pool.trim()
        timings["host_ms"] = (time.perf_counter() - t0) * 1e3
        return Execution(arrays, timings, handles)

    def _resolve(self, plan: Plan, fresh: list[tuple[str | None, DeviceBuffer]]) -> tuple[RecordedPlan, Any]:
        """The recorded plan for ``plan``'s input buffers (recorded now if new) and what the run submits:
        resident inputs are reused, the others get a buffer (appended to ``fresh``) and an upload."""
        core = self.core
        prep = self.prepared.get(plan.key)
        layout = None
        if prep is None:
            prep, layout = self._prepare(plan)
        inputs: dict[int, DeviceBuffer] = {}
        uploads: list[tuple[DeviceBuffer, memoryview]] = []
        for index, handle, alloc_bytes, volatile in prep.inputs:  # volatile: a shader writes it
            buf = None if volatile else self.residency.get(handle)
            if buf is None:
                buf = core.allocator.create_buffer(alloc_bytes)
                fresh.append((None if volatile else handle, buf))
                uploads.append((buf, host_bytes(plan.input_refs[handle].array)))
            inputs[index] = buf
        key = (plan.key, tuple(buf.serial for buf in inputs.values()))
        rec = self.recorded.get(key)
        if rec is None:
            rec = self._record(plan, prep, inputs, key, layout or buffer_layout(plan))
            self.recorded.put(key, rec)
        if rec.handles is not None:
            self._hot[plan.key] = rec
        upload = self._uploads(uploads)
        return rec, (upload + rec.cbs if upload else rec.batch)

    def _prepare(self, plan: Plan) -> tuple[PreparedPlan, BufferLayout]:
        """The plan checked against the device's limits, then its pipelines and where its inputs and outputs
        live; made on the first run of its key. The layout comes back for this run's recording alone (its
        slots refer to the plan's input arrays)."""
        layout = buffer_layout(plan)
        check_plan(plan, layout, self.core.limits, self.core.name)
        outputs = tuple((k, layout.slots[k].source) for k in layout.outputs)
        hashed = self._hash_pipe is None and any(0 < self.hash_min_bytes <= spec.nbytes for _, spec in outputs)
        pipes = self._pipelines(plan, hashed)
        prep = PreparedPlan(
            pipes,
            tuple((s.index, s.source.handle, s.alloc_bytes, s.index in layout.written) for s in layout.inputs),
            outputs)
        self.prepared.put(plan.key, prep)
        return prep, layout

    def _pipelines(self, plan: Plan, hashed: bool) -> tuple[Pipeline, ...]:
        """Each stage's pipeline. A new plan of stages seen before (the same shaders at a new size) finds
        them in ``_stage_pipes`` without asking the PipelineManager, which would hash and reflect each module
        again; the key is the whole request (the module's bytes, hashed once per bytes object, included), and
        the manager keeps every pipeline it built until the device closes, which takes this session along.
        Otherwise the manager builds the missing ones at once, with the device hash's when ``hashed`` (its
        first use is this plan's run)."""
        requests = [(_module_bytes(st.shader.spirv), st.shader.entry_point, st.workgroup_size,
                     st.specialization_constants) for st in plan.stages]
        known = self._stage_pipes
        if hashed:
            requests.append(hash_request())
        else:
            pipes = tuple(known.get(request) for request in requests)
            if None not in pipes:
                return pipes
        pipes = tuple(self.core.pipelines.get_many(requests))
        if hashed:
            self._hash_pipe, pipes = pipes[-1], pipes[:-1]
        if len(known) + len(pipes) > MAX_STAGE_PIPES:
            known.clear()
        known.update(zip(requests, pipes))
        return pipes

    def _recover(self) -> None:
        """Wait for the run whose wait failed (raising again if it still fails), then free its fresh inputs."""
        pending, bufs, _blocks = self._stuck
        self.core.submitter.wait(pending)
        self._stuck = None
        self.broken = False
        for buf in bufs:
            self._discard(buf)

    def _uploads(self, uploads: list[tuple[DeviceBuffer, memoryview]]) -> list:
        """Write new inputs: straight into mapped memory, or through the staging ring and a copy command
        buffer that runs first in the same submit."""
        if not uploads:
            return []
        for _, data in uploads:
            self.transfers.uploaded(data.nbytes)
        if all(buf.host_visible for buf, _ in uploads):
            for buf, data in uploads:
                if data.nbytes:
                    buf.write(data)
            return []
        ring = self.core.staging
        ring.reset(sum(align(d.nbytes, 16) for _, d in uploads) + 16)
        rec = Recorder(self.upload_cb, one_time=True)
        for buf, data in uploads:
            if data.nbytes:
                off = ring.reserve(data.nbytes)
                ring.buffer.write(data, off)
                rec.copy(ring.buffer.handle, off, buf.handle, 0, data.nbytes)
        rec.barrier(TRANSFER, TRANSFER_WRITE, COMPUTE, SHADER_READ | UNIFORM_READ)
        return [rec.end()]

    def _readback_into_pool(self, rec: RecordedPlan) -> list[HostBlock]:
        """A host block for each pooled output and the copies into them, recorded into ``readback_cb``
        (submitted after the recorded plan, whose last barrier makes its outputs ready for transfers)."""
        blocks = self.host_pool.acquire([spec.nbytes for _, _, spec in rec.pooled])
        r = Recorder(self.readback_cb, one_time=True)
        for (_, buf, spec), block in zip(rec.pooled, blocks):
            r.copy(buf.handle, 0, block.buffer, 0, spec.nbytes)
        r.barrier(TRANSFER, TRANSFER_WRITE, HOST, HOST_READ)
        r.end()
        return blocks

    @staticmethod
    def _arrays(rec: RecordedPlan, blocks: list[HostBlock]) -> list[np.ndarray]:
        """The run's outputs: one host copy out of the recorded views, none for pooled outputs (the array is
        a view of the block the device wrote)."""
        if not blocks and not rec.resident:
            return [native_array(view) for view in rec.views]
        arrays = [None if view is None else native_array(view) for view in rec.views]
        for (k, _, spec), block in zip(rec.pooled, blocks):
            arrays[k] = block.array(spec)
        return arrays

    # -- recording ------------------------------------------------------------------------------------------
    def _record(self, plan: Plan, prep: PreparedPlan, inputs: dict[int, DeviceBuffer], key: tuple,
                layout: BufferLayout) -> RecordedPlan:
        core = self.core
        handles = None if any(v for *_, v in prep.inputs) else tuple(h for _, h, _, _ in prep.inputs)
        rec = RecordedPlan(key, frozenset(b.serial for b in inputs.values()), handles)
        outputs = rec.outputs
        try:
            wanted = {slot for slot, _ in prep.outputs}
            in_host = {i for i in wanted if 0 < layout.slots[i].nbytes <= self.host_output_max
                       and sum(i in row for row in layout.bindings) == 1}  # no other stage touches it
            for slot in layout.slots:
                if not slot.is_input:  # alloc_bytes is whole words, as vkCmdFillBuffer needs
                    outputs[slot.index] = core.allocator.create_buffer(slot.alloc_bytes,
                                                                       host=slot.index in in_host, readback=True)
            bufs = {**inputs, **outputs}
            rec.resident = {k: (i, spec) for k, (i, spec) in enumerate(prep.outputs)
                            if 0 < self.hash_min_bytes <= spec.nbytes}
            rec.host_bytes = sum(spec.nbytes for k, (_, spec) in enumerate(prep.outputs) if k not in rec.resident)
            mapped = {k for k, (i, _) in enumerate(prep.outputs)
                      if outputs[i].host_visible and k not in rec.resident}  # read in place
            pooled = {k for k, (_, spec) in enumerate(prep.outputs)
                      if k not in mapped and k not in rec.resident and spec.nbytes >= POOL_MIN_BYTES}
            if pooled and not (self.host_pool is not None and self.host_pool.usable()):
                pooled = set()
            copied = list(dict.fromkeys(i for k, (i, _) in enumerate(prep.outputs)
                                        if k not in mapped | pooled and k not in rec.resident))
            if copied:
                total = 0
                for i in copied:
                    rec.readback_offsets[i] = total
                    total = align(total + layout.slots[i].nbytes, 16)
                rec.readback = core.allocator.create_buffer(max(total, 16), host=True, readback=True)
            for s, pipe in enumerate(prep.pipes):
                spare = self._spare_sets.get(pipe.set_layout)
                dset, entry = spare.pop() if spare else core.pipelines.allocate_set(pipe)
                rec.sets.append((dset, entry, pipe.set_layout))
                core.pipelines.write_set(dset, pipe, {b.binding: bufs[layout.bindings[s][b.binding]]
                                                      for b in pipe.info.bindings})
            spare_queries = self._spare_queries.get(len(plan.stages) + 1)
            rec.queries = spare_queries.pop() if spare_queries else core.query_pool(len(plan.stages) + 1)
            rec.cb = core.submitter.command_buffer()
            hashed = [(outputs[i], spec) if k in rec.resident else None for k, (i, spec) in enumerate(prep.outputs)]
            if any(hashed):
                rec.hashes = OutputHashes()
            on_device = any(buf.serial in self._outputs for buf in inputs.values())
            self._record_commands(rec, plan, layout, prep.pipes, bufs, bool(mapped), copied, bool(pooled), hashed,
                                  on_device)
            for k, (i, spec) in enumerate(prep.outputs):
                if k in rec.resident:
                    rec.views.append(None)
                elif k in pooled:
                    rec.views.append(None)
                    rec.pooled.append((k, outputs[i], spec))
                elif k in mapped:
                    rec.views.append(output_view(outputs[i].view(spec.nbytes), spec))
                else:
                    start = rec.readback_offsets[i]
                    rec.views.append(output_view(rec.readback.view(start + spec.nbytes)[start:], spec))
            rec.native_views = not rec.pooled and not rec.resident and all(v.dtype.isnative for v in rec.views)
            rec.cbs = [rec.cb, self.readback_cb] if rec.pooled else [rec.cb]
            rec.batch = core.submitter.batch(rec.cbs)
        except Exception:
            self._release(rec)
            raise
        return rec

    def _record_commands(self, rec: RecordedPlan, plan: Plan, layout: BufferLayout, pipes: tuple[Pipeline, ...],
                         bufs: dict[int, DeviceBuffer], mapped: bool, copied: list[int], pooled: bool,
                         hashed: list[tuple[DeviceBuffer, OutputRef] | None], on_device: bool) -> None:
        """Output clears, timestamps, dispatches with the barriers they need, the hash passes of the outputs
        ``hashed`` (after the last timestamp: stage timings leave them out), then what readies the outputs
        for the host: a host barrier for those ``mapped`` (read in place), the copies of the ``copied`` slots
        into the readback buffer, and a barrier that readies the ``pooled`` ones for their copies (recorded
        per run, submitted next). ``on_device``: an input is an earlier run's output, written by a shader in
        another submit, so the run starts with a barrier that makes those writes visible."""
        r = Recorder(rec.cb, one_time=False)
        if on_device:
            r.barrier(COMPUTE, SHADER_WRITE, COMPUTE | TRANSFER, SHADER_READ | UNIFORM_READ | TRANSFER_READ)
        cleared = cleared_slots(plan, layout, self.poison)
        if cleared:
            for slot in cleared:
                r.fill(bufs[slot].handle, bufs[slot].size, fill_word(self.poison))
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
        if rec.hashes is not None:
            if self._hash_pipe is None:  # looked up once per session: it never changes
                self._hash_pipe = hash_pipeline(self.core)
            rec.hashes.record(self.core, r, hashed, self._hash_pipe)
        if copied or pooled:
            host_stage, host_read = (HOST, HOST_READ) if mapped else (0, 0)
            r.barrier(COMPUTE, SHADER_WRITE, TRANSFER | host_stage, TRANSFER_READ | host_read)
            for i in copied:
                if layout.slots[i].nbytes:
                    r.copy(bufs[i].handle, 0, rec.readback.handle, rec.readback_offsets[i], layout.slots[i].nbytes)
            if copied:
                r.barrier(TRANSFER, TRANSFER_WRITE, HOST, HOST_READ)
        else:
            r.barrier(COMPUTE, SHADER_WRITE, HOST, HOST_READ)
        r.end()

    # -- resident outputs -----------------------------------------------------------------------------------
    def _keep(self, rec: RecordedPlan, handles: list[Handle | None], arrays: list) -> None:
        """Leave the run's hashed outputs on the device: each becomes a ``VulkanOutput`` in ``arrays``, held
        by the residency under its handle. A handle already resident (the same bytes) is served by that
        buffer; otherwise the buffer is detached from ``rec``, which is then dropped (its next run records
        again with a fresh buffer, so this one is never overwritten)."""
        by_slot: dict[int, DeviceOutput] = {}
        for k, (slot, spec) in rec.resident.items():
            out = by_slot.get(slot)
            if out is None:
                out = by_slot[slot] = self._output(rec, slot, handles[k], spec)
            arrays[k] = out
        if any(slot not in rec.outputs for slot in by_slot):
            self.recorded.discard_where(lambda _key, other: other is rec)

    def _output(self, rec: RecordedPlan, slot: int, handle: Handle, spec: OutputRef) -> DeviceOutput:
        """The output in ``slot`` as a resident output: the buffer already resident under its handle (an
        earlier output or an uploaded input with these bytes serves), else its own, detached from ``rec``."""
        held = self.residency.get(handle)
        buf = held if held is not None else rec.outputs.pop(slot)
        out = self._outputs.of(buf.serial, lambda: VulkanOutput(self, handle, spec, buf))
        if held is None:
            self.residency.put(handle, buf)  # one larger than the whole budget is spilled at once
        return out

    def download_cb(self):
        """The command buffer a resident output's download records into (one at a time: the session's)."""
        if self._download_cb is None:
            self._download_cb = self.core.submitter.command_buffer()
        return self._download_cb

    # -- bookkeeping ----------------------------------------------------------------------------------------
    def _discard(self, buf: DeviceBuffer) -> None:
        """Free a resident buffer (an input, or an output spilled first) and every recorded plan that
        refers to it."""
        self._outputs.evict(buf.serial)
        self.recorded.discard_where(lambda _key, rec: buf.serial in rec.serials)
        self.core.allocator.free(buf)

    def _release(self, rec: RecordedPlan) -> None:
        """Give back what a recorded plan owns (as much as it got, when its recording failed)."""
        core = self.core
        if self._hot.get(rec.key[0]) is rec:
            del self._hot[rec.key[0]]
        if rec.cb is not None:
            core.submitter.release(rec.cb)
        for dset, entry, set_layout in rec.sets:
            spare = self._spare_sets.setdefault(set_layout, [])
            if len(spare) < MAX_SPARES and not self.closed:
                spare.append((dset, entry))
            else:
                core.pipelines.free_set(dset, entry)
        for buf in rec.outputs.values():
            core.allocator.free(buf)
        if rec.readback is not None:
            core.allocator.free(rec.readback)
        if rec.queries is not None:
            spare = self._spare_queries.setdefault(rec.queries.count, [])
            if len(spare) < MAX_SPARES and not self.closed:
                spare.append(rec.queries)
            else:
                rec.queries.destroy()
        if rec.hashes is not None:
            rec.hashes.release(core)

    def holds(self, handle: str) -> bool:
        return handle in self.residency

    def pipeline_statistics(self, plan: Plan) -> dict[str, dict[str, int | float | bool]]:
        """Each stage's statistics from the driver, keyed ``"<index>:<kernel_name>"``, for the shader this
        device runs (a library kernel's variant included): registers, spills, shared and local memory where
        the driver reports them (DeviceCore.pipeline_statistics; E_UNSUPPORTED where it reports none). Runs
        nothing; the pipelines of runs stay as they are."""
        plan = specialise(plan, self.core.shaders.support)
        return {f"{i}:{st.kernel_name}": self.core.pipeline_statistics(
                    st.shader.spirv, st.shader.entry_point, st.workgroup_size, st.specialization_constants)
                for i, st in enumerate(plan.stages)}

    def get_memory_info(self) -> dict[str, Any]:
        """The core's heaps, blocks and staging, with the residency cache, the number of recorded plans, the
        host transfers and the outputs left on the device."""
        return {**self.core.memory_info(), "residency": self.residency.stats(), "recorded_plans": len(self.recorded),
                "transfers": self.transfers.stats(), "resident_outputs": len(self._outputs),
                **({"host_pool": self.host_pool.stats()} if self.host_pool is not None else {})}

    # -- lifetime -------------------------------------------------------------------------------------------
    def _release_all(self) -> None:
        """Hand back everything the session made on the device (the core calls this when it closes)."""
        self.closed = True
        self.recorded.clear()
        self.residency.clear()
        for sets in self._spare_sets.values():
            for dset, entry in sets:
                self.core.pipelines.free_set(dset, entry)
        self._spare_sets.clear()
        for pools in self._spare_queries.values():
            for pool in pools:
                pool.destroy()
        self._spare_queries.clear()
        if self.host_pool is not None:
            self.host_pool.destroy()
        if self._stuck is not None:
            for buf in self._stuck[1]:
                self.core.allocator.free(buf)
            self._stuck = None

    def close(self) -> None:
        """Release every device object (the core hands back this session's first); idempotent."""
        self.core.close()
