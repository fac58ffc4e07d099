"""``KernelSpec``: everything HLX knows about one kernel, in one record.

A spec names the kernel and holds its NumPy reference (what the CPU backend and the example plugin run
through ``KernelSpec.run``), and for library kernels also the shader stem, the push-constant layout and the
builder that ``hlx.kernels`` helpers call and the planner's as-built check (kernels/as_built.py) replays.
Plugins add specs to a ``KernelRegistry`` through the ``hlx_register_kernels(registry)`` hook
(``hlx_core.hookspecs``); the process-wide one is ``hlx_core.registry.kernel_registry()``.
"""
from __future__ import annotations

import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

import numpy as np

from hlx_core.codec.handle import Handle
from hlx_core.errors import BackendError, ContractError, HLXError
from hlx_core.kernels.shaders import library_reference, library_shader_object
from hlx_core.plan import OutputRef, Stage
from hlx_core.spirv.validate import committed_module

if TYPE_CHECKING:
    from hlx_core.kernels.variants import Variant

Reference = Callable[[list[np.ndarray], dict[str, Any], list[OutputRef]], list[np.ndarray]]
"""``reference(inputs, params, outputs) -> arrays``: the input arrays in binding order (outputs left out),
the 901's ``params``, and the OutputRefs the stage writes; returns one array per OutputRef."""

Builder = Callable[..., "list[dict]"]
"""``build(base, *operands, **scalars) -> 901 bodies`` (without ``shader_handle``): ``operands`` are the
tensor arguments (``hlx_core.kernels.build.Operand``), ``base`` the flat index of the first stage it makes
(a multi-pass kernel's later stages read the earlier ones by index)."""

Tolerance = Callable[[list[np.ndarray], list[np.ndarray], dict[str, Any], list[OutputRef]], "list[np.ndarray]"]
"""``tolerance(inputs, errors, params, outputs) -> bounds``: the stage's inputs as float64, a bound on each
input element's own error, the params and OutputRefs; returns per output a float64 array of its shape
bounding ``|result - exact arithmetic|`` element by element (``hlx_core.kernels.tolerances``)."""

PushField = tuple[str, Literal["uint", "int", "float"]]
_PUSH_FORMATS = {"uint": "I", "int": "i", "float": "f"}
_PUSH_RANGES = {"uint": (0, 2**32 - 1), "int": (-2**31, 2**31 - 1)}


@dataclass(frozen=True)
class KernelSpec:
    """A kernel the library (or a plugin) knows.

    ``shader`` is the file stem under ``shaders/`` for library kernels (None for a plugin kernel that
    ships its own 900); ``shader_handle`` is the handle of a plugin kernel's own 900. The reference models
    that one shader, so it runs only for stages of it (``models``). ``push_constants`` lists the 32-bit
    fields of the shader's push block in order; the builders pack ``params`` with it. ``exact`` says GPU
    results must equal the reference bit for bit.
    ``build`` makes the kernel's 901 bodies from ``tensors`` tensor arguments (bound first, in order) and
    the ``scalars`` params as keyword arguments; a plugin kernel that builds its own 901s leaves it None.
    ``writes_all_outputs`` declares that the shader writes every element of every output of a stage its
    builder made (dispatch included), so GPU backends need not clear those outputs before each run; it
    means something only for library shaders (tests/test_cleared_outputs.py checks each declaration).
    ``tolerance`` bounds a result's distance from exact arithmetic (also for exact kernels, whose bound
    carries an earlier stage's error through a pipeline); ``hlx.compare`` and the conformance kit hold
    every backend to it, and a kernel without one to bit equality with the reference.
    ``batch_invariant`` declares that on every backend a row of the output (an index of its leading axis)
    is the same bits whatever the batch it is computed in (1 to 128 rows of the inputs split along their
    leading axis; operands without a batch axis, a GEMM's B or a convolution's filters, unchanged): no
    reduction order depends on the number of rows (tests/test_batch_invariance.py checks each declaration).
    ``variants`` are faster shaders of the same computation that a GPU backend runs instead where its
    device supports them (hlx_core/kernels/variants.py); the reference models them too.
    ``grid_z``: the only number of workgroups along z the shader takes (None: whatever its builder gives);
    a hand-written contract dispatching another is refused (gemm128 reads z as slices of K and would write
    past its output).
    """

    name: str
    reference: Reference
    exact: bool = False
    dtypes: tuple[str, ...] = ("float32",)
    shader: str | None = None
    shader_handle: str | None = None
    push_constants: tuple[PushField, ...] = ()
    build: Builder | None = None
    tensors: int = 0
    scalars: tuple[str, ...] = ()
    writes_all_outputs: bool = False
    tolerance: Tolerance | None = None
    batch_invariant: bool = False
    variants: tuple[Variant, ...] = ()
    grid_z: int | None = None

    def run(self, inputs: list[np.ndarray], stage: Stage, where: str) -> list[np.ndarray]:
        """The reference's results for ``stage`` on ``inputs``, each a fresh C-ordered array of exactly the
        dtype and shape of its OutputRef.

        A reference is plugin code, so it is held to the stage here, once for every backend that runs
        references: E_REFERENCE_FAILED when it raises, E_REFERENCE_OUTPUT when it returns the wrong number
        or shape of arrays; ``where`` names the stage in those messages. A stage of another shader than the
        one the reference models is refused (E_NO_REFERENCE) before the reference runs."""
        if not self.models(stage):
            raise BackendError("E_NO_REFERENCE", f"{where} ({self.name}): the stage runs shader "
                               f"{stage.shader.handle}, but the reference of {self.name!r} models "
                               + (f"shader {self.modelled_shader()}" if self.modelled_shader() else "no shader")
                               + "; a reference runs only for the shader it models (register one for this "
                               "shader as KernelSpec(name=..., reference=fn, shader_handle=<its 900's handle>), "
                               "docs/KERNELS.md)")
        outputs = stage.output_refs
        try:
            produced = self.reference(inputs, dict(stage.params), outputs)
        except HLXError:
            raise
        except Exception as exc:
            raise BackendError("E_REFERENCE_FAILED", f"{where} ({self.name}): the NumPy reference raised "
                               f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(produced, (list, tuple)) or len(produced) != len(outputs):
            raise BackendError("E_REFERENCE_OUTPUT", f"{where} ({self.name}): the reference must return a list "
                               f"of {len(outputs)} array(s)")
        results = []
        for j, (array, ref) in enumerate(zip(produced, outputs)):
            array = np.asarray(array)
            if tuple(array.shape) != tuple(ref.shape):
                raise BackendError("E_REFERENCE_OUTPUT", f"{where} ({self.name}) output {j}: the reference made "
                                   f"shape {tuple(array.shape)}, the contract declares {tuple(ref.shape)}")
            results.append(np.array(array, dtype=np.dtype(ref.dtype), copy=True, order="C"))
        return results

    def modelled_shader(self) -> Handle | None:
        """The handle of the 900 the reference models: a library kernel's own 900 (its committed SPIR-V
        with its WGSL twin, as the kernel helpers bind it), else ``shader_handle``."""
        if self.shader is not None:
            return library_shader_object(self.shader)[0]
        return Handle(self.shader_handle) if self.shader_handle is not None else None

    def models(self, stage: Stage) -> bool:
        """Whether ``stage`` runs a shader this reference models, by its 900's handle: ``modelled_shader``,
        or, for a library kernel, another library shader with the same reference (gemm128's for gemm)."""
        handle = stage.shader.handle
        if handle == self.modelled_shader():
            return True
        stem = committed_module(stage.shader.spirv) if self.shader is not None else None
        return (stem is not None and library_reference(stem) is self.reference
                and library_shader_object(stem)[0] == handle)

    def pack_push_constants(self, params: dict[str, Any]) -> bytes:
        """The push block as bytes: each field a little-endian 32-bit value at offset 4*i (std430)."""
        values = []
        for name, kind in self.push_constants:
            if name not in params:
                raise ContractError("E_CONTRACT_FIELD_MISSING", f"{self.name}: push constant {name!r} has no "
                                    "value in params", path="901.params")
            value = params[name]
            if kind == "float":
                value = float(value)
                if not np.isfinite(value):
                    raise ContractError("E_CONTRACT_FIELD_TYPE", f"{self.name}: {name}={value} is not finite",
                                        path=f"901.params.{name}")
            else:
                lo, hi = _PUSH_RANGES[kind]
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
                    raise ContractError("E_CONTRACT_FIELD_TYPE", f"{self.name}: {name}={value!r} is not a "
                                        f"{kind}32 value", path=f"901.params.{name}")
                value = int(value)
            values.append(value)
        fmt = "<" + "".join(_PUSH_FORMATS[kind] for _, kind in self.push_constants)
        return struct.pack(fmt, *values)

    def unpack_push_constants(self, push: bytes) -> dict[str, Any]:
        """The named fields of a push block, the inverse of ``pack_push_constants`` (``push`` must have
        exactly ``4 * len(push_constants)`` bytes)."""
        fmt = "<" + "".join(_PUSH_FORMATS[kind] for _, kind in self.push_constants)
        values = struct.unpack(fmt, push)
        return {name: float(v) if kind == "float" else int(v)
                for (name, kind), v in zip(self.push_constants, values)}

    def push_constants_layout(self) -> list[dict[str, Any]]:
        """The 901 ``push_constants_layout`` field: name, byte offset and type of each push field."""
        return [{"name": name, "offset": 4 * i, "type": f"{kind}32"}
                for i, (name, kind) in enumerate(self.push_constants)]


class KernelRegistry:
    """Thread-safe map from kernel name to ``KernelSpec``; remembers which plugin objects filled it, so a
    plugin registered again (after ``reset``) does not add its kernels twice."""

    def __init__(self) -> None:
        self._specs: dict[str, KernelSpec] = {}
        self._lock = threading.Lock()
        self.plugins: dict[int, Any] = {}  # id -> plugin object, kept alive so the id is never reused

    def register(self, spec: KernelSpec, *, replace: bool = False) -> None:
        """Add ``spec``. Registering an equal spec again is a no-op (plugins may load more than once); a
        different spec under a taken name needs ``replace=True``."""
        if not isinstance(spec, KernelSpec):
            raise BackendError("E_PLUGIN", f"registry.register expects a KernelSpec, got {type(spec).__name__}")
        with self._lock:
            old = self._specs.get(spec.name)
            if old is not None and old != spec and not replace:
                raise BackendError("E_KERNEL_CONFLICT", f"kernel {spec.name!r} is already registered "
                                   "(pass replace=True to override it)")
            self._specs[spec.name] = spec

    def get(self, name: str) -> KernelSpec:
        """The spec for ``name``, or E_NO_REFERENCE saying how to register one."""
        spec = self._specs.get(name)
        if spec is None:
            known = ", ".join(sorted(self._specs)) or "none"
            raise BackendError(
                "E_NO_REFERENCE",
                f"no kernel named {name!r} has a NumPy reference (known: {known}). Register one from a plugin: "
                "implement the hook `@hlx_core.hookspecs.hookimpl def hlx_register_kernels(registry)` and call "
                f"`registry.register(hlx_core.kernels.spec.KernelSpec(name={name!r}, reference=fn, "
                "shader_handle=<the handle of the 900 it models>))` with "
                "`fn(inputs, params, outputs) -> list[np.ndarray]`; expose the plugin module under the "
                "'hlx.backends' entry-point group, or pass it to hlx_core.registry.register_plugin() "
                "(docs/KERNELS.md, 'Adding a kernel from a plugin').")
        return spec

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs
