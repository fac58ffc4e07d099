"""Helpers that build library-kernel contracts (``hlx.kernels.add``, ``gemm``, ``pipeline``, ...).

A helper takes NumPy arrays (collapsed into the store), tensor handles (resolved for their dtype and
shape), or ``stage(i, j)`` markers, checks dtypes and shapes (``ContractError`` E_DTYPE / E_SHAPE before
anything runs), and returns a contract: ``{"901": ...}``, or ``{"902": ...}`` for kernels that take
several passes (reduce_sum of more than 512 elements).

A marker has no data, so a helper given one returns a ``Deferred`` call instead; ``pipeline()`` knows the
dtype and shape of every earlier step's outputs and binds it then. ``stage(i)`` counts pipeline steps
(the items of the list), not the flattened stages: a multi-pass step is addressed by its final outputs.
docs/KERNELS.md lists every kernel's bindings, params, push-constant layout and dispatch rule.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable, Sequence, Union

import numpy as np

from hlx_core.cas.api import collapse, resolve
from hlx_core.cas.handle import Handle, is_handle
from hlx_core.contracts.schemas import is_output
from hlx_core.errors import ContractError
from hlx_core.kernels.library import LIBRARY, WORD_DTYPES
from hlx_core.kernels.references import REDUCE_CHUNK
from hlx_core.spirv.shader import shader_contract

MAX_GROUPS = 65535  # the smallest maxComputeWorkGroupCount Vulkan allows, per dimension
GEMM128_MIN_GROUPS = 192  # 128x128 tiles of C at which gemm switches to the gemm128 shader
MAX_U32 = 2**32 - 1
BARRIER_SCOPE = "device"  # stages are separate dispatches: their data meet in device memory

_SPECS = {spec.name: spec for spec in LIBRARY}


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


@dataclass(frozen=True)
class Operand:
    """A tensor argument whose dtype and shape are known; ``binding`` is what the 901 binds: a tensor
    handle or an earlier stage's output ``{"stage": s, "output": j}``."""

    binding: Union[Handle, dict]
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


Argument = Union[Operand, StageOutput]
Builder = Callable[..., "list[dict]"]  # (base, *operands, **scalars) -> 901 bodies without shader_handle


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


# ----------------------------------------------------------------------------------------------- shaders

@functools.lru_cache(maxsize=None)
def _shader_900(stem: str) -> dict:
    """The validated 900 of a library shader: the committed SPIR-V, plus its WGSL twin where one exists."""
    files = resources.files("hlx_shaders")
    wgsl = files / f"{stem}.wgsl"
    return shader_contract((files / f"{stem}.spv").read_bytes(), "main",
                           wgsl_source=wgsl.read_text(encoding="utf-8") if wgsl.is_file() else None)


def shader_handle(kernel: str, store: Any = None) -> Handle:
    """The handle of ``kernel``'s 900 in ``store`` (collapsed there on every call, so it is present)."""
    return collapse(_shader_900(_SPECS[kernel].shader), store)


def _with_shaders(bodies: list[dict], store: Any) -> list[dict]:
    """``bodies`` with the ``shader_handle`` of their kernel, collapsed into ``store`` once per kernel.

    Builders leave it out: the planner's conformance check rebuilds a stage to compare it and needs no
    shader stored or hashed again."""
    handles: dict[str, Handle] = {}
    for i, body in enumerate(bodies):
        kernel = body["kernel_name"]
        if kernel not in handles:
            handles[kernel] = shader_handle(kernel, store)
        bodies[i] = {"kernel_name": kernel, "shader_handle": handles[kernel], **body}
    return bodies


# ----------------------------------------------------------------------------------------------- operands

def _operand(value: Any, kernel: str, name: str, store: Any) -> Argument:
    """Turn a helper argument into an Operand (collapsing arrays, resolving handles) or keep a marker."""
    if isinstance(value, StageOutput):
        return value
    if isinstance(value, np.ndarray):
        array = np.asarray(value, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        return Operand(collapse(array, store), array.dtype, tuple(array.shape))
    if is_handle(value):
        handle = Handle(value)
        array = resolve(handle, store)
        if not isinstance(array, np.ndarray):
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"{kernel}: {name} is {handle}, which holds a "
                                f"{type(array).__name__}, not a tensor")
        return Operand(handle, array.dtype, tuple(array.shape))
    raise ContractError("E_CONTRACT_FIELD_TYPE", f"{kernel}: {name} must be a NumPy array, a tensor handle or "
                        f"hlx.kernels.stage(i), not {type(value).__name__}")


def _call(kernel: str, build: Builder, tensors: dict[str, Any], scalars: dict[str, Any], store: Any
          ) -> Union[dict, Deferred]:
    """Build the contract now, or defer it when an argument is a stage marker."""
    args = tuple(_operand(v, kernel, k, store) for k, v in tensors.items())
    if any(isinstance(a, StageOutput) for a in args):
        return Deferred(kernel, build, args, scalars, store)
    bodies = _with_shaders(build(0, *args, **scalars), store)
    if len(bodies) == 1:
        return {"901": bodies[0]}
    return _assemble([{"901": b} for b in bodies], [(len(bodies) - 1, 0)], kernel)


# ------------------------------------------------------------------------------------------------ checks

def _check_dtype(kernel: str, name: str, op: Operand, allowed: Sequence[str]) -> None:
    if op.dtype.name not in allowed:
        raise ContractError("E_DTYPE", f"{kernel}: {name} has dtype {op.dtype.name}; supported: "
                            f"{', '.join(allowed)}")


def _check_ndim(kernel: str, name: str, op: Operand, ndim: int) -> None:
    if len(op.shape) != ndim:
        raise ContractError("E_SHAPE", f"{kernel}: {name} must be {ndim}-D, got shape {op.shape}")


def _check_same(kernel: str, a: Operand, b: Operand, names: str) -> None:
    if a.dtype != b.dtype:
        raise ContractError("E_DTYPE", f"{kernel}: {names} differ in dtype ({a.dtype.name} vs {b.dtype.name})")
    if a.shape != b.shape:
        raise ContractError("E_SHAPE", f"{kernel}: {names} differ in shape ({a.shape} vs {b.shape})")


def _u32(kernel: str, what: str, value: int) -> int:
    """A count the shader indexes with 32-bit unsigned ints."""
    if value > MAX_U32:
        raise ContractError("E_SHAPE", f"{kernel}: {what} = {value} exceeds the 32-bit index range")
    return int(value)


def _groups(n: int, per_group: int) -> int:
    """Workgroups for n items at per_group each: at least 1 (empty tensors still dispatch)."""
    return max(1, -(-n // per_group))


def _tiles(kernel: str, what: str, n: int, tile: int) -> int:
    """Workgroups along a dimension the shader does not loop over: must fit the dispatch limit."""
    groups = _groups(n, tile)
    if groups > MAX_GROUPS:
        raise ContractError("E_SHAPE", f"{kernel}: {what} = {n} needs {groups} workgroups of {tile}; at most "
                            f"{MAX_GROUPS} fit one dispatch dimension")
    return groups


def _grid_stride(n: int, per_group: int = 256) -> list[int]:
    return [min(_groups(n, per_group), MAX_GROUPS), 1, 1]


# ------------------------------------------------------------------------------------------------ bodies

def _body(kernel: str, dispatch: Sequence[int], inputs: Sequence[Operand],
          outputs: Sequence[tuple[np.dtype, tuple[int, ...]]], params: dict[str, Any]) -> dict:
    """One 901 body (``shader_handle`` is added by ``_with_shaders``): inputs bound first, then the outputs;
    params packed into the push constants."""
    spec = _SPECS[kernel]
    return {
        "kernel_name": kernel,
        "dispatch": [int(d) for d in dispatch],
        "bindings": [op.binding for op in inputs]
                    + [{"output": {"dtype": np.dtype(dt).name, "shape": [int(d) for d in shape]}}
                       for dt, shape in outputs],
        "push_constants": spec.pack_push_constants(params),
        "push_constants_layout": spec.push_constants_layout(),
        "params": params,
    }


def _word_kind(dtype: np.dtype) -> int:
    """The shader's ``kind`` push constant: 0 adds/multiplies float32 words, 1 integer words."""
    return 0 if dtype.kind == "f" else 1


def _build_binary(base: int, a: Operand, b: Operand, *, kernel: str) -> list[dict]:
    _check_dtype(kernel, "a", a, _SPECS[kernel].dtypes)
    _check_same(kernel, a, b, "a and b")
    n = _u32(kernel, "size", a.size)
    return [_body(kernel, _grid_stride(n), [a, b], [(a.dtype, a.shape)],
                  {"n": n, "kind": _word_kind(a.dtype)})]


def _build_saxpy(base: int, x: Operand, y: Operand, *, alpha: float) -> list[dict]:
    _check_dtype("saxpy", "x", x, ("float32",))
    _check_same("saxpy", x, y, "x and y")
    n = _u32("saxpy", "size", x.size)
    return [_body("saxpy", _grid_stride(n), [x, y], [(x.dtype, x.shape)], {"n": n, "alpha": alpha})]


def _build_relu(base: int, x: Operand) -> list[dict]:
    _check_dtype("relu", "x", x, ("float32",))
    n = _u32("relu", "size", x.size)
    return [_body("relu", _grid_stride(n), [x], [(x.dtype, x.shape)], {"n": n})]


def _build_reduce_sum(base: int, x: Operand) -> list[dict]:
    """One stage per pass; each pass folds 512-element chunks until a single (0-d) value remains."""
    _check_dtype("reduce_sum", "x", x, _SPECS["reduce_sum"].dtypes)
    n = _u32("reduce_sum", "size", x.size)
    kind = _word_kind(x.dtype)
    bodies: list[dict] = []
    source = x
    while True:
        chunks = _groups(n, REDUCE_CHUNK)
        shape: tuple[int, ...] = () if chunks == 1 else (chunks,)
        grid = [chunks, 1, 1] if chunks <= MAX_GROUPS else [MAX_GROUPS, _groups(chunks, MAX_GROUPS), 1]
        bodies.append(_body("reduce_sum", grid, [source], [(x.dtype, shape)], {"n": n, "kind": kind}))
        if chunks == 1:
            return bodies
        source = Operand({"stage": base + len(bodies) - 1, "output": 0}, x.dtype, shape)
        n = chunks


def _build_softmax(base: int, x: Operand) -> list[dict]:
    _check_dtype("softmax", "x", x, ("float32",))
    _check_ndim("softmax", "x", x, 2)
    rows, cols = x.shape
    _u32("softmax", "size", x.size)
    return [_body("softmax", [min(max(rows, 1), MAX_GROUPS), 1, 1], [x], [(x.dtype, x.shape)],
                  {"rows": rows, "cols": cols})]


def _build_transpose(base: int, x: Operand) -> list[dict]:
    _check_dtype("transpose", "x", x, WORD_DTYPES)
    _check_ndim("transpose", "x", x, 2)
    rows, cols = x.shape
    _u32("transpose", "size", x.size)
    grid = [min(_groups(cols, 16), MAX_GROUPS), min(_groups(rows, 16), MAX_GROUPS), 1]
    return [_body("transpose", grid, [x], [(x.dtype, (cols, rows))], {"rows": rows, "cols": cols})]


def _build_gemm(base: int, a: Operand, b: Operand) -> list[dict]:
    for name, op in (("a", a), ("b", b)):
        _check_dtype("gemm", name, op, ("float32",))
        _check_ndim("gemm", name, op, 2)
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise ContractError("E_SHAPE", f"gemm: a is {m}x{k} and b is {k2}x{n}: inner dimensions differ")
    for what, count in (("M*K", m * k), ("K*N", k * n), ("M*N", m * n)):
        _u32("gemm", what, count)
    # The 128x128 tile runs ~1.4x faster on a large GPU once its grid fills the chip; below that the
    # 64x64 tile's 4x more workgroups win (docs/BENCHMARKS.md). The choice depends on shapes only, so
    # the same product always gives the same contract.
    kernel, tile = "gemm", 64
    if _groups(m, 128) * _groups(n, 128) >= GEMM128_MIN_GROUPS:
        kernel, tile = "gemm128", 128
    grid = [_tiles(kernel, "N", n, tile), _tiles(kernel, "M", m, tile), 1]
    return [_body(kernel, grid, [a, b], [(a.dtype, (m, n))], {"M": m, "N": n, "K": k})]


def _check_conv_scalars(stride: Any, padding: Any) -> None:
    for name, value, low in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= MAX_U32:
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"conv2d: {name}={value!r} must be an int >= {low}")


def _build_conv2d(base: int, x: Operand, w: Operand, *, stride: int, padding: int) -> list[dict]:
    _check_conv_scalars(stride, padding)
    for name, op in (("x", x), ("w", w)):
        _check_dtype("conv2d", name, op, ("float32",))
        _check_ndim("conv2d", name, op, 4)
    (n, c, h, wd), (k, c2, r, s) = x.shape, w.shape
    if c != c2:
        raise ContractError("E_SHAPE", f"conv2d: x has {c} channels but w expects {c2} (x {x.shape}, w {w.shape})")
    if h + 2 * padding < r or wd + 2 * padding < s:
        raise ContractError("E_SHAPE", f"conv2d: the {r}x{s} filter is larger than the padded {h}x{wd} input "
                            f"(padding {padding})")
    oh, ow = (h + 2 * padding - r) // stride + 1, (wd + 2 * padding - s) // stride + 1
    total = _u32("conv2d", "output size", n * k * oh * ow)
    for what, count in (("x size", x.size), ("w size", w.size)):
        _u32("conv2d", what, count)
    params = {"N": n, "C": c, "H": h, "W": wd, "K": k, "R": r, "S": s, "OH": oh, "OW": ow,
              "stride": stride, "padding": padding}
    return [_body("conv2d", _grid_stride(total), [x, w], [(x.dtype, (n, k, oh, ow))], params)]


@dataclass(frozen=True)
class BuildRule:
    """How the helper of a library kernel builds its 901s: the builder, how many tensor arguments it takes
    (bound first, in order), and which ``params`` it takes as keyword arguments."""

    build: Builder
    tensors: int
    scalars: tuple[str, ...] = ()


# Every library kernel's rule; the planner checks hand-written contracts of library shaders against it.
BUILD_RULES: dict[str, BuildRule] = {
    "add": BuildRule(functools.partial(_build_binary, kernel="add"), 2),
    "mul": BuildRule(functools.partial(_build_binary, kernel="mul"), 2),
    "saxpy": BuildRule(_build_saxpy, 2, ("alpha",)),
    "relu": BuildRule(_build_relu, 1),
    "reduce_sum": BuildRule(_build_reduce_sum, 1),
    "softmax": BuildRule(_build_softmax, 1),
    "transpose": BuildRule(_build_transpose, 1),
    "gemm": BuildRule(_build_gemm, 2),
    "gemm128": BuildRule(_build_gemm, 2),  # gemm() picks the tile by size
    "conv2d": BuildRule(_build_conv2d, 2, ("stride", "padding")),
}


# ------------------------------------------------------------------------------------------------ public

def add(a: Any, b: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """Elementwise a + b (float32, int32 or uint32; same shape; integers wrap). Exact."""
    return _call("add", BUILD_RULES["add"].build, {"a": a, "b": b}, {}, store)


def mul(a: Any, b: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """Elementwise a * b (float32, int32 or uint32; same shape; integers wrap). Exact."""
    return _call("mul", BUILD_RULES["mul"].build, {"a": a, "b": b}, {}, store)


def saxpy(alpha: float, x: Any, y: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """alpha * x + y for float32 x, y of one shape; alpha is rounded to float32 as the shader sees it."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"saxpy: alpha must be a real number, not "
                            f"{type(alpha).__name__}")
    with np.errstate(over="ignore"):
        alpha32 = np.float32(alpha)
    if not np.isfinite(alpha32):
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"saxpy: alpha={alpha!r} is not a finite float32")
    return _call("saxpy", BUILD_RULES["saxpy"].build, {"x": x, "y": y}, {"alpha": float(alpha32)}, store)


def relu(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """max(x, 0) elementwise for float32 x (a selection: exact)."""
    return _call("relu", BUILD_RULES["relu"].build, {"x": x}, {}, store)


def reduce_sum(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """The sum of all elements of a float32 or int32 tensor as a 0-d tensor, added in a fixed tree order
    (docs/KERNELS.md) so the result is deterministic; a 902 when it needs more than one pass."""
    return _call("reduce_sum", BUILD_RULES["reduce_sum"].build, {"x": x}, {}, store)


def softmax(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """Softmax over the last axis of a 2-D float32 array (row maximum subtracted first)."""
    return _call("softmax", BUILD_RULES["softmax"].build, {"x": x}, {}, store)


def transpose(x: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """The transpose of a 2-D array of any 4-byte dtype (bit exact)."""
    return _call("transpose", BUILD_RULES["transpose"].build, {"x": x}, {}, store)


def gemm(a: Any, b: Any, *, store: Any = None) -> Union[dict, Deferred]:
    """a @ b for float32 a [M, K] and b [K, N], any sizes (64x64 tiles on the GPU, 128x128 tiles as kernel
    "gemm128" when M and N are large)."""
    return _call("gemm", BUILD_RULES["gemm"].build, {"a": a, "b": b}, {}, store)


def conv2d(x: Any, w: Any, stride: int = 1, padding: int = 0, *, store: Any = None) -> Union[dict, Deferred]:
    """Direct 2-D convolution, NCHW: x [N, C, H, W] with w [K, C, R, S] -> [N, K, OH, OW] (float32)."""
    _check_conv_scalars(stride, padding)  # now, even when a stage() argument defers the build
    return _call("conv2d", BUILD_RULES["conv2d"].build, {"x": x, "w": w},
                 {"stride": int(stride), "padding": int(padding)}, store)


# ---------------------------------------------------------------------------------------------- pipeline

def _output_specs(body: dict) -> list[tuple[np.dtype, tuple[int, ...]]]:
    """The (dtype, shape) of each output binding of a 901 body, in output order."""
    return [(np.dtype(b["output"]["dtype"]), tuple(int(d) for d in b["output"]["shape"]))
            for b in body.get("bindings", []) if is_output(b)]


def _stage_body(entry: Any, store: Any, where: str) -> dict:
    """The 901 body of a pipeline stage given inline ({"901": ...}) or as a handle of a stored 901."""
    contract = resolve(Handle(entry), store) if is_handle(entry) else entry
    if not (isinstance(contract, dict) and isinstance(contract.get("901"), dict)):
        raise ContractError("E_CONTRACT_STRUCTURE", f"{where}: expected a 901 contract or its handle")
    return contract["901"]


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
    if isinstance(contract, dict) and "901" in contract:
        body = _stage_body(contract, store, where)
        return [body], [(base, j) for j in range(len(_output_specs(body)))], str(body.get("kernel_name", "?"))
    if isinstance(contract, dict) and isinstance(contract.get("902"), dict):
        inner = contract["902"]
        bodies = [_offset(_stage_body(s, store, f"{where} stage {k}"), base)
                  for k, s in enumerate(inner.get("stages", []))]
        outs = inner.get("outputs") or [{"stage": len(bodies) - 1, "output": 0}]
        return bodies, [(base + o["stage"], o["output"]) for o in outs], str(inner.get("pipeline_id", "?"))
    raise ContractError("E_CONTRACT_STRUCTURE", f"{where}: expected a kernel helper's result (a 901 or 902 "
                        f"contract, or a call with stage() arguments), not {type(step).__name__}")


def _assemble(stages: list[dict], outputs: list[tuple[int, int]], pipeline_id: str) -> dict:
    """A 902 from inline stages: a device-scope barrier after every stage that a later stage reads."""
    read = sorted({b["stage"] for s in stages for b in s["901"]["bindings"] if isinstance(b, dict) and "stage" in b})
    return {"902": {
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
    return _assemble([{"901": b} for b in bodies], chosen, pipeline_id or ">".join(names))
