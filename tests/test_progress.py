"""Progress of long work: hlx.run_many(progress=True) reports every finished contract on stderr, and the
results are those of a run without it."""
from __future__ import annotations

import numpy as np

import hlx
from hlx_core.progress import progress


def test_run_many_reports_each_finished_contract(capsys, rng):
    store = hlx.MemoryStore()
    xs = [rng.standard_normal(64).astype(np.float32) for _ in range(5)]
    contracts = [hlx.kernels.relu(x, store=store) for x in xs]
    with hlx.executor("local", store=store) as ex:
        quiet = ex.run_many(contracts, "cpu", memo=False)
        capsys.readouterr()
        shown = ex.run_many(contracts, "cpu", memo=False, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [r.outputs for r in shown] == [r.outputs for r in quiet]
    for result, x in zip(shown, xs):
        np.testing.assert_array_equal(result.arrays()[0], np.maximum(x, 0))
    assert len(lines) == 5 and lines[-1].startswith("[5/5] contract ")
    assert sorted(int(line.split()[2]) for line in lines) == list(range(5))


def test_plain_progress_numbers_the_steps(capsys):
    with progress(3, counts="finished") as step:
        for label in "abc":
            step(label)
    assert capsys.readouterr().err.splitlines() == ["[1/3] a", "[2/3] b", "[3/3] c"]
