"""The conformance kit's tests: every library kernel and pipeline on the backend under test (``hlx_backend``,
from ``--hlx-backend``), against NumPy (bit for bit, or in float64 within the kernels' declared bound) and
against the CPU reference through ``hlx_core.compare`` (bit for bit where the kernels are exact, within
twice the bound elsewhere). Inputs are fresh random numbers on every run; the seed is printed on failure.
"""
from __future__ import annotations

import numpy as np
import pytest

from hlx_core import registry
from hlx_core.cas import api as cas
from hlx_core.cas.store import MemoryStore
from hlx_core.compare import check, reference
from hlx_core.conformance.cases import CASES, check_expected

# What a device may lack: the case is skipped, with the backend's reason, rather than failed.
LACKING = ("E_UNSUPPORTED", "E_LIMIT_EXCEEDED")


@pytest.fixture(scope="module", autouse=True)
def _own_store(tmp_path_factory):
    """The kit's tensors live in memory and the backends' caches in a folder of their own: nothing of a
    run reaches the user's $HLX_HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HLX_HOME", str(tmp_path_factory.mktemp("hlx_home")))
        cas.set_default_store(MemoryStore())
        try:
            yield
        finally:
            cas.set_default_store(None)


@pytest.fixture
def rng() -> np.random.Generator:
    seed = int(np.random.SeedSequence().entropy % (2**32))
    print(f"rng seed {seed}")
    return np.random.default_rng(seed)


def _unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None when it can (probing that backend alone)."""
    entries = registry.backend_entries()
    if name in entries:
        availability = entries[name].availability()
        return None if availability.available else f"{name} is not available: {availability.reason}"
    failed = [f"plugin {f.name!r} failed at {f.stage}: {f.error}" for f in registry.failures() if f.name == name]
    return "; ".join(failed) or f"no backend named {name!r} is registered (known: {', '.join(entries) or 'none'})"


@pytest.fixture
def available(hlx_backend: str) -> None:
    """Fails each test of a backend that cannot run here at once, in one line with the reason."""
    reason = _unavailable(hlx_backend)
    if reason:
        pytest.fail(reason, pytrace=False)


@pytest.mark.usefixtures("available")
def test_backend_is_available(hlx_backend: str) -> None:
    """Its own line in the report: the backend is registered and available."""


@pytest.mark.usefixtures("available")
@pytest.mark.parametrize("case_name", sorted(CASES))
def test_kernel_parity(hlx_backend: str, case_name: str, rng: np.random.Generator) -> None:
    case = CASES[case_name](rng)
    ref = reference(case.contract)
    verdict = check(ref, hlx_backend)
    if verdict.error_code in LACKING:
        pytest.skip(f"{hlx_backend} cannot run {case_name} here: [{verdict.error_code}] {verdict.error}")
    assert verdict.result is not None, verdict.describe()
    assert verdict.backend == hlx_backend
    check_expected(case, verdict.result.arrays(), f"{case_name} on {hlx_backend}", ref)
    assert verdict.passed, verdict.describe()


def test_every_library_kernel_has_a_case() -> None:
    """A kernel added to the library without a case here would go unchecked on every backend."""
    from hlx_core.kernels.library import LIBRARY

    rng = np.random.default_rng(0)  # only the contracts' structure is looked at
    covered: set[str] = set()
    pipelines = 0
    for make in CASES.values():
        contract = make(rng).contract
        bodies = [s["901"] for s in contract["902"]["stages"]] if "902" in contract else [contract["901"]]
        covered |= {b["kernel_name"] for b in bodies}
        pipelines += len({b["kernel_name"] for b in bodies}) > 1
    assert {spec.name for spec in LIBRARY} <= covered, sorted({s.name for s in LIBRARY} - covered)
    assert pipelines >= 3
