"""The wgpu session: HLX plans through wgpu-py (on Vulkan, Metal or D3D12), opened by ``hlx_wgpu.plugin``.

A session owns one device and everything made on it (shader modules, pipelines, bind groups, pooled
buffers, the readback buffer, the timestamp queries) in a ``DeviceCore``. When the device is lost the core
is dropped and the next run opens a new device, so a session survives device loss; a refused contract
(naga, limits) leaves the core as it was. A run past HLX_WGPU_TIMEOUT_S stays on the device and leaves the
session ``broken`` (hlx_core.backend.Session): its next run waits for it first, and the runtime opens a new
session instead. What a plan needs besides its data (the limits check, modules, pipelines, push-constant
bytes) is made once per plan key; what a run of it on given buffers encodes and reads back (bind groups,
pass descriptors, readback ranges, output views: hlx_wgpu/recording.py) once per plan key and buffers, so a
warm run (inputs resident, the same pooled buffers free) only encodes, submits and reads back.
Outputs of at least HLX_WGPU_DEVICE_HASH_BYTES (default 1 MiB, as on Vulkan) are hashed on the device by
the hash passes appended to the plan (hlx_core.device.hash.hashed_plan) and left there: their buffers go to
the residency under their handles (``WgpuOutput``, downloaded on demand, spilled before eviction), and only
the digests are read back.
Every run first clears each buffer a stage writes whose kernel may leave elements unwritten
(hlx_core.device.poison), since pooled buffers hold earlier runs' data; with output poisoning on (read when
the device core is made) it copies 0xFF bytes over every buffer a stage writes instead.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hlx_core.backend import DeviceInfo, DeviceOutput, DeviceOutputs, Execution, Session
from hlx_core.codec.handle import Handle
from hlx_core.device.hash import HashedPlan, digest_handle, hashed_plan, min_bytes
from hlx_core.device.layout import BufferLayout, align, buffer_layout, to_array
from hlx_core.device.limits import check_plan
from hlx_core.device.lru import LRU
from hlx_core.device.poison import cleared_slots, poison_enabled
from hlx_core.device.residency import Residency, Transfers
from hlx_core.device.waiting import spin_budget, timeout_s
from hlx_core.errors import HLXError
from hlx_core.plan import InputRef, OutputRef, Plan, Stage
from hlx_core.settings import env_bytes

from hlx_wgpu import adapter as adapters
from hlx_wgpu.buffers import (
    BUFFER_ALIGN,
    ENV_SPIN,
    ENV_SPIN_MAX,
    ENV_TIMEOUT,
    BufferPool,
    PoisonSource,
    PooledBuffer,
    Readback,
    Upload,
)
from hlx_wgpu.commands import Commands, Script
from hlx_wgpu.errors import DeviceLost, Timeout, translate, wgpu_call
from hlx_wgpu.pipelines import UNIFORM_LAYOUT, Pipeline, PipelineCache
from hlx_wgpu.recording import HostOutput, Recording
from hlx_wgpu.shaders import CompiledShader, PushMode, ShaderCache
from hlx_wgpu.timestamps import Timestamps

ENV_PUSH = "HLX_WGPU_PUSH_CONSTANTS"  # "auto" (immediates when the adapter has them) or "uniform"
ENV_RESIDENT = "HLX_WGPU_RESIDENT_BYTES"  # device bytes kept for inputs and outputs between runs (0: none)
DEFAULT_RESIDENT_BYTES = 512 << 20
ENV_DEVICE_HASH = "HLX_WGPU_DEVICE_HASH_BYTES"  # outputs at least this large are hashed and kept on the device
MAX_PREPARED = 256  # plans whose preparation is kept


class WgpuOutput(DeviceOutput):
    """An output left on a wgpu device: its pooled buffer, held by the core's residency."""

    def __init__(self, core: "DeviceCore", handle: Handle, spec: OutputRef, buf: PooledBuffer) -> None:
        super().__init__(handle, spec.dtype, spec.shape)
        self.core = core
        self.buffer = buf

    def _read(self) -> np.ndarray:
        core, spec = self.core, OutputRef(self.dtype, self.shape)
        size = align(max(spec.nbytes, 4), 4)
        core.transfers.downloaded(spec.nbytes)
        staging = core.readback.reserve(size)
        with wgpu_call(f"downloading {self.handle}"):
            encoder = core.device.create_command_encoder(label="hlx-download")
            encoder.copy_buffer_to_buffer(self.buffer.buffer, 0, staging, 0, size)
            core.device.queue.submit([encoder.finish()])
        return core.readback.read(size, lambda data: to_array(data, spec))


@dataclass(frozen=True)
class PreparedPlan:
    """What running a plan needs besides its input data. The plan key names the whole contract, so this is
    made once per key: the buffer layout, the limits check passed, each stage's module and pipeline, the
    slots a stage may write, each stage's push-constant bytes."""

    layout: BufferLayout
    compiled: tuple[tuple[CompiledShader, Pipeline], ...]
    written: frozenset[int]
    pushes: tuple[bytes, ...]


class DeviceCore:
    """A wgpu device and the caches that belong to it. ``limits`` are the device's compute limits in the
    backend-neutral form (``device.limits`` has wgpu's own)."""

    def __init__(self, adapter: adapters.Adapter, push_constants: str) -> None:
        wgpu = adapters.import_wgpu()
        self.adapter = adapter
        self.device = adapters.request_device(adapter)
        self.limits = adapters.device_limits(self.device.limits)
        self.features = frozenset(self.device.features)
        # The largest push block fed as immediates (0: every block goes through a uniform buffer).
        self.immediate_size = int(self.device.limits.get("max-immediate-size", 0)) \
            if push_constants == "auto" and "immediates" in self.features else 0
        self.shaders = ShaderCache(self.device, self.features, adapter.name)
        self.pipelines = PipelineCache(self.device, wgpu)
        usage = wgpu.BufferUsage
        self.storage = BufferPool(self.device, usage.STORAGE | usage.COPY_DST | usage.COPY_SRC, "hlx-storage",
                                  on_destroy=self._forget_buffer)
        self.uniforms = BufferPool(self.device, usage.UNIFORM | usage.COPY_DST, "hlx-push-constants",
                                   max_free_bytes=1 << 20, on_destroy=self._forget_buffer)
        # Inputs and the outputs left on the device, by handle; an output is spilled before its buffer goes.
        self.resident: Residency[PooledBuffer] = Residency(env_bytes(ENV_RESIDENT, DEFAULT_RESIDENT_BYTES),
                                                           self._release_resident)
        self.outputs = DeviceOutputs()  # the outputs resident buffers hold
        self.transfers = Transfers()
        self.hash_min_bytes = min_bytes(ENV_DEVICE_HASH)
        self.hashed: LRU[Handle, bool] = LRU(MAX_PREPARED)  # plan key -> whether it has outputs to hash
        self.readback = Readback(self.device, wgpu, spin_budget(ENV_SPIN, ENV_SPIN_MAX, adapter.kind == "cpu"),
                                 timeout_s(ENV_TIMEOUT))
        self.upload = Upload(self.device, wgpu)
        self.commands = Commands(self.device)  # each run's commands, straight to wgpu-native
        self.timestamps = Timestamps(self.device, wgpu) if "timestamp-query" in self.features else None
        self.poison = PoisonSource(self.device, wgpu) if poison_enabled() else None
        self.prepared: LRU[Handle, PreparedPlan] = LRU(MAX_PREPARED)
        # plan key -> its run on the buffers it last ran on (a dropped one gives its uniform buffers back)
        self.recordings: LRU[Handle, Recording] = LRU(MAX_PREPARED, lambda _, rec: rec.release(self.uniforms))

    def prepare(self, plan: Plan) -> PreparedPlan:
        """The plan's ``PreparedPlan``, made (and the plan checked against the limits) on its first run; the
        caller looks it up in ``prepared`` first."""
        layout = buffer_layout(plan)
        check_plan(plan, layout, self.limits, f"wgpu adapter {self.adapter.name!r}", buffer_align=BUFFER_ALIGN)
        compiled = []
        for stage in plan.stages:
            shader = self.shaders.get(stage, self.push_mode(stage))
            compiled.append((shader, self.pipelines.get(stage, shader)))
        written = layout.written | frozenset(layout.bindings[s][i] for s, (shader, _) in enumerate(compiled)
                                             for i in shader.written)
        prep = PreparedPlan(layout, tuple(compiled), written, tuple(_push_bytes(stage) for stage in plan.stages))
        self.prepared.put(plan.key, prep)
        return prep

    def record(self, plan: Plan, prep: PreparedPlan, buffers: list[PooledBuffer], on_device: set[int],
               counted: int) -> Recording:
        """The ``Recording`` of a run of ``plan`` on ``buffers`` (one per layout slot) that reads back every
        output but those ``on_device``; outputs from ``counted`` on are digests, not counted as transfers.
        It reserves the staging, poison and timestamp buffers its commands name."""
        layout, stages, ts = prep.layout, len(plan.stages), self.timestamps
        outputs: list[HostOutput | None] = []
        downloads, copies, offset = [], [], 0
        for k, slot_index in enumerate(layout.outputs):
            spec = layout.slots[slot_index].source
            assert isinstance(spec, OutputRef)
            if k in on_device:
                outputs.append(None)
                continue
            size = layout.slots[slot_index].alloc_bytes  # whole words already
            outputs.append(HostOutput(offset, np.dtype(spec.dtype).newbyteorder("<"), math.prod(spec.shape),
                                      tuple(spec.shape)))
            copies.append((buffers[slot_index].buffer, offset, size))
            if k < counted:
                downloads.append(spec.nbytes)
            offset = align(offset + size, BUFFER_ALIGN)
        read_bytes = max((o.offset + layout.slots[s].alloc_bytes for o, s in zip(outputs, layout.outputs)
                          if o is not None), default=0)
        if ts is not None:
            ts.prepare(stages)
            read_bytes = offset + 16 * stages
        staging = self.readback.reserve(read_bytes)
        cleared = [buffers[slot] for slot in cleared_slots(plan, layout, self.poison is not None)]
        poison = self.poison.reserve(max(buf.size for buf in cleared)) if self.poison and cleared else None
        steps, keep, uniforms = [], [], []
        try:
            for s, stage in enumerate(plan.stages):
                shader, pipe = prep.compiled[s]
                bound = [(i, buffers[slot], layout.slots[slot].alloc_bytes)
                         for i, slot in enumerate(layout.bindings[s])]
                groups: tuple[Any, ...] = (self.pipelines.bind_group(pipe.storage_layout, pipe.storage_key,
                                                                     bound),)
                push = prep.pushes[s]
                if shader.push_mode == "uniform":  # written once: the recording keeps the buffer
                    ubuf = self.uniforms.acquire(len(push))
                    uniforms.append(ubuf)
                    self.device.queue.write_buffer(ubuf.buffer, 0, push)
                    groups += (self.pipelines.bind_group(pipe.uniform_layout, UNIFORM_LAYOUT,
                                                         [(0, ubuf, align(len(push), 16))]),)
                step, held = self.commands.compute_pass(stage.kernel_name, pipe.pipeline, groups,
                                                        push if shader.push_mode == "immediates" else None,
                                                        stage.dispatch, ts.query_set if ts is not None else None, s)
                steps.append(step)
                keep.append(held)
        except BaseException:
            for ubuf in uniforms:
                self.uniforms.release(ubuf)
            raise
        script_copies = [(buf._internal, 0, staging._internal, at, size) for buf, at, size in copies]
        resolve = None
        if ts is not None:
            resolve, stamps = ts.commands(stages, staging, offset)
            script_copies.append(stamps)
        script = Script(tuple((buf.buffer._internal, buf.size) for buf in cleared if poison is None),
                        tuple((poison._internal, buf.buffer._internal, buf.size) for buf in cleared
                              if poison is not None),
                        tuple(steps), resolve, tuple(script_copies), tuple(keep))
        inputs, pooled, warm = [], [], True
        for slot, buf in zip(layout.slots, buffers):
            if isinstance(slot.source, InputRef) and slot.index not in prep.written:
                inputs.append((slot.source.handle, buf))
            else:
                pooled.append(buf)
                warm = warm and not isinstance(slot.source, InputRef)
        return Recording(tuple(buffers), tuple(inputs), tuple(pooled), warm, self.shared(), tuple(uniforms),
                         script, read_bytes, tuple(outputs), tuple(downloads), stages,
                         offset if ts is not None else None,
                         tuple((stage.kernel_name, shader) for stage, (shader, _) in zip(plan.stages, prep.compiled)),
                         f"recording plan {plan.key}")

    def shared(self) -> tuple[Any, ...]:
        """The device-lifetime buffers a recording's commands name (each replaced when it grows)."""
        return (self.readback.buffer, self.poison.buffer if self.poison is not None else None,
                self.timestamps.query_set if self.timestamps is not None else None)

    def _forget_buffer(self, serial: int) -> None:
        """Drop what refers to the pooled buffer ``serial`` (it is being destroyed)."""
        self.pipelines.forget_buffer(serial)
        self.recordings.discard_where(lambda _, rec: rec.uses(serial))

    def _release_resident(self, buf: PooledBuffer) -> None:
        self.outputs.evict(buf.serial)
        self.storage.release(buf)

    def with_hashes(self, plan: Plan) -> HashedPlan | None:
        """``plan`` with the hash passes of its large outputs, None when none is large (remembered per key).
        Made for each run, so its inputs are the run's own."""
        if self.hashed.get(plan.key) is False:
            return None
        hashed = hashed_plan(plan, self.hash_min_bytes)
        self.hashed.put(plan.key, hashed is not None)
        return hashed

    def push_mode(self, stage: Stage) -> PushMode:
        size = stage.shader.info.push_constant_size
        if size == 0:
            return "none"
        return "immediates" if size <= self.immediate_size else "uniform"

    def close(self) -> None:
        """Destroy everything, once the device has finished its work (a timed-out run included)."""
        for closer in (self.readback.drain, self.recordings.clear, self.resident.clear, self.storage.clear,
                       self.uniforms.clear, self.readback.close, self.upload.close,
                       self.timestamps.close if self.timestamps else None, self.poison.close if self.poison else None,
                       self.device.destroy):
            if closer is None:
                continue
            try:
                closer()
            except Exception:  # a lost device refuses to destroy what it already lost
                pass


class WgpuSession(Session):
    backend = "wgpu"

    def __init__(self, adapter: adapters.Adapter, push_constants: str = "auto") -> None:
        if push_constants not in ("auto", "uniform"):
            raise HLXError("E_CONFIG", f"push_constants={push_constants!r}: use 'auto' (immediates where the "
                           "adapter has them) or 'uniform'")
        self.device: DeviceInfo = adapter.device_info()
        self._adapter = adapter
        self._push_constants = push_constants
        # None after a device loss (the next run opens a new device) and once closed.
        self.core: DeviceCore | None = DeviceCore(adapter, push_constants)
        self.shader_paths: dict[str, CompiledShader] = {}  # kernel name -> how its last run was compiled

    def _execute(self, plan: Plan) -> Execution:
        start = time.perf_counter()
        if self.core is None:
            self.core = DeviceCore(self._adapter, self._push_constants)
        core = self.core
        try:
            if self.broken:
                core.readback.recover()  # the run that timed out first (E_TIMEOUT again while it still runs)
                self.broken = False
            # A plan recorded under its own key ran without hash passes (a hashed run is recorded under the
            # hashed plan's key): a claimed recording is the whole warm run.
            rec = core.recordings.get(plan.key)
            if rec is not None and rec.claim(core.resident, core.storage, core.shared()):
                hashed = None
                arrays, timings = self._run_recorded(core, rec)
            else:
                hashed = core.with_hashes(plan)
                arrays, timings = self._run(core, plan if hashed is None else hashed.plan, hashed)
        except DeviceLost:
            self.core = None
            self.broken = False  # the next device has none of this one's work
            core.close()
            raise
        except Timeout:
            self.broken = True  # the run is still on the device, using its buffers: the next one waits for it
            raise
        timings["host_ms"] = (time.perf_counter() - start) * 1e3
        if hashed is None:
            return Execution(arrays, timings)
        handles = hashed.handles(arrays)
        count = len(hashed.digests)
        return Execution(arrays[:count], timings, handles[:count])

    def _run(self, core: DeviceCore, plan: Plan, hashed: HashedPlan | None = None
             ) -> tuple[list[np.ndarray | DeviceOutput], dict[str, float]]:
        """Run ``plan`` (``hashed.plan`` when outputs are hashed: those outputs stay on the device, and the
        returned list holds them as ``WgpuOutput``s, then the digests): find its buffers, upload what is not
        resident, and record what it runs (or reuse the recording made on the same buffers)."""
        rec = core.recordings.get(plan.key)
        prep = core.prepared.get(plan.key) or core.prepare(plan)
        layout = prep.layout
        held: list[tuple[BufferPool, PooledBuffer]] = []
        uploads: list[tuple[PooledBuffer, np.ndarray]] = []
        keep: list[tuple[str, PooledBuffer]] = []  # uploaded inputs no stage writes: resident afterwards
        try:
            buffers = []
            for slot in layout.slots:
                source = slot.source
                volatile = slot.index in prep.written
                buf = core.resident.get(source.handle) if isinstance(source, InputRef) and not volatile else None
                if buf is None:
                    buf = core.storage.acquire(slot.alloc_bytes)
                    held.append((core.storage, buf))
                    if isinstance(source, InputRef):
                        uploads.append((buf, plan.input_refs[source.handle].array))
                        core.transfers.uploaded(source.nbytes)
                        if not volatile:
                            keep.append((source.handle, buf))
                buffers.append(buf)
            on_device = {k for k, d in enumerate(hashed.digests) if d is not None} if hashed is not None else set()
            spans = core.upload.write([array for _, array in uploads])
            if rec is None or rec.buffers != tuple(buffers) or rec.shared != core.shared():
                counted = len(hashed.digests) if hashed is not None else len(plan.outputs)  # the rest: digests
                with wgpu_call(f"recording plan {plan.key}"):
                    rec = core.record(plan, prep, buffers, on_device, counted)
                core.recordings.put(plan.key, rec)
            self.shader_paths.update(rec.paths)
            source = core.upload.buffer
            result = self._submit(core, rec, [(source._internal, at, buf.buffer._internal, size)
                                              for (buf, _), (at, size) in zip(uploads, spans)])
        except BaseException:
            for pool, buf in held:
                pool.release(buf)
            raise
        arrays = result[0]
        for k in sorted(on_device):  # the run's outputs left on the device: their buffers leave the pool
            arrays[k] = self._output(core, hashed, k, buffers[layout.outputs[k]], arrays, keep)
        kept = {id(buf) for _, buf in keep}
        for pool, buf in held:
            if id(buf) not in kept:
                pool.release(buf)
        for handle, buf in keep:
            core.resident.put(handle, buf)
        core.resident.trim()
        return result

    def _run_recorded(self, core: DeviceCore, rec: Recording) -> tuple[list[Any], dict[str, float]]:
        """Run a claimed recording: its pooled buffers go back to the pool afterwards."""
        self.shader_paths.update(rec.paths)
        try:
            return self._submit(core, rec, ())
        finally:
            for buf in rec.pooled:
                core.storage.release(buf)

    @staticmethod
    def _submit(core: DeviceCore, rec: Recording, uploads: list[tuple[Any, int, Any, int]] | tuple[()]
                ) -> tuple[list[Any], dict[str, float]]:
        """Encode and submit ``rec`` after the uploads (native copies from the upload buffer), then read every
        output back but those left on the device (None) and the timings."""
        try:  # (what wgpu_call does, without a context manager on every run)
            core.commands.run(rec.script, uploads)
        except HLXError:
            raise
        except Exception as exc:
            raise translate(exc, rec.where) from exc
        arrays, stamps = core.readback.read(rec.read_bytes, rec.read)
        for nbytes in rec.downloads:
            core.transfers.downloaded(nbytes)
        timings = core.timestamps.timings(stamps, rec.stages) if core.timestamps is not None and stamps else {}
        return arrays, timings

    @staticmethod
    def _output(core: DeviceCore, hashed: HashedPlan, k: int, buf: PooledBuffer, arrays: list,
                keep: list[tuple[str, PooledBuffer]]) -> DeviceOutput:
        """Output ``k`` as a resident ``WgpuOutput``: the buffer already resident under its handle (an
        earlier output or an uploaded input with these bytes serves), else this run's buffer, kept (added to
        ``keep`` once, however often the plan lists the output, so it is not returned to the pool)."""
        handle = digest_handle(arrays[hashed.digests[k]])
        spec = hashed.plan.output_specs[k]
        held = core.resident.get(handle)
        if held is None and all(kept is not buf for _, kept in keep):
            keep.append((handle, buf))
        target = buf if held is None else held
        return core.outputs.of(target.serial, lambda: WgpuOutput(core, handle, spec, target))

    def holds(self, handle: str) -> bool:
        return self.core is not None and handle in self.core.resident

    def get_memory_info(self) -> dict[str, Any]:
        """Residency, the outputs left on the device and the host transfers of the current device."""
        core = self.core
        if core is None:
            return {}
        return {"residency": core.resident.stats(), "resident_outputs": len(core.outputs),
                "transfers": core.transfers.stats(), "storage_buffers_created": core.storage.created}

    def close(self) -> None:
        if self.core is not None and not self.forked:  # a forked child never releases the parent's device
            self.core.close()
            self.core = None
        self.closed = True


def _push_bytes(stage: Stage) -> bytes:
    """The stage's push constants (the planner sized them to the shader's block), zero-padded to whole
    words."""
    data = bytes(stage.push_constants)
    return data + bytes(align(len(data), 4) - len(data))

