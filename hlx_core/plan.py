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


@dataclass(frozen=True)
class InputRef:
    """A binding fed from the store: ``array`` is the resolved (read-only) tensor behind ``handle``."""

    handle: Handle
    array: np.ndarray = field(repr=False, compare=False)

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)


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
    def input_arrays(self) -> dict[str, np.ndarray]:
        """The input tensors by handle: backends that cache per-key work upload from the plan being run."""
        return {b.handle: b.array for st in self.stages for b in st.bindings if isinstance(b, InputRef)}

    def binding_spec(self, stage: int, slot: int) -> InputRef | OutputRef:
        """What lives in a binding, following StageRefs back to the OutputRef that made it."""
        b = self.stages[stage].bindings[slot]
        while isinstance(b, StageRef):
            b = self.stages[b.stage].output_spec(b.output)
        return b
