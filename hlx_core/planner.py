"""Turn a 901/902 contract into a ``Plan``: the single place where contracts are interpreted.

validate -> resolve shaders (a 900 in the store, or inline) -> reflect -> workgroup size (contract or
reflection, spec constants overriding LocalSizeId) -> check bindings and push constants against the
reflected interface -> resolve input tensors -> ``Plan``. Backends only ever see Plans, so every backend
reads contracts the same way. A stage of a library shader must fit its inputs as the kernel's helper would
build it (``hlx_core.kernels.as_built``).

What a new contract costs is kept low by caching what does not depend on it: plans by contract key and
store (a key names the same work forever, inputs being content-addressed too), shaders with their
reflection and validation by shader handle, tensors once resolved (``hlx_core.contracts.tensors``). A
contract exactly as a kernel helper built it (``hlx_core.kernels.built``) is neither validated again nor
replayed through the as-built check: the helper's builders made it from the same checks.

A shader seen for the first time is validated with spirv-val (``hlx_core.spirv.validate``) before any
backend can hand it to a driver; the committed library shaders are trusted. Kept plans hold their input
arrays, so they are bounded by those arrays' bytes (``PLAN_CACHE_BYTES``, each array counted once) as well
as by count, and a store's plans go when objects leave it or it is garbage-collected
(``hlx_core.contracts.store_cache``). ``persist=True`` (``hlx.run(..., persist=True)``) writes a plan's input
tensors through too, since the kernel helpers store new ones behind.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hlx_core.cas import api as cas
from hlx_core.codec import encode_chunks
from hlx_core.codec.handle import Handle, blake3_digest, is_handle, tag_of
from hlx_core.contracts.ids import COMPUTE_KERNEL, PIPELINE_CONFIG, VULKAN_SHADER
from hlx_core.contracts.key import raw_key
from hlx_core.contracts.store_cache import Held, StoreCache, held_bytes
from hlx_core.contracts.tensors import resolve_tensor, tensor_spec
from hlx_core.contracts.validate import validate
from hlx_core.device.lru import LRU
from hlx_core.errors import ContractError, HandleError, HLXError
from hlx_core.kernels.as_built import conform, library_kernel
from hlx_core.kernels.built import was_built
from hlx_core.plan import Binding, InputRef, OutputRef, Plan, Shader, Stage, StageRef
from hlx_core.spirv.reflect import reflect_entry
from hlx_core.spirv.types import EntryPoint
from hlx_core.spirv.validate import validate_module

PLAN_CACHE_ENTRIES = 64
PLAN_CACHE_BYTES = 256 << 20  # input arrays all kept plans hold together (each array counted once)
PLAN_CACHE_INPUT_BYTES = 64 << 20  # plans holding more input data than this are not kept
SHADER_CACHE_ENTRIES = 256


def _held(plan: Plan) -> Held:
    """The input arrays a kept plan holds (not those still to be loaded: resident outputs)."""
    arrays = [ref.loaded for ref in plan.input_refs.values()]
    return {id(array): held_bytes(array) for array in arrays if array is not None}


# (store, contract key) -> Plan
_plans: StoreCache[Plan] = StoreCache(PLAN_CACHE_ENTRIES, PLAN_CACHE_BYTES, PLAN_CACHE_INPUT_BYTES, _held)
# shader handle -> Shader (reflection is pure Python, not free)
_shaders: LRU[Any, Shader] = LRU(SHADER_CACHE_ENTRIES, locked=True)


def _fail(path: str, message: str, code: str = "E_CONTRACT_STRUCTURE") -> ContractError:
    return ContractError(code, message, path=path)


def _resolve(handle: str, store: Any, path: str) -> Any:
    """``cas.resolve`` with the contract path added to a missing/invalid-handle error."""
    try:
        return cas.resolve(Handle(handle), store=store)
    except HandleError as exc:
        raise _at(exc, path) from None


def _at(exc: HandleError, path: str) -> HandleError:
    return exc if exc.path else type(exc)(exc.code, exc.message, path=path)


def _contract_id(contract: dict) -> str:
    return next(iter(contract))


def plan(contract: Any, store: Any = None, *, behind: bool = False, persist: bool = False) -> Plan:
    """Plan a 901 or 902 contract (a dict) against ``store`` (default: the default store), storing its
    normalised form there; ``behind=True`` lets the store write it after returning (``cas.flush`` waits),
    as ``hlx.run`` does with its outputs; ``persist=True`` (``hlx.run(..., persist=True)``) writes the
    plan's input tensors through as well, should any still be on its way to the store."""
    store = store if store is not None else cas.get_default_store()
    # Fast path: the contract exactly as given was planned before against this store. Hashing it is
    # cheaper than validating it, and equal bytes mean an equal contract.
    raw = raw_key(contract)
    given = raw if raw is not None else _encoded_key(contract)
    cached = _plans.get(store, given) if given is not None else None
    if cached is not None:
        return _written_through(cached, store) if persist else cached
    trusted = raw is not None and was_built(raw)
    # Exactly the bytes of a contract a helper built: already its own normalised form.
    normalised = contract if trusted else validate(contract)
    cid = _contract_id(normalised)
    if cid not in (COMPUTE_KERNEL, PIPELINE_CONFIG):
        raise _fail(cid, f"hlx.run executes 901 COMPUTE_KERNEL and 902 PIPELINE_CONFIG contracts, not {cid}",
                    "E_CONTRACT_UNKNOWN")
    # Safe to write behind: the encoding of a contract without inline tensors holds none of its memory.
    key = cas.collapse(normalised, store=store, behind=behind)
    generation = store.generation  # (a store, or collapse had refused it)
    built = _plans.get(store, key) or _Planner(store, trusted).build(key, cid, normalised[cid])
    for k in {key, given} - {None}:
        _plans.put(store, k, built, generation)
    return _written_through(built, store) if persist else built


def _written_through(planned: Plan, store: Any) -> Plan:
    """``planned``, its input tensors now written to ``store`` if they were only on their way there (the
    kernel helpers store new inputs behind): a run with ``persist=True`` leaves a contract whose every
    object is durable. A tensor in the store already costs a lookup; one still only on a device is
    the store's to download (``flush``)."""
    for ref in planned.input_refs.values():
        if ref.loaded is not None:
            store.put(ref.handle, encode_chunks(ref.loaded))
    return planned


def _encoded_key(contract: Any) -> Handle | None:
    """The cache key of a contract ``raw_key`` cannot carry (tensors inline, tuples, NumPy scalars): the
    handle it would have as it stands, without storing it; None when it does not encode as it stands
    (validation will say why, or normalise it)."""
    try:
        return Handle.from_digest(tag_of(contract), blake3_digest(encode_chunks(contract)))
    except HLXError:
        return None


class _Planner:
    """Builds one Plan; resolved input tensors are shared across the stages that read them."""

    def __init__(self, store: Any, trusted: bool = False) -> None:
        self.store = store
        self.trusted = trusted  # a helper's own contract: its library stages fit their inputs by construction
        self.inputs: dict[str, InputRef] = {}
        self.shaders: dict[str, Shader] = {}  # by handle: looked up in the store once per plan

    def build(self, key: Handle, cid: str, body: dict) -> Plan:
        if cid == COMPUTE_KERNEL:
            stage = self.stage(body, COMPUTE_KERNEL, earlier=())
            outputs = tuple((0, j) for j in range(len(stage.output_slots)))
            return Plan(key, (stage,), outputs)
        return self.pipeline(key, body)

    # -- 902 ---------------------------------------------------------------------------------------------
    def pipeline(self, key: Handle, body: dict) -> Plan:
        stages: list[Stage] = []
        for i, item in enumerate(body["stages"]):
            path = f"902.stages[{i}]"
            kernel = self.stage_contract(item, path)
            stages.append(self.stage(kernel, f"{path}.901", earlier=tuple(stages)))
        outputs = self.pipeline_outputs(body.get("outputs"), stages)
        barriers = tuple((b["stage_idx"], b["memory_scope"]) for b in body.get("sync_barriers") or [])
        return Plan(key, tuple(stages), outputs, barriers)

    def stage_contract(self, item: Any, path: str) -> dict:
        """A stage given inline ({"901": ...}) or as the handle of a stored 901."""
        if isinstance(item, str):
            stored = _resolve(item, self.store, path)
            if not (isinstance(stored, dict) and set(stored) == {COMPUTE_KERNEL}):
                raise _fail(path, f"handle {item} names a {_describe(stored)}, not a 901 contract")
            item = validate(stored)
        return item[COMPUTE_KERNEL]

    @staticmethod
    def pipeline_outputs(spec: Any, stages: list[Stage]) -> tuple[tuple[int, int], ...]:
        """The returned (stage, output) pairs: those ``outputs`` names, else every output of the last stage."""
        if not spec:
            last = len(stages) - 1
            return tuple((last, j) for j in range(len(stages[last].output_slots)))
        for i, ref in enumerate(spec):
            s, j = ref["stage"], ref["output"]
            if j >= len(stages[s].output_slots):
                raise _fail(f"902.outputs[{i}].output",
                            f"stage {s} has {len(stages[s].output_slots)} output(s), no output {j}")
        return tuple((ref["stage"], ref["output"]) for ref in spec)

    # -- 901 ---------------------------------------------------------------------------------------------
    def stage(self, body: dict, path: str, earlier: tuple[Stage, ...]) -> Stage:
        shader = self.shader(body["shader_handle"], f"{path}.shader_handle")
        info = shader.info
        spec = tuple(sorted((int(k), v) for k, v in (body.get("specialization_constants") or {}).items()))
        workgroup, spec = self.workgroup(body.get("workgroup_size"), info, dict(spec), path)
        bindings = self.bindings(body["bindings"], shader, path, earlier)
        push = body.get("push_constants")
        if push is None and body.get("push_constants_layout"):
            push = _pack_params(body["push_constants_layout"], body.get("params") or {},
                                int(info.push_constant_size), path)
        push = bytes(push or b"")
        self.check_push_constants(push, info, path)
        params = dict(body.get("params") or {})
        library = library_kernel(shader.spirv)
        as_built = self.trusted
        if library is not None and not self.trusted:
            params, as_built = conform(library, body["kernel_name"], _tensor_specs(bindings, earlier), params,
                                       push, body["dispatch"], path)
        gx, gy, gz = body["dispatch"]
        return Stage(
            kernel_name=body["kernel_name"],
            shader=shader,
            workgroup_size=workgroup,
            dispatch=(int(gx), int(gy), int(gz)),
            bindings=bindings,
            push_constants=push,
            specialization_constants=spec,
            params=params,
            shared_memory_bytes=int(body.get("shared_memory_bytes") or 0),
            writes_all_outputs=library is not None and library.writes_all_outputs and as_built,
        )

    def shader(self, ref: Any, path: str) -> Shader:
        """A 900 from the store (by handle) or inline; reflected and validated once per shader handle."""
        if isinstance(ref, str):
            if ref in self.shaders:
                return self.shaders[ref]
            handle = Handle(ref)
            cached = _shaders.get(handle)
            if cached is not None and cas.exists(handle, store=self.store):  # cached, yet never past a store
                self.shaders[ref] = cached
                return cached
            stored = _resolve(ref, self.store, path)
            if not (isinstance(stored, dict) and set(stored) == {VULKAN_SHADER}):
                raise _fail(path, f"handle {ref} names a {_describe(stored)}, not a 900 shader contract")
            body = validate(stored)[VULKAN_SHADER]
        else:
            handle = cas.collapse(ref, store=self.store)
            cached = _shaders.get(handle)
            if cached is not None:
                return cached
            body = ref[VULKAN_SHADER]
        spirv = bytes(body["spirv_binary"])
        entry = str(body.get("entry_point", "main"))
        info = _inspect(spirv, entry, path)
        shader = Shader(handle, spirv, entry, info, body.get("wgsl_source"))
        _shaders.put(handle, shader)
        if isinstance(ref, str):
            self.shaders[ref] = shader
        return shader

    @staticmethod
    def workgroup(given: Any, info: EntryPoint, spec: dict[int, Any],
                  path: str) -> tuple[tuple[int, int, int], tuple[tuple[int, Any], ...]]:
        """The workgroup size that will run, and the spec constants that make it so.

        A dimension the shader fixes must agree with the contract; a dimension set by a spec constant
        (LocalSizeId) takes the contract's value when no constant is given for it; a dimension computed from
        spec constants is evaluated with the contract's values."""
        for dim in range(3):
            sid = info.local_size_ids[dim]
            if given is not None and sid is not None and sid not in spec:
                spec[sid] = int(given[dim])
        # Axes may also be computed from spec constants (OpSpecConstantOp): evaluate them all at once.
        try:
            size = info.workgroup_size(spec)
        except HLXError as exc:
            raise _fail(f"{path}.workgroup_size", exc.message) from None
        for dim in range(3):
            sid = info.local_size_ids[dim]
            if given is not None and int(given[dim]) != size[dim]:
                raise _fail(f"{path}.workgroup_size[{dim}]",
                            f"contract says {int(given[dim])} but the shader runs with {size[dim]} "
                            f"(local_size {tuple(info.local_size)}"
                            + (f", spec constant {sid}" if sid is not None else "")
                            + (", computed from spec constants" if info.workgroup_exprs[dim] is not None
                               and sid is None else "") + ")")
            if size[dim] < 1:
                raise _fail(f"{path}.workgroup_size[{dim}]", f"workgroup size {size[dim]} must be at least 1")
        return size, tuple(sorted(spec.items()))

    def bindings(self, items: list, shader: Shader, path: str,
                 earlier: tuple[Stage, ...]) -> tuple[Binding, ...]:
        declared = shader.set0_bindings
        if isinstance(declared, str):
            raise _fail(f"{path}.shader_handle", declared)
        if declared != tuple(range(len(items))):
            raise _fail(f"{path}.bindings", f"the contract gives {len(items)} binding(s) but the shader "
                                            f"declares set 0 bindings {list(declared)}; binding i must be binding i")
        return tuple(self.binding(item, f"{path}.bindings[{i}]", earlier) for i, item in enumerate(items))

    def binding(self, item: Any, path: str, earlier: tuple[Stage, ...]) -> Binding:
        if isinstance(item, str):
            return self.input(item, path)
        if isinstance(item, dict) and "output" in item and isinstance(item["output"], dict):
            out = item["output"]
            try:
                dtype = np.dtype(out["dtype"])
            except TypeError as exc:
                raise _fail(f"{path}.output.dtype", f"unknown dtype {out['dtype']!r}",
                            "E_CONTRACT_FIELD_TYPE") from exc
            return OutputRef(dtype, tuple(int(d) for d in out["shape"]))
        if isinstance(item, dict) and "stage" in item:
            s, j = int(item["stage"]), int(item["output"])
            if not 0 <= s < len(earlier):
                raise _fail(path, f"stage {s} is not an earlier stage (this is stage {len(earlier)})")
            if not 0 <= j < len(earlier[s].output_slots):
                raise _fail(path, f"stage {s} has {len(earlier[s].output_slots)} output(s), no output {j}")
            return StageRef(s, j)
        raise _fail(path, f"expected a tensor handle, {{'output': {{dtype, shape}}}} or "
                          f"{{'stage': i, 'output': j}}, got {_describe(item)}")

    def input(self, handle: str, path: str) -> InputRef:
        if handle not in self.inputs:
            if not is_handle(handle):
                raise _fail(path, f"{handle!r:.90} is not a handle", "E_CONTRACT_FIELD_TYPE")
            h, store = Handle(handle), self.store
            spec = tensor_spec(h, store)
            if spec is not None:  # still on a device: planned from its record, loaded only if a backend asks
                self.inputs[handle] = InputRef(h, dtype=spec[0], shape=spec[1], load=lambda: resolve_tensor(h, store))
                return self.inputs[handle]
            try:
                value = resolve_tensor(h, store)
            except HandleError as exc:
                raise _at(exc, path) from None
            if not isinstance(value, np.ndarray):
                raise _fail(path, f"handle {handle} names a {_describe(value)}, not a tensor",
                            "E_CONTRACT_FIELD_TYPE")
            self.inputs[handle] = InputRef(h, value)
        return self.inputs[handle]

    @staticmethod
    def check_push_constants(push: bytes, info: EntryPoint, path: str) -> None:
        size = int(info.push_constant_size)
        if len(push) != size:
            raise _fail(f"{path}.push_constants",
                        f"{len(push)} byte(s) given but the shader's push-constant block is {size} byte(s)")


def _tensor_specs(bindings: tuple[Binding, ...], earlier: tuple[Stage, ...]
                  ) -> list[tuple[np.dtype, tuple[int, ...], bool]]:
    """(dtype, shape, is_output) of each binding, following stage references to the outputs they read."""
    specs = []
    for b in bindings:
        if isinstance(b, InputRef):
            specs.append((b.dtype, b.shape, False))
        elif isinstance(b, OutputRef):
            specs.append((np.dtype(b.dtype), b.shape, True))
        else:
            out = earlier[b.stage].output_spec(b.output)
            specs.append((np.dtype(out.dtype), out.shape, False))
    return specs


def _pack_params(layout: list[dict], params: dict[str, Any], size: int, path: str) -> bytes:
    """Push-constant bytes from named params and their layout (little-endian, zero elsewhere)."""
    block = bytearray(size)
    for i, item in enumerate(layout):
        name, offset, dtype = item["name"], item["offset"], np.dtype(item["type"]).newbyteorder("<")
        if name not in params:
            raise _fail(f"{path}.params.{name}", f"push_constants_layout[{i}] names param {name!r}, which "
                                                 "params does not give", "E_CONTRACT_FIELD_MISSING")
        if offset + dtype.itemsize > size:
            raise _fail(f"{path}.push_constants_layout[{i}]", f"{name!r} at offset {offset} ends past the "
                                                              f"shader's {size}-byte push-constant block")
        raw = _scalar_bytes(params[name], dtype, f"{path}.params.{name}")
        block[offset:offset + dtype.itemsize] = raw
    return bytes(block)


def _scalar_bytes(value: Any, dtype: np.dtype, path: str) -> bytes:
    """One param as little-endian bytes of ``dtype``, refusing values that do not fit."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                or not info.min <= int(value) <= info.max:
            raise _fail(path, f"{value!r} is not a {dtype.name} value", "E_CONTRACT_FIELD_TYPE")
        return np.array(int(value), dtype).tobytes()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise _fail(path, f"{value!r} is not a number", "E_CONTRACT_FIELD_TYPE")
    return np.array(float(value), dtype).tobytes()


def _inspect(spirv: bytes, entry: str, path: str) -> EntryPoint:
    """The entry point's reflection, once the whole module has passed spirv-val; errors carry ``path``."""
    try:
        info = reflect_entry(spirv, entry)
        validate_module(spirv)
        return info
    except HLXError as exc:
        if exc.path:
            raise
        raise type(exc)(exc.code, exc.message, path=path) from None


def _describe(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        return f"{next(iter(value))} contract" if next(iter(value)).isdigit() else "map"
    return type(value).__name__
