"""The local executor and the API around it: every library kernel and pipeline over every device of the
cpu and Vulkan backends with the handles ``hlx.run`` gives, results in input order, futures as they
complete, memo records shared with ``hlx.run``, and the executor specs (HLX_CLUSTER included)."""
from __future__ import annotations

import numpy as np
import pytest

import hlx
from hlx_core.conformance.cases import CASES, check_expected
from hlx_core.scale.executor import ENV_CLUSTER, default_spec

BACKENDS = [b for b in ("cpu", "vulkan") if b in hlx.backends()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_case_gives_the_handles_of_hlx_run(backend, rng):
    cases = [make(rng) for make in CASES.values()]
    with hlx.executor("local") as ex:
        results = ex.run_many([c.contract for c in cases], backend=backend, memo=False)
    for name, case, result in zip(CASES, cases, results):
        alone = hlx.run(case.contract, backend=backend, memo=False)
        assert result.outputs == alone.outputs, name
        assert result.backend == backend and result.exec_key is None
        check_expected(case, result.arrays(), f"{name} on {backend} (local executor)")


def test_run_many_keeps_the_input_order_and_as_completed_yields_every_future(rng):
    xs = [rng.standard_normal(64).astype(np.float32) for _ in range(8)]
    contracts = [hlx.kernels.relu(x) for x in xs]
    results = hlx.run_many(contracts, backend="cpu", memo=False)
    for x, result in zip(xs, results):
        assert np.array_equal(result.arrays()[0], np.maximum(x, 0))
    with hlx.executor() as ex:
        futures = [ex.submit(c, "cpu", memo=False) for c in contracts]
        done = list(hlx.as_completed(futures, timeout=60))
    assert set(done) == set(futures)


def test_memo_records_of_the_executor_answer_hlx_run(rng):
    contract = hlx.kernels.add(rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(np.float32))
    with hlx.executor() as ex:
        first = ex.submit(contract, "cpu", memo=True).result()
    assert not first.memo_hit and first.exec_key is not None
    again = hlx.run(contract, backend="cpu", memo=True)
    assert again.memo_hit and again.outputs == first.outputs and again.exec_key == first.exec_key


def test_an_error_comes_through_the_future(rng):
    bad = hlx.kernels.add(rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32))
    bad["901"]["dispatch"] = [0, 0]
    with hlx.executor() as ex:
        future = ex.submit(bad, "cpu")
        with pytest.raises(hlx.HLXError) as err:
            future.result()
    assert err.value.code.startswith("E_CONTRACT")


def test_specs_and_a_closed_executor(monkeypatch):
    monkeypatch.delenv(ENV_CLUSTER, raising=False)
    assert default_spec() == "local"
    monkeypatch.setenv(ENV_CLUSTER, "nowhere://x")
    with pytest.raises(hlx.HLXError) as err:
        hlx.executor()
    assert err.value.code == "E_EXECUTOR" and ENV_CLUSTER in err.value.message
    with pytest.raises(hlx.HLXError) as err:
        hlx.executor(42)
    assert err.value.code == "E_EXECUTOR"
    with pytest.raises(hlx.HLXError) as err:
        hlx.executor("dask+local://?workers=zero")
    assert err.value.code == "E_EXECUTOR"
    ex = hlx.executor("local")
    ex.close()
    with pytest.raises(hlx.HLXError) as err:
        ex.submit({"901": {}})
    assert err.value.code == "E_EXECUTOR"
