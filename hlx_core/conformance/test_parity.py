"""Every library kernel and pipeline on every backend under test, against the CPU reference (bit for bit
where the kernel is exact or fixed-order) and against NumPy in float64 on fresh random inputs."""
from __future__ import annotations

import numpy as np
import pytest
from parity_cases import CASES, Case

import hlx


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint8)


def _check_close(name: str, got: np.ndarray, expected: np.ndarray, bound: np.ndarray) -> None:
    assert np.isfinite(got).all(), f"{name}: non-finite values"
    err = np.abs(got.astype(np.float64) - expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else ()
    assert (err <= bound).all(), (f"{name}: error {err[worst]:.3g} exceeds the bound {bound[worst]:.3g} at "
                                  f"{worst} (got {got[worst]!r}, expected {expected[worst]!r})")


def _check(case: Case, arrays: list[np.ndarray], what: str) -> None:
    assert len(arrays) == len(case.expected), f"{what}: {len(arrays)} outputs"
    for k, (got, want) in enumerate(zip(arrays, case.expected)):
        name = f"{what} output {k}"
        assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
        if case.exact:
            assert got.dtype == want.dtype, f"{name}: dtype {got.dtype}, expected {want.dtype}"
            assert np.array_equal(_bits(got), _bits(want)), f"{name}: not bit-equal to NumPy"
        else:
            assert got.dtype == np.float32, f"{name}: dtype {got.dtype}"
            _check_close(name, got, want, case.bound[k])


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_kernel_parity(backend: str, case_name: str, rng: np.random.Generator) -> None:
    case = CASES[case_name](rng)
    result = hlx.run(case.contract, backend=backend)
    assert result.backend == backend
    got = result.arrays()
    _check(case, got, f"{case_name} on {backend}")
    if backend == "cpu":
        return  # the CPU reference against itself would prove nothing; it was checked against NumPy above
    reference = hlx.run(case.contract, backend="cpu").arrays()
    for k, (g, r) in enumerate(zip(got, reference)):
        if case.bit_equal_to_reference:
            assert np.array_equal(_bits(g), _bits(r)), (
                f"{case_name} output {k}: {backend} differs from the CPU reference bit for bit "
                f"(max |diff| {np.abs(g.astype(np.float64) - r).max():.3g})")
        else:
            _check_close(f"{case_name} output {k}: {backend} vs cpu", g, r.astype(np.float64),
                         2 * case.bound[k])


def test_every_library_kernel_has_a_parity_case() -> None:
    """A kernel added to the library without a parity case here would go unchecked on every backend."""
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
