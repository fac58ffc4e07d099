"""The conformance kit as a backend author runs it: the built-in backends pass ``pytest --hlx-backend``, a
slightly wrong backend installed as a distribution of its own fails ``hlx conformance`` (and has what its
device lacks skipped), and in this suite's own runs the pytest plugin stays out of the way.
(examples/hlx-backend-example runs the kit in tests/test_example_backend.py.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_fakes import write_distribution

import hlx
from hlx_core import conformance
from hlx_core.cli import main
from hlx_core.conformance.cases import CASES

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "HLX_PLUGINS"}, **extra}


def test_built_in_backends_pass(tmp_path):
    """cpu, vulkan and wgpu (those available here) in one run, from a folder that is no checkout of HLX.
    Live logging shows every warning: the Vulkan validation layers (on for this suite) must report none."""
    names = [b for b in ("cpu", "vulkan", "wgpu") if b in hlx.backends()]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *(f"--hlx-backend={n}" for n in names), "-o", "log_cli=true", "--log-cli-level=WARNING"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert f" {1 + len(names) * (1 + len(CASES))} passed" in out and " failed" not in out and " skipped" not in out, \
        out[-3000:]
    assert "hlx.vulkan" not in out, out[-6000:]  # no validation message of warning or error severity


def test_wrong_backend_fails_and_lacking_capabilities_skip(tmp_path):
    """tests/wrong_backend.py installed as the distribution hlx-wrong (entry point "wrong"): an exact kernel
    one ulp off and a GEMM off by 1e-3 fail, what it leaves alone passes, softmax (E_UNSUPPORTED) skips."""
    site = tmp_path / "site"
    site.mkdir()
    write_distribution(site, "hlx-wrong", {"hlx_wrong": (ROOT / "tests" / "wrong_backend.py").read_text()},
                       {"wrong": "hlx_wrong"})
    env = _env(PYTHONPATH=os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, "-m", "hlx_core.cli", "conformance", "wrong", "-k",
                           "add-float32-1 or add-int32 or gemm-33x65x17 or relu-empty or softmax-1x1 or available"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-6000:]
    assert "3 failed, 2 passed, 1 skipped" in out, out[-3000:]
    failed = {line.rsplit("[", 1)[-1].split("]")[0] for line in out.splitlines() if line.startswith("FAILED ")}
    assert failed == {"wrong-add-float32-1", "wrong-add-int32", "wrong-gemm-33x65x17"}, out[-3000:]
    assert "not bit-equal" in out and "exceeds the declared bound" in out
    assert "[E_UNSUPPORTED] the wrong device cannot run softmax" in out


def test_inert_without_the_option(request):
    """Installed (entry point pytest11) and loaded here, the plugin adds no test and no parametrization."""
    assert request.config.pluginmanager.has_plugin(conformance.PLUGIN)
    assert request.config.getoption("hlx_backend") == []
    assert not [item for item in request.session.items if "hlx_core" in str(item.path)]


def test_conformance_needs_pytest(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pytest", None)  # import pytest now raises ImportError
    assert main(["conformance", "cpu"]) == 1
    assert "[E_DEPENDENCY]" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["conformance"], ["parity"]])
def test_usage(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
