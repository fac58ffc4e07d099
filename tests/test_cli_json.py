"""The command line for scripts: --json, ``hlx show``, ``hlx shader info``, handles without their ``&``,
and JSON contract errors with their line and column."""
from __future__ import annotations

import json

import numpy as np
from plugin_fakes import plugins  # noqa: F401 (fixture)
from test_cli import HANDLE, SHADERS, _relu_json, _run

import hlx
from hlx import kernels as K


def test_devices_and_plugins_json(plugins, capsys):
    plugins("cpu")
    code, out, _ = _run(capsys, "devices", "--json")
    (cpu,) = json.loads(out)
    assert code == 0 and cpu["name"] == "cpu" and cpu["available"] and cpu["devices"][0]["kind"] == "cpu"
    code, out, _ = _run(capsys, "plugins", "--json")
    (cpu,) = json.loads(out)
    assert code == 0 and cpu["distribution"] == "hlx" and cpu["devices"] == 1 and cpu["plugin"]


def test_run_json_and_handles_without_the_ampersand(plugins, capsys, tmp_path, rng):
    plugins("cpu")
    code, shader, _ = _run(capsys, "shader", "pack", str(SHADERS / "relu.spv"))
    x = rng.standard_normal(9).astype(np.float32)
    (tmp_path / "relu.json").write_text(json.dumps(_relu_json(HANDLE.search(shader).group(0), x.tolist(), tmp_path)))
    code, out, err = _run(capsys, "run", str(tmp_path / "relu.json"), "--json", "--print")
    assert code == 0, err
    report = json.loads(out)
    assert code == 0 and report["backend"] == "cpu" and HANDLE.fullmatch(report["contract"])
    (output,) = report["outputs"]
    assert output["dtype"] == "float32" and output["shape"] == [9] and "total_ms" in report["timings_ms"]
    np.testing.assert_array_equal(np.float32(output["array"]), np.maximum(x, 0))
    code, out, _ = _run(capsys, "run", report["contract"].lstrip("&"), "--json")
    assert code == 0 and json.loads(out)["outputs"][0]["handle"] == output["handle"]


def test_show_a_tensor_and_save_it(capsys, tmp_path):
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    handle = hlx.collapse(x)
    hlx.flush()
    for spelled in (handle, handle[1:]):
        code, out, _ = _run(capsys, "show", spelled)
        assert code == 0 and "tensor int32[2, 3]" in out and "[3 4 5]" in out
    code, out, _ = _run(capsys, "show", handle[1:], "--out", str(tmp_path / "x.npy"))
    assert code == 0 and np.array_equal(np.load(tmp_path / "x.npy"), x)


def test_show_a_contract(capsys):
    contract = K.relu(np.zeros(4, np.float32))
    handle = hlx.collapse(contract)
    hlx.flush()
    code, out, _ = _run(capsys, "show", handle)
    shown = json.loads(out.split("\n", 1)[1])
    assert code == 0 and shown["901"]["kernel_name"] == "relu" and shown["901"]["bindings"][0].startswith("&h_")
    code, _, err = _run(capsys, "show", handle, "--out", "x.npy")
    assert code == 1 and err.startswith("error [E_USAGE]")
    code, _, err = _run(capsys, "show", "h_tensor_" + "0" * 64)
    assert code == 1 and "E_HANDLE_NOT_FOUND" in err


def test_shader_info(capsys):
    code, out, _ = _run(capsys, "shader", "info", str(SHADERS / "gemm.spv"), "--json")
    (entry,) = json.loads(out)
    assert code == 0 and entry["name"] == "main" and entry["execution_model"] == "GLCompute"
    assert len(entry["local_size"]) == 3 and entry["push_constant_size"] > 0
    assert [b["binding"] for b in entry["bindings"]] == [0, 1, 2] and entry["bindings"][0]["readonly"]
    code, text, _ = _run(capsys, "shader", "info", str(SHADERS / "relu.comp"))
    assert code == 0 and text.startswith("entry point 'main' (GLCompute)") and "local_size:" in text
    assert "bindings:" in text and "binding=0" in text


def test_cache_stats_json(capsys, tmp_path):
    hlx.collapse(np.zeros(3, np.float32))
    hlx.flush()
    code, out, _ = _run(capsys, "cache", "stats", "--json")
    stats = json.loads(out)
    assert code == 0 and stats["objects"] >= 1 and stats["bytes"] > 0 and "home" in stats
    code, _, err = _run(capsys, "cache", "clear", "--json")
    assert code == 1 and err.startswith("error [E_USAGE]")


def test_json_contract_errors_name_line_and_column(capsys, tmp_path):
    (tmp_path / "bad.json").write_text('{"901": {\n  "kernel_name": "relu",\n  "dispatch": [1, 1 1]\n}}\n')
    code, _, err = _run(capsys, "run", str(tmp_path / "bad.json"))
    assert code == 1 and "line 3 column 21" in err and "delimiter" in err, err
