"""Contracts for the candidate shaders in benchmarks/variants/ (GEMM and streaming kernels being tuned before
one is promoted into shaders/ and the library), and their GPU time on the Vulkan backend.

A candidate stage is a plain 901 of its own SPIR-V: bindings (inputs, then float32/uint32 outputs), push
constants as 32-bit words, and the dispatch the benchmark chooses; several stages chain into a 902 with a
device barrier after each. Candidates are checked in a session that poisons every output before each run
(an element left unwritten shows), and timed with the output clear left out, as for a library kernel
(``writes_all_outputs``): the fill before the first timestamp would otherwise count against them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import statistics
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import host_array

import hlx
from hlx_core.device.poison import ENV_POISON
from hlx_core.planner import plan as make_plan

VARIANTS = Path(__file__).resolve().parent / "variants"
SHADERS = Path(__file__).resolve().parents[1] / "shaders"


@functools.lru_cache(maxsize=None)
def shader(path: Path) -> Any:
    """The 900 handle of a SPIR-V file (built once per file)."""
    return hlx.collapse(hlx.shader_contract(Path(path).read_bytes()))


def words(*values: int | float) -> bytes:
    """Push constants: each value a little-endian uint32, or float32 for a Python float."""
    return b"".join(struct.pack("<f" if isinstance(v, float) else "<I", v) for v in values)


def stage(spv: Path, dispatch: Sequence[int], inputs: Sequence[Any], outputs: Sequence[tuple[str, Sequence[int]]],
          push: bytes) -> dict:
    """A 901 body of the shader ``spv``; ``inputs`` are tensor handles or ``{"stage": s, "output": j}``."""
    return {
        "kernel_name": Path(spv).stem,
        "shader_handle": shader(Path(spv)),
        "dispatch": [int(d) for d in dispatch],
        "bindings": list(inputs) + [{"output": {"dtype": dt, "shape": [int(d) for d in shape]}}
                                    for dt, shape in outputs],
        "push_constants": push,
    }


def contract(stages: Sequence[dict], name: str) -> dict:
    """One stage as a 901, several as a 902 returning the last stage's first output."""
    if len(stages) == 1:
        return {"901": stages[0]}
    return {"902": {"pipeline_id": name, "stages": [{"901": s} for s in stages],
                    "sync_barriers": [{"stage_idx": i, "memory_scope": "device"} for i in range(len(stages) - 1)],
                    "outputs": [{"stage": len(stages) - 1, "output": 0}]}}


def open_session(poison: bool) -> Any:
    """A Vulkan session on the default device, poisoning outputs before each run or not, whose large outputs
    stay on the device (hashed there, after the run's last timestamp) as ``hlx.run``'s do: a timed run never
    waits on a download. Measured on the H200 (2026-12-01): when every repeat downloaded its 256 MiB output,
    the GPU idled ~90 ms between kernels and a conv2d timed at 6.0 TFLOP/s ran at 20.3 in ``hlx bench``,
    whose repeats run back to back. ``warm`` and ``output`` download what they return."""
    from hlx_vulkan_raw import VulkanBackend
    before = os.environ.get(ENV_POISON)
    os.environ[ENV_POISON] = "1" if poison else "0"
    try:
        session = VulkanBackend().open(None)
    finally:
        if before is None:
            del os.environ[ENV_POISON]
        else:
            os.environ[ENV_POISON] = before
    session.on_device = True
    return session


@contextlib.contextmanager
def sessions() -> Iterator[tuple[Any, Any]]:
    """(a session that times candidates, one that poisons outputs to check them: ``open_session``), both
    closed on the way out."""
    session = open_session(False)
    try:
        poisoned = open_session(True)
        try:
            yield session, poisoned
        finally:
            poisoned.close()
    finally:
        session.close()


def output(session: Any, c: dict) -> np.ndarray:
    """The first output of one run of ``c``, on the host."""
    return host_array(session.execute(make_plan(c)).arrays[0])


def warm(session: Any, c: dict) -> tuple[Any, np.ndarray]:
    """The plan of ``c`` without the output clear (as a library kernel's, whose shader writes every
    element), and the first output of a run that leaves its inputs resident in the session."""
    p = make_plan(c)
    p = dataclasses.replace(p, stages=tuple(dataclasses.replace(st, writes_all_outputs=True) for st in p.stages))
    return p, host_array(session.execute(p).arrays[0])


def timed(session: Any, c: dict, repeat: int) -> tuple[np.ndarray, float]:
    """The first output of a warm run and the median GPU time in ms (timestamps, all stages) over
    ``repeat`` further runs, without the output clear; inputs stay resident in the session."""
    p, first = warm(session, c)
    ms = statistics.median(session.execute(p).timings["gpu_ms"] for _ in range(repeat))
    return first, ms


def print_statistics(session: Any, named: Sequence[tuple[str, dict]]) -> None:
    """Print the driver's statistics (registers, spills, shared and local memory) of every stage of each
    named contract, or once that the device reports none (VK_KHR_pipeline_executable_properties)."""
    from hlx_vulkan_raw.pipelines import describe_statistics
    if not session.core.pipeline_statistics_supported:
        print(f"pipeline statistics: {session.device.name} does not report them "
              "(no VK_KHR_pipeline_executable_properties)")
        return
    for name, c in named:
        for where, stats in session.pipeline_statistics(make_plan(c)).items():
            print(f"statistics {name} [{where}]: {describe_statistics(stats)}")
