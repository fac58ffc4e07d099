"""Outputs start every run cleared, on every GPU backend, whatever the memory held before.

Without poisoning: a shader writing 100 of n elements returns zeros in the others even when the pooled or
sub-allocated memory it gets was just filled by other work, so the same contract gives the same handle
before and after; every conformance case still gives NumPy's answer (the rest of the suite runs poisoned).
With poisoning: every library kernel that declares ``writes_all_outputs`` (and so is not cleared) leaves
no poisoned element in any output or intermediate of any conformance case (awkward sizes, multi-pass
reductions, pipelines).
"""
from __future__ import annotations

import struct

import numpy as np
import pytest
from _shaders import prefix_copy as prefix_copy_spirv

import hlx
from hlx_core import registry
from hlx_core.conformance.cases import CASES, check_expected
from hlx_core.device.poison import ENV_POISON, poisoned
from hlx_core.kernels.helpers import shader_handle
from hlx_core.kernels.library import LIBRARY
from hlx_core.planner import plan

GPU_BACKENDS = ("vulkan", "wgpu")
WRITTEN = 100
# Inputs never stay resident, so each run's buffers go back to the pool or allocator and the next run's
# come out of them (the shortest route from one run's data to another's memory).
NOT_RESIDENT = {"HLX_VULKAN_RESIDENCY_MB": "0", "HLX_WGPU_RESIDENT_BYTES": "0"}


@pytest.fixture(scope="module")
def sessions():
    """``open(backend, poison)``: a session of its own, opened once per module with HLX_POISON_OUTPUTS set
    (sessions read it when they open) and no input kept resident."""
    opened: dict[tuple[str, bool], object] = {}

    def open_(backend: str, poison: bool):
        entry = registry.backend_entries().get(backend)
        if entry is None or not entry.availability().available:
            pytest.skip(f"{backend} unavailable")
        if (backend, poison) not in opened:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv(ENV_POISON, "1" if poison else "0")
                for name, value in NOT_RESIDENT.items():
                    mp.setenv(name, value)
                opened[(backend, poison)] = entry.backend.open()
        return opened[(backend, poison)]

    yield open_
    for session in opened.values():
        session.close()


@pytest.fixture(scope="module")
def prefix_copy() -> bytes:
    """Copies x[i] to o[i] for i below its push constant only: the rest of o is never written."""
    return prefix_copy_spirv("uint")


def _copy(spirv: bytes, source, n: int, count: int) -> dict:
    return {"901": {"kernel_name": "prefix_copy", "shader_handle": hlx.collapse(hlx.shader_contract(spirv)),
                    "dispatch": [-(-n // 64), 1, 1], "bindings": [source, {"output": {"dtype": "uint32",
                                                                                      "shape": [n]}}],
                    "push_constants": struct.pack("<I", count)}}


def _pipeline(*stages: dict) -> dict:
    return {"902": {"pipeline_id": "cleared", "stages": list(stages),
                    "outputs": [{"stage": s, "output": 0} for s in range(len(stages))]}}


@pytest.fixture(params=GPU_BACKENDS)
def backend(request) -> str:
    return request.param


def _nonzero(rng, n: int) -> np.ndarray:
    return rng.integers(1, 2**32, n, dtype=np.uint32)


def _other_work(session, spirv: bytes, rng, n: int) -> None:
    """Fill the memory the next run gets back with nonzero words: a pipeline of five full copies of n."""
    stages = [_copy(spirv, hlx.collapse(_nonzero(rng, n)) if s == 0 else {"stage": s - 1, "output": 0}, n, n)
              for s in range(5)]
    assert all(a.all() for a in session.execute(plan(_pipeline(*stages))).arrays)


@pytest.mark.parametrize("where", ["output", "intermediate"])
def test_unwritten_elements_are_zero_after_other_work(backend, sessions, prefix_copy, rng, where):
    session = sessions(backend, poison=False)
    n = int(rng.integers(2000, 6000))
    x = _nonzero(rng, n)
    partial = _copy(prefix_copy, hlx.collapse(x), n, WRITTEN)
    contract = partial if where == "output" else _pipeline(partial, _copy(prefix_copy, {"stage": 0, "output": 0},
                                                                           n, n))

    def run() -> str:
        got = session.execute(plan(contract)).arrays[-1]
        assert np.array_equal(got[:WRITTEN], x[:WRITTEN])
        stale = np.flatnonzero(got[WRITTEN:])
        assert stale.size == 0, f"{stale.size} of {n - WRITTEN} unwritten elements hold old data"
        return hlx.collapse(got)

    before = run()
    _other_work(session, prefix_copy, rng, n)
    assert run() == before  # the same contract, the same handle


def test_library_shader_off_its_builder_dispatch_is_cleared(backend, sessions, prefix_copy, rng):
    """The 128-tile gemm shader on a product gemm() gives the 64-tile one, with one workgroup: it writes
    only C[:128, :128], and the rest is zeros, not what the memory held."""
    session = sessions(backend, poison=False)
    a, b = rng.standard_normal((200, 3)).astype(np.float32), rng.standard_normal((3, 190)).astype(np.float32)
    body = {k: v for k, v in hlx.kernels.gemm(a, b)["901"].items() if k not in ("params", "push_constants_layout")}
    contract = {"901": {**body, "kernel_name": "gemm128", "shader_handle": shader_handle("gemm128"),
                        "dispatch": [1, 1, 1]}}
    _other_work(session, prefix_copy, rng, 200 * 190)
    got = session.execute(plan(contract)).arrays[0]
    np.testing.assert_allclose(got[:128, :128], a[:128].astype(np.float64) @ b[:, :128], rtol=1e-5, atol=1e-5)
    assert not got[128:].any() and not got[:, 128:].any()


def test_parity_without_poisoning(backend, sessions, rng):
    """Every conformance case on sessions that clear instead of poisoning (library kernels: no fill at all)."""
    session = sessions(backend, poison=False)
    for name in sorted(CASES):
        case = CASES[name](rng)
        check_expected(case, session.execute(plan(case.contract)).arrays, f"{name} on {backend}, unpoisoned")


def _every_output(contract: dict) -> dict:
    """``contract`` returning every output of every stage (a 901 returns all of its own already)."""
    if "902" not in contract:
        return contract
    stages = contract["902"]["stages"]
    outputs = [{"stage": s, "output": j} for s, st in enumerate(stages)
               for j in range(sum(isinstance(b, dict) and "output" in b and isinstance(b["output"], dict)
                                  for b in st["901"]["bindings"]))]
    return {"902": {**contract["902"], "outputs": outputs}}


def test_declared_kernels_write_every_element(backend, prefix_copy, rng):
    """With poisoning on (the suite's sessions, which hlx.run uses), no element of any output or
    intermediate of a kernel declaring ``writes_all_outputs`` keeps the pattern where the CPU reference does
    not have it; every declaring kernel is among those run."""
    if backend not in hlx.backends():
        pytest.skip(f"{backend} unavailable")
    n = int(rng.integers(200, 1000))
    probe = hlx.run(_copy(prefix_copy, hlx.collapse(_nonzero(rng, n)), n, WRITTEN), backend=backend).arrays()[0]
    if not poisoned(probe[WRITTEN:]).all():
        pytest.skip(f"the {backend} session of hlx.run does not poison ({ENV_POISON} was not 1 when it opened)")
    checked: set[str] = set()
    for name in sorted(CASES):
        contract = _every_output(CASES[name](rng).contract)
        stages = plan(contract).stages
        assert all(stage.writes_all_outputs for stage in stages), name
        checked |= {stage.kernel_name for stage in stages}
        got = hlx.run(contract, backend=backend).arrays()
        want = hlx.run(contract, backend="cpu").arrays()
        for k, (g, w) in enumerate(zip(got, want)):
            left = int((poisoned(g) & ~poisoned(w)).sum())
            assert left == 0, f"{name} on {backend}: output {k} has {left} unwritten element(s)"
    declared = {spec.name for spec in LIBRARY if spec.writes_all_outputs}
    assert declared <= checked, f"declared but never run here: {sorted(declared - checked)}"
