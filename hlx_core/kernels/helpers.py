"""Helpers that build library-kernel contracts (``hlx.kernels.add``, ``gemm``, ``pipeline``, ...).

A helper takes arrays (anything NumPy can view, hlx_core/arrays.py; collapsed into the store: up to
``BEHIND_MAX_BYTES`` from a copy, behind the caller, as ``hlx.run`` stores its outputs), tensor
handles (resolved for their dtype and shape), or ``stage(i, j)`` markers, checks dtypes and shapes
(``ContractError`` E_DTYPE / E_SHAPE before anything runs), and returns a contract: ``{"901": ...}``, or
``{"902": ...}`` for kernels that take several passes (reduce_sum of more than 8192 elements).

A marker has no data, so a helper given one returns a ``Deferred`` call instead; ``pipeline()`` knows the
dtype and shape of every earlier step's outputs and binds it then. ``stage(i)`` counts pipeline steps
(the items of the list), not the flattened stages: a multi-pass step is addressed by its final outputs.
docs/KERNELS.md lists every kernel's bindings, params, push-constant layout and dispatch rule.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, Union

import numpy as np

from hlx_core.arrays import as_host_array
from hlx_core.cas.api import collapse, get_default_store, resolve
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle, is_handle
from hlx_core.contracts.ids import COMPUTE_KERNEL, PIPELINE_CONFIG
from hlx_core.contracts.schemas import is_output
from hlx_core.contracts.tensors import keep, resolve_tensor, tensor_spec, worth_keeping
from hlx_core.errors import ContractError
from hlx_core.kernels.build import Operand
from hlx_core.kernels.built import built_as_given, record
from hlx_core.kernels.library import BY_NAME, check_conv_scalars
from hlx_core.kernels.shaders import library_shader, library_shader_object
from hlx_core.kernels.spec import Builder, KernelSpec

BARRIER_SCOPE = "device"  # stages are separate dispatches: their data meet in device memory
BEHIND_MAX_BYTES = 16 << 20  # arrays up to this size are copied and stored behind; larger ones are written through


@dataclass(frozen=True)
class StageOutput:
    """Output ``output`` of pipeline step ``step``: what ``stage(i, j)`` returns."""

    step: int
    output: int = 0


def stage(i: int, j: int = 0) -> StageOutput:
    """Name output ``j`` of the ``i``-th step of the enclosing ``pipeline([...])`` as a helper argument."""
    for name, value in (("i", i), ("j", j)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"stage({name}={value!r}): expected an int >= 0")
    return StageOutput(int(i), int(j))


Argument = Union[Operand, StageOutput]


@dataclass(frozen=True, eq=False)
class Deferred:
    """A helper call with ``stage()`` arguments, bound by ``pipeline()`` once earlier steps are known."""

    kernel: str
    build: Builder = field(repr=False)
    args: tuple[Argument, ...]
    scalars: dict[str, Any]
    store: Any = field(repr=False)

    def bind(self, lookup: Callable[[StageOutput], Operand], base: int) -> list[dict]:
        """The 901 bodies of this call; its own stages get flat indices from ``base`` on."""
        operands = [lookup(a) if isinstance(a, StageOutput) else a for a in self.args]
        return _with_shaders(self.build(base, *operands, **self.scalars), self.store)


_deferred: weakref.WeakSet[Deferred] = weakref.WeakSet()  # the calls the helpers made (not made by hand)


# ----------------------------------------------------------------------------------------------- shaders

def shader_handle(kernel: str, store: Any = None) -> Handle:
    """The handle of ``kernel``'s 900 in ``store`` (stored there on every call, so it is present)."""
    stem = BY_NAME[kernel].shader
    return put_object(library_shader(stem), library_shader_object(stem), store)


def put_object(value: Any, encoded: tuple[Handle, tuple[Any, ...]], store: Any = None) -> Handle:
    """Store ``value`` whose (handle, LC-B chunks) are ``encoded`` already (a shader's 900, encoded and
    hashed once), so a call that makes a contract pays one store lookup, not an encoding and a hash."""
    target = _store(store)
    if not isinstance(target, Store):
        return collapse(value, store)  # which refuses what is not a store (E_STORE)
    handle, chunks = encoded
    target.put(handle, chunks)
    return handle


def _with_shaders(bodies: list[dict], store: Any) -> list[dict]:
    """``bodies`` with the ``shader_handle`` of their kernel, collapsed into ``store`` once per kernel.

    Builders leave it out: the planner's as-built check rebuilds a stage to compare it and needs no
    shader stored or hashed again."""
    handles: dict[str, Handle] = {}
    for i, body in enumerate(bodies):
        if "shader_handle" in body:  # a user kernel's body names its own shader
            continue
        kernel = body["kernel_name"]
        if kernel not in handles:
            handles[kernel] = shader_handle(kernel, store)
        bodies[i] = {"kernel_name": kernel, "shader_handle": handles[kernel], **body}
    return bodies


# ----------------------------------------------------------------------------------------------- operands

def _store(store: Any) -> Any:
    return get_default_store() if store is None else store


def _operand(value: Any, kernel: str, name: str, store: Any) -> Argument:
    """Turn a helper argument into an Operand (collapsing arrays, resolving handles) or keep a marker."""
    if isinstance(value, StageOutput):
        return value
    if isinstance(value, str) and is_handle(value):
        handle = Handle(value)
        spec = tensor_spec(handle, _store(store))
        if spec is not None:  # an output still on a device: its record says what it is
            return Operand(handle, *spec)
        array = resolve_tensor(handle, _store(store))
        if not isinstance(array, np.ndarray):
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"{kernel}: {name} is {handle}, which holds a "
                                f"{type(array).__name__}, not a tensor")
        return Operand(handle, array.dtype, tuple(array.shape))
    array = np.asarray(as_host_array(value, f"{kernel}: {name}"), order="C")  # (ascontiguousarray: 0-d -> 1-d)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    target = _store(store)
    if not isinstance(target, Store) or array.nbytes > BEHIND_MAX_BYTES:
        # written through (or refused, E_STORE): the caller's memory is not held past the call
        return Operand(collapse(array, store), array.dtype, tuple(array.shape))
    # A copy HLX owns, never written, is stored behind the caller, as hlx.run stores its outputs: a new
    # input costs a copy, not a file write with two fsyncs on a DiskStore, before the contract is returned.
    # It resolves at once in this process and is durable after hlx.flush(), a run with persist=True,
    # fork() or exit. A small one is kept for the planner too, which then binds it without reading it back.
    generation = target.generation
    copy = array.copy()
    copy.flags.writeable = False
    handle = collapse(copy, target, behind=True)
    if worth_keeping(copy, target):
        keep(handle, copy, target, generation)
    return Operand(handle, array.dtype, tuple(array.shape))


def _call(spec: KernelSpec, tensors: dict[str, Any], scalars: dict[str, Any], store: Any
          ) -> Union[dict, Deferred]:
    """Build ``spec``'s contract now, or defer it when an argument is a stage marker."""
    args = tuple(_operand(v, spec.name, k, store) for k, v in tensors.items())
    if any(isinstance(a, StageOutput) for a in args):
        deferred = Deferred(spec.name, spec.build, args, scalars, store)
        _deferred.add(deferred)
        return deferred
    bodies = _with_shaders(spec.build(0, *args, **scalars), store)
    if len(bodies) == 1:
        return record({COMPUTE_KERNEL: bodies[0]})
    return record(_assemble([{COMPUTE_KERNEL: b} for b in bodies], [(len(bodies) - 1, 0)], spec.name))


# ------------------------------------------------------------------------------------------------ public

def add(a: Any, b: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """Elementwise a + b (float32, int32 or uint32; same shape; integers wrap). Exact."""
    return _call(BY_NAME["add"], {"a": a, "b": b}, {}, store)


def mul(a: Any, b: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """Elementwise a * b (float32, int32 or uint32; same shape; integers wrap). Exact."""
    return _call(BY_NAME["mul"], {"a": a, "b": b}, {}, store)


def saxpy(alpha: float, x: Any, y: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """alpha * x + y for float32 x, y of one shape; alpha is rounded to float32 as the shader sees it."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"saxpy: alpha must be a real number, not "
                            f"{type(alpha).__name__}")
    with np.errstate(over="ignore"):
        alpha32 = np.float32(alpha)
    if not np.isfinite(alpha32):
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"saxpy: alpha={alpha!r} is not a finite float32")
    return _call(BY_NAME["saxpy"], {"x": x, "y": y}, {"alpha": float(alpha32)}, store)


def relu(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """max(x, 0) elementwise for float32 x (a selection: exact)."""
    return _call(BY_NAME["relu"], {"x": x}, {}, store)


def reduce_sum(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """The sum of all elements of a float32 or int32 tensor as a 0-d tensor, added in a fixed tree order
    (docs/KERNELS.md) so the result is deterministic; a 902 when it needs more than one pass."""
    return _call(BY_NAME["reduce_sum"], {"x": x}, {}, store)


def softmax(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """Softmax over the last axis of a 2-D float32 array (row maximum subtracted first)."""
    return _call(BY_NAME["softmax"], {"x": x}, {}, store)


def transpose(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """The transpose of a 2-D array of any 4-byte dtype (bit exact)."""
    return _call(BY_NAME["transpose"], {"x": x}, {}, store)


def gemm(a: Any, b: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """a @ b for float32 a [M, K] and b [K, N], any sizes (64x64 tiles on the GPU, 128x128 tiles as kernel
    "gemm128" when M and N are large, 16x16 blocks as kernel "gemm_skinny" up to 128 rows)."""
    return _call(BY_NAME["gemm"], {"a": a, "b": b}, {}, store)


def conv2d(x: Any, w: Any, stride: int = 1, padding: int = 0, *, store: Any = None) -> Union[dict, Deferred]:
    """Direct 2-D convolution, NCHW: x [N, C, H, W] with w [K, C, R, S] -> [N, K, OH, OW] (float32)."""
    check_conv_scalars(stride, padding)  # now, even when a stage() argument defers the build
    return _call(BY_NAME["conv2d"], {"x": x, "w": w},
                 {"stride": int(stride), "padding": int(padding)}, store)


# ---------------------------------------------------------------------------------------------- pipeline

def _output_specs(body: dict) -> list[tuple[np.dtype, tuple[int, ...]]]:
    """The (dtype, shape) of each output binding of a 901 body, in output order."""
    return [(np.dtype(b["output"]["dtype"]), tuple(int(d) for d in b["output"]["shape"]))
            for b in body.get("bindings", []) if is_output(b)]


def _stage_body(entry: Any, store: Any, where: str) -> dict:
    """The 901 body of a pipeline stage given inline ({"901": ...}) or as a handle of a stored 901."""
    contract = resolve(Handle(entry), store) if is_handle(entry) else entry
    if not (isinstance(contract, dict) and isinstance(contract.get(COMPUTE_KERNEL), dict)):
        raise ContractError("E_CONTRACT_STRUCTURE", f"{where}: expected a 901 contract or its handle")
    return contract[COMPUTE_KERNEL]


def _offset(body: dict, base: int) -> dict:
    """A copy of ``body`` with its stage references moved by ``base`` (flattening a nested 902)."""
    bindings = [{"stage": b["stage"] + base, "output": b["output"]} if isinstance(b, dict) and "stage" in b
                else b for b in body.get("bindings", [])]
    return {**body, "bindings": bindings}


def _flatten_step(step: Any, i: int, base: int, lookup: Callable[[StageOutput], Operand], store: Any
                  ) -> tuple[list[dict], list[tuple[int, int]], str]:
    """A step's 901 bodies (flat indices from ``base``), its outputs as flat (stage, output) pairs, its name."""
    where = f"pipeline step {i}"
    if isinstance(step, Deferred):
        bodies = step.bind(lookup, base)
        last = len(bodies) - 1
        return bodies, [(base + last, j) for j in range(len(_output_specs(bodies[last])))], step.kernel
    contract = resolve(Handle(step), store) if is_handle(step) else step
    if isinstance(contract, dict) and COMPUTE_KERNEL in contract:
        body = _stage_body(contract, store, where)
        return [body], [(base, j) for j in range(len(_output_specs(body)))], str(body.get("kernel_name", "?"))
    if isinstance(contract, dict) and isinstance(contract.get(PIPELINE_CONFIG), dict):
        inner = contract[PIPELINE_CONFIG]
        bodies = [_offset(_stage_body(s, store, f"{where} stage {k}"), base)
                  for k, s in enumerate(inner.get("stages", []))]
        outs = inner.get("outputs") or [{"stage": len(bodies) - 1, "output": 0}]
        return bodies, [(base + o["stage"], o["output"]) for o in outs], str(inner.get("pipeline_id", "?"))
    raise ContractError("E_CONTRACT_STRUCTURE", f"{where}: expected a kernel helper's result (a 901 or 902 "
                        f"contract, or a call with stage() arguments), not {type(step).__name__}")


def _assemble(stages: list[dict], outputs: list[tuple[int, int]], pipeline_id: str) -> dict:
    """A 902 from inline stages: a device-scope barrier after every stage that a later stage reads."""
    read = sorted({b["stage"] for s in stages for b in s[COMPUTE_KERNEL]["bindings"]
                   if isinstance(b, dict) and "stage" in b})
    return {PIPELINE_CONFIG: {
        "pipeline_id": pipeline_id,
        "stages": stages,
        "sync_barriers": [{"stage_idx": s, "memory_scope": BARRIER_SCOPE} for s in read],
        "outputs": [{"stage": s, "output": j} for s, j in outputs],
    }}


def pipeline(steps: Sequence[Any], *, outputs: Sequence[StageOutput] | None = None,
             pipeline_id: str | None = None, store: Any = None) -> dict:
    """Chain helper results into one 902 whose later steps read earlier outputs on the device.

    ``steps`` are helper results (``gemm(x, w)``, ``relu(stage(0))``, a nested pipeline, or a stored
    contract's handle); ``stage(i, j)`` in step k names output j of step i < k. The 902 returns the last
    step's outputs, or those named by ``outputs`` (a list of ``stage(i, j)``).
    """
    if isinstance(steps, (str, bytes, dict)) or not isinstance(steps, Sequence) or not steps:
        raise ContractError("E_CONTRACT_STRUCTURE", "pipeline: expected a non-empty list of steps")
    bodies: list[dict] = []
    step_outputs: list[list[tuple[int, int]]] = []
    names: list[str] = []

    def lookup_in(limit: int, where: str) -> Callable[[StageOutput], Operand]:
        def lookup(marker: StageOutput) -> Operand:
            if marker.step >= limit:
                raise ContractError("E_CONTRACT_STRUCTURE", f"{where}: stage({marker.step}) must name an earlier "
                                    f"step (0..{limit - 1})")
            outs = step_outputs[marker.step]
            if marker.output >= len(outs):
                raise ContractError("E_CONTRACT_STRUCTURE", f"{where}: step {marker.step} has {len(outs)} "
                                    f"output(s); stage({marker.step}, {marker.output}) is out of range")
            s, j = outs[marker.output]
            dtype, shape = _output_specs(bodies[s])[j]
            return Operand({"stage": s, "output": j}, dtype, shape)
        return lookup

    for i, step in enumerate(steps):
        new, outs, name = _flatten_step(step, i, len(bodies), lookup_in(i, f"pipeline step {i}"), store)
        bodies.extend(new)
        step_outputs.append(outs)
        names.append(name)
    if outputs is None:
        chosen = step_outputs[-1]
    else:
        pick = lookup_in(len(steps), "pipeline outputs")
        chosen = []
        for marker in outputs:
            if not isinstance(marker, StageOutput):
                raise ContractError("E_CONTRACT_FIELD_TYPE", "pipeline outputs: expected stage(i, j) markers")
            ref = pick(marker).binding
            chosen.append((ref["stage"], ref["output"]))
    contract = _assemble([{COMPUTE_KERNEL: b} for b in bodies], chosen, pipeline_id or ">".join(names))
    return record(contract) if _all_built(steps, contract) else contract


def _all_built(steps: Sequence[Any], contract: dict) -> bool:
    """Whether every step of ``contract`` came from a helper as it stands (not from a stored handle, a
    changed helper result or a hand-made call), so that the 902 is one ``record`` may vouch for."""
    return isinstance(contract[PIPELINE_CONFIG]["pipeline_id"], str) and all(
        step in _deferred if isinstance(step, Deferred) else isinstance(step, dict) and built_as_given(step)
        for step in steps)
