"""hlx.compare and hlx parity: bit equality where the kernels are exact, their declared tolerance elsewhere,
and a report that fails a backend that is slightly wrong (one ulp off in an exact kernel, a GEMM scaled by
1e-3 or missing one term) while every real backend passes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import wrong_backend
from plugin_fakes import FakePlugin, plugins  # noqa: F401 (fixture)

import hlx
from hlx import kernels as K
from hlx_core import registry
from hlx_core.cli import main
from hlx_core.compare import reference
from hlx_core.kernels.library import LIBRARY
from hlx_core.kernels.spec import KernelSpec
from hlx_core.registry import kernel_registry

BUILT_IN = "cpu,vulkan,wgpu"


@pytest.fixture
def wrong(plugins):
    """The built-in backends plus "wrong" (tests/wrong_backend.py), registered in code; ``wrong(spoil=...)``
    registers it with other spoilers."""
    plugins(BUILT_IN)

    def use(spoil: dict | None = None, refuse: set[str] | None = None) -> str:
        registry.register_plugin(FakePlugin(wrong_backend.WrongBackend(spoil, refuse)), name="wrong-plugin")
        return "wrong"

    return use


def _gpus() -> list[str]:
    return [b for b in ("vulkan", "wgpu") if b in hlx.backends()]


def test_every_library_kernel_declares_a_tolerance():
    """One source of tolerances: the kernel records (exact kernels too, to carry a pipeline's errors)."""
    assert all(spec.tolerance is not None for spec in LIBRARY), [s.name for s in LIBRARY if s.tolerance is None]
    assert {s.name for s in LIBRARY if s.exact} == {"add", "mul", "relu", "reduce_sum", "transpose"}


def test_exact_kernels_bit_equal_everywhere_others_within_tolerance(rng):
    a, b = rng.standard_normal((33, 65)).astype(np.float32), rng.standard_normal((65, 17)).astype(np.float32)
    ints = rng.integers(-2**31, 2**31, size=(100, 100), dtype=np.int32)
    backends = ["cpu", *_gpus()]
    exact = hlx.compare(K.pipeline([K.add(ints, ints), K.reduce_sum(K.stage(0))]), backends=backends)
    assert exact.passed and exact.kernels == ("add", "reduce_sum", "reduce_sum")  # 10,000 elements: two passes
    for check in exact.backends:
        (out,) = check.outputs
        assert out.exact and out.bitwise_equal and out.handle == out.reference == exact.reference[0]
        assert out.tolerance == 0 and out.margin == 0 and out.max_abs_error == 0
    report = hlx.compare(K.gemm(a, b), backends=backends)
    assert report.passed, report.table()
    for check in report.backends:
        (out,) = check.outputs
        assert not out.exact and out.declared and out.tolerance > 0 and 0 <= out.margin <= 1
        assert out.max_abs_error <= out.tolerance
    assert report.backends[0].outputs[0].bitwise_equal  # the cpu backend runs the reference itself


def test_exactness_follows_the_pipeline(rng):
    """relu is exact, but not after a GEMM: its output then carries the GEMM's tolerance."""
    a, b = rng.standard_normal((8, 9)).astype(np.float32), rng.standard_normal((9, 10)).astype(np.float32)
    ref = reference(K.pipeline([K.gemm(a, b), K.relu(K.stage(0))]))
    assert ref.exact == (False,) and ref.bounds[0].shape == (8, 10) and (ref.bounds[0] > 0).all()
    ref = reference(K.pipeline([K.relu(a), K.transpose(K.stage(0))]))
    assert ref.exact == (True,)


def test_slightly_wrong_backend_fails(wrong, rng):
    name = wrong()
    x = rng.integers(-1000, 1000, size=500, dtype=np.int32)
    f = rng.standard_normal(500).astype(np.float32)
    a, b = rng.standard_normal((33, 65)).astype(np.float32), rng.standard_normal((65, 17)).astype(np.float32)
    for contract in (K.add(x, x), K.mul(f, f)):  # one element one ulp off
        report = hlx.compare(contract, backends=["cpu", name])
        cpu, bad = report.backends
        assert cpu.passed and not bad.passed and not report.passed
        (out,) = bad.outputs
        assert out.exact and not out.bitwise_equal and out.margin == float("inf")
        assert "not bit-equal to the reference, as exact kernels must be: 1 element(s) differ" in out.problem
    report = hlx.compare(K.gemm(a, b), backends=[name])  # scaled by 1 + 1e-3
    (out,) = report.backends[0].outputs
    assert not report.passed and out.margin > 1 and "outside the tolerance" in out.problem
    assert 5e-4 < out.max_rel_error < 2e-3
    assert hlx.compare(K.relu(f), backends=[name]).passed  # what it does not spoil passes
    table = report.table()
    assert "FAIL" in table and "outside the tolerance" in table and table.rstrip().endswith("FAILED")


def test_a_dropped_term_is_outside_the_tolerance(wrong, rng):
    """The bounds are tight: a GEMM that leaves out one of its K products fails."""
    def drop_last_term(spec_out: np.ndarray) -> np.ndarray:
        return spec_out - np.outer(a[:, -1], b[-1]).astype(np.float32)

    a, b = rng.standard_normal((30, 40)).astype(np.float32), rng.standard_normal((40, 20)).astype(np.float32)
    name = wrong(spoil={"gemm": drop_last_term, "gemm_skinny": drop_last_term}, refuse=set())
    (check,) = hlx.compare(K.gemm(a, b), backends=[name]).backends
    assert not check.passed and check.outputs[0].margin > 1


def test_errors_are_rows_and_unknown_names_raise(wrong, rng):
    name = wrong()
    x = rng.standard_normal((3, 4)).astype(np.float32)
    report = hlx.compare(K.softmax(x), backends=[name, "cpu"])  # "wrong" refuses softmax: E_UNSUPPORTED
    bad, cpu = report.backends
    assert bad.error_code == "E_UNSUPPORTED" and not bad.outputs and not report.passed and cpu.passed
    assert "FAIL [E_UNSUPPORTED]" in report.table()
    for backends, code in ((["nosuch"], "E_BACKEND_UNKNOWN"), ("cpu", "E_BACKEND_UNKNOWN"), ([1], "E_BACKEND_UNKNOWN")):
        with pytest.raises(hlx.BackendError) as err:
            hlx.compare(K.relu(x), backends=backends)
        assert err.value.code == code


def test_a_kernel_without_tolerance_is_held_to_bit_equality(rng):
    """A plugin kernel that is neither exact nor declares a tolerance passes only bit-equal."""
    relu = next(s for s in LIBRARY if s.name == "relu")
    kernels = kernel_registry()
    x = rng.standard_normal(100).astype(np.float32)
    body = {k: v for k, v in K.relu(x)["901"].items() if k not in ("params", "push_constants_layout")}
    kernels.register(KernelSpec(name="relu_untoleranced", reference=relu.reference,
                                shader_handle=body["shader_handle"]), replace=True)
    contract = {"901": {**body, "kernel_name": "relu_untoleranced"}}
    report = hlx.compare(contract, backends=["cpu"])
    (out,) = report.backends[0].outputs
    assert report.passed and not out.exact and not out.declared and out.bitwise_equal
    assert "bitwise (none declared)" in report.table()


def test_report_to_dict_is_json(rng):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    data = json.loads(json.dumps(hlx.compare(K.softmax(x), backends=["cpu"]).to_dict()))
    assert data["passed"] and data["kernels"] == ["softmax"] and data["backends"][0]["outputs"][0]["passed"]


def test_hlx_parity_prints_the_table(wrong, capsys, rng):
    a, b = rng.standard_normal((9, 7)).astype(np.float32), rng.standard_normal((7, 5)).astype(np.float32)
    handle = hlx.collapse(K.gemm(a, b))
    hlx.flush()
    backends = ["cpu", *_gpus()]
    wrong()
    code = main(["parity", handle, *(f"--backend={n}" for n in backends)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "every backend matches the reference" in out and out.count(" pass") == len(backends)
    assert "bitwise" in out and "max abs" in out and "tolerance" in out and "margin" in out
    code = main(["parity", handle, "--backend=wrong", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and not data["passed"] and data["backends"][0]["outputs"][0]["margin"] > 1


@pytest.mark.parametrize("tolerance", [lambda i, e, p, o: [], lambda i, e, p, o: 1 / 0,
                                       lambda i, e, p, o: [np.zeros(3)]])
def test_a_failing_tolerance_is_a_reference_error(tolerance, rng):
    """A tolerance is plugin code, refused like a reference that fails: none, a raise, the wrong shape."""
    relu = next(s for s in LIBRARY if s.name == "relu")
    x = rng.standard_normal(10).astype(np.float32)
    body = {k: v for k, v in K.relu(x)["901"].items() if k not in ("params", "push_constants_layout")}
    kernel_registry().register(KernelSpec(name="relu_bad_tolerance", reference=relu.reference, tolerance=tolerance,
                                          shader_handle=body["shader_handle"]), replace=True)
    with pytest.raises(hlx.BackendError) as err:
        reference({"901": {**body, "kernel_name": "relu_bad_tolerance"}})
    assert err.value.code == "E_REFERENCE_OUTPUT" and "tolerance" in err.value.message


def test_tolerances_scale_with_the_output_dtype():
    """Per-dtype tolerances: the unit roundoff of the output dtype; integers get none."""
    from hlx_core.kernels import tolerances
    from hlx_core.plan import OutputRef

    assert tolerances.roundoff("float32") == 2.0**-24 and tolerances.roundoff("float16") == 2.0**-11
    assert tolerances.roundoff("int32") == tolerances.roundoff("uint32") == 0.0
    a = np.full(4, 3000.0)
    zero = np.zeros(4)
    bound = {dt: tolerances.add([a, a], [zero, zero], {}, [OutputRef(np.dtype(dt), (4,))])[0]
             for dt in ("float16", "float32", "int32")}
    assert (bound["int32"] == 0).all()
    assert np.allclose(bound["float16"] / bound["float32"], 2.0**13, rtol=1e-3)
