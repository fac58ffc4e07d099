"""The planned form of a contract that backends execute.

The runtime validates a 901/902, resolves every handle and turns it into a ``Plan``: a tuple of ``Stage``s
whose bindings are concrete (an input array, an output to allocate, or an earlier stage's output). Backends
never see raw contract dicts, so every backend interprets contracts the same way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Union

import numpy as np

from hlx_core.codec.handle import Handle
from hlx_core.spirv.types import EntryPoint


@dataclass(frozen=True)
class Shader:
    """A resolved 900: SPIR-V bytes plus what reflection found at the entry point."""

    handle: Handle
    spirv: bytes = field(repr=False)
    entry_point: str
    info: EntryPoint
    wgsl_source: str | None = field(default=None, repr=False)

    @cached_property  # every new plan of this shader checks its bindings against these
    def set0_bindings(self) -> tuple[int, ...] | str:
        """The set 0 binding numbers the entry point declares, in order, or why a contract cannot bind it
        (another descriptor set, a descriptor array: contracts bind one buffer per binding of set 0)."""
        other_sets = sorted({b.set for b in self.info.bindings if b.set != 0})
        if other_sets:
            return (f"the shader uses descriptor set(s) {other_sets}; contracts bind set 0 only (binding i = "
                    "set 0, binding i)")
        arrays = [b for b in self.info.bindings if getattr(b, "count", 1) != 1]
        if arrays:
            return f"binding {arrays[0].binding} is a descriptor array; contracts bind one buffer per binding"
        return tuple(sorted(b.binding for b in self.info.bindings))


class InputRef:
    """A binding fed from the store: ``array`` is the resolved (read-only) tensor behind ``handle``.

    ``dtype`` and ``shape`` are known at plan time; the array itself may be loaded on first use (``load``):
    a tensor that is still only on a device (a resident output, hlx_core/cas/resident.py) is planned from
    its record, and a backend holding its buffer never reads ``array``, so it is never downloaded. Equal
    (and hashed) by handle, like the frozen record it replaces. ``loaded`` is the array when it is in host
    memory already, else None (a plain attribute: every warm run asks)."""

    __slots__ = ("handle", "dtype", "shape", "loaded", "_load")

    def __init__(self, handle: Handle, array: np.ndarray | None = None, *, dtype: Any = None,
                 shape: tuple[int, ...] | None = None, load: Callable[[], np.ndarray] | None = None) -> None:
        if array is None and (load is None or dtype is None or shape is None):
            raise TypeError("InputRef needs an array, or dtype, shape and load")
        set_ = object.__setattr__
        set_(self, "handle", handle)
        set_(self, "dtype", np.dtype(array.dtype if array is not None else dtype))
        set_(self, "shape", tuple(array.shape) if array is not None else tuple(shape))
        set_(self, "loaded", array)
        set_(self, "_load", load)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"InputRef is immutable ({name})")

    @property
    def array(self) -> np.ndarray:
        """The tensor, loaded (downloaded, for a resident output) on first use and kept."""
        array = self.loaded
        if array is None:
            array = self._load()
            object.__setattr__(self, "loaded", array)
        return array

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputRef) and other.handle == self.handle

    def __hash__(self) -> int:
        return hash(self.handle)

    def __repr__(self) -> str:
        return f"InputRef(handle={self.handle!r})"

    def __reduce__(self) -> tuple:
        return InputRef, (self.handle, self.array)


@dataclass(frozen=True)
class OutputRef:
    """A binding the backend allocates and the stage writes: its result is this dtype and shape."""

    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class StageRef:
    """A binding that reads output number ``output`` (counting OutputRefs) of the earlier stage ``stage``."""

    stage: int
    output: int


Binding = Union[InputRef, OutputRef, StageRef]


@dataclass(frozen=True)
class Stage:
    """One dispatch. Binding i of ``bindings`` is descriptor (set 0, binding i) of the shader.

    GPU backends clear every buffer a stage writes before each run, so an element its shader leaves alone
    reads as zero, never as an earlier run's data. ``writes_all_outputs`` lets them skip that fill: the
    planner sets it only for a library shader run exactly as its builder makes it, whose ``KernelSpec``
    declares that it writes every element of every output (never for any other shader)."""

    kernel_name: str
    shader: Shader
    workgroup_size: tuple[int, int, int]
    dispatch: tuple[int, int, int]
    bindings: tuple[Binding, ...]
    push_constants: bytes = b""
    specialization_constants: tuple[tuple[int, Any], ...] = ()
    params: dict[str, Any] = field(default_factory=dict, compare=False)
    shared_memory_bytes: int = 0
    writes_all_outputs: bool = False

    @cached_property  # read per output on every run; the bindings never change
    def output_slots(self) -> tuple[int, ...]:
        """Binding indices of this stage's outputs, in output order."""
        return tuple(i for i, b in enumerate(self.bindings) if isinstance(b, OutputRef))

    def output_spec(self, j: int) -> OutputRef:
        ref = self.bindings[self.output_slots[j]]
        assert isinstance(ref, OutputRef)
        return ref

    @property
    def output_refs(self) -> list[OutputRef]:
        """This stage's OutputRefs, in output order."""
        return [b for b in self.bindings if isinstance(b, OutputRef)]

    def input_arrays(self, read: Callable[[StageRef], np.ndarray]) -> list[np.ndarray]:
        """The arrays this stage reads, in binding order (outputs left out); ``read`` supplies the output of
        an earlier stage that a StageRef names."""
        return [b.array if isinstance(b, InputRef) else read(b) for b in self.bindings
                if not isinstance(b, OutputRef)]


@dataclass(frozen=True)
class Plan:
    """Stages in execution order. ``key`` is the handle of the normalised contract (stable across runs,
    so backends may cache recorded work under it); ``outputs`` lists the (stage, output) pairs returned;
    ``barriers`` the (stage index, memory scope) pairs the contract asked for after a stage."""

    key: Handle
    stages: tuple[Stage, ...]
    outputs: tuple[tuple[int, int], ...]
    barriers: tuple[tuple[int, str], ...] = ()

    @cached_property
    def output_specs(self) -> tuple[OutputRef, ...]:
        """What each returned output is (dtype, shape), in the order of ``outputs``."""
        return tuple(self.stages[s].output_spec(j) for s, j in self.outputs)

    @cached_property
    def input_refs(self) -> dict[str, InputRef]:
        """The inputs by handle: backends that cache per-key work upload from the plan being run, reading
        ``array`` only for an input they do not hold."""
        return {b.handle: b for st in self.stages for b in st.bindings if isinstance(b, InputRef)}

    @cached_property
    def derived(self) -> dict[Any, Any]:
        """What users of this plan work out from it alone and keep with it, under keys of their own (the
        runtime's memo default per backend, a backend's specialised plan): the planner hands warm runs the
        same Plan object, so they find it here, and it goes when the plan does."""
        return {}

    @property
    def input_arrays(self) -> dict[str, np.ndarray]:
        """The input tensors by handle (each loaded, downloaded if resident elsewhere)."""
        return {h: ref.array for h, ref in self.input_refs.items()}

    def binding_spec(self, stage: int, slot: int) -> InputRef | OutputRef:
        """What lives in a binding, following StageRefs back to the OutputRef that made it."""
        b = self.stages[stage].bindings[slot]
        while isinstance(b, StageRef):
            b = self.stages[b.stage].output_spec(b.output)
        return b
