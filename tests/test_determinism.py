"""The proof of determinism: ``hlx_core.determinism.prove`` and ``hlx verify-determinism``."""
from __future__ import annotations

import numpy as np
import pytest
from memo_fakes import DriftingBackend
from plugin_fakes import FakePlugin, plugins  # noqa: F401 (fixture)

import hlx
from hlx_core import registry
from hlx_core.cli import main
from hlx_core.determinism import prove
from hlx_core.memo.index import index_for


def _gemm(rng) -> dict:
    a = rng.standard_normal((33, 17)).astype(np.float32)
    b = rng.standard_normal((17, 9)).astype(np.float32)
    return hlx.kernels.gemm(a, b)


def test_one_handle_over_runs_and_a_fresh_process(plugins, rng):
    plugins("cpu")
    proof = prove(_gemm(rng), runs=3, backend="cpu", processes=1)
    assert proof.distinct == 1 and proof.total_runs == 6 and proof.backend == "cpu"
    ((outputs, where),) = proof.seen.items()
    assert where == {"this process": 3, "process 0": 3} and len(outputs) == 1
    lines = "\n".join(proof.lines())
    assert "distinct output handles: 1" in lines and "3 in each of 1 fresh process(es) (6 in all)" in lines
    assert list(index_for(hlx.get_default_store()).entries()) == []  # memo was off for every run


def test_a_drifting_backend_gives_as_many_handles_as_runs(plugins, rng, capsys, tmp_path):
    drifting = DriftingBackend("drifting")
    registry.register_plugin(FakePlugin(drifting), name="fakes", distribution="fake-dist")
    contract = hlx.kernels.add(*(rng.standard_normal(16).astype(np.float32) for _ in range(2)))
    proof = prove(contract, runs=4, backend="drifting")
    assert proof.distinct == 4 and drifting.executions == 4
    assert sum(len(line.split(", ")) for line in proof.lines()[4:]) >= 4  # each distinct output listed
    handle = hlx.collapse(hlx.validate(contract))
    assert main(["verify-determinism", handle, "--runs", "3", "--backend", "drifting"]) == 1
    out = capsys.readouterr().out
    assert "distinct output handles: 3" in out and "memo off" in out
    with pytest.raises(hlx.HLXError) as err:
        prove(contract, runs=2, backend="drifting", processes=1, store=hlx.MemoryStore())
    assert err.value.code == "E_CONFIG"


def test_the_command_reads_a_file_and_exits_0_for_one_handle(plugins, rng, capsys, tmp_path):
    plugins("cpu")
    path = tmp_path / "relu.lcb"
    path.write_bytes(hlx.encode(hlx.kernels.relu(np.array([1.0, -2.0, 3.0, -4.0], np.float32))))
    assert main(["verify-determinism", str(path), "--runs", "5", "--backend", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "distinct output handles: 1" in out and "5 in this process" in out and "on cpu" in out
    assert main(["verify-determinism", str(path), "--runs", "1", "--backend", "cpu", "--processes", "-1"]) == 1
    assert "E_CONFIG" in capsys.readouterr().err
