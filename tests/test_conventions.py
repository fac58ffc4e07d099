"""The conventions Python users expect: ``python -m hlx``, ``hlx.__version__``, ``py.typed``, the store in
the user cache folder, and ``HLX_LOG``."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import hlx
from hlx_core.errors import HLXError
from hlx_core.settings import hlx_home

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _python(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, **env})


def test_python_m_hlx_is_the_cli():
    proc = _python("-m", "hlx", "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"hlx {hlx.__version__}"
    proc = _python("-m", "hlx", "devices", "--json", HLX_PLUGINS="cpu")
    assert proc.returncode == 0 and '"cpu"' in proc.stdout


def test_version_comes_from_the_package_metadata():
    assert hlx.__version__ == metadata.version("hlx")
    assert hlx.__version__ == _project()["project"]["version"]


def test_py_typed_is_shipped():
    data = _project()["tool"]["setuptools"]["package-data"]
    for package in ("hlx", "hlx_core"):
        assert (ROOT / package / "py.typed").is_file() and "py.typed" in data[package]


def test_the_store_lives_in_the_user_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("HLX_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert hlx_home() == tmp_path / "xdg" / "hlx"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if sys.platform.startswith("linux"):
        assert hlx_home() == tmp_path / "home" / ".cache" / "hlx"
    monkeypatch.setenv("HLX_HOME", str(tmp_path / "mine"))
    assert hlx_home() == tmp_path / "mine"


SCRIPT = """
import numpy as np, hlx
x = np.arange(8, dtype=np.float32) - 4
hlx.run(hlx.kernels.relu(x), backend="cpu", memo=True)
hlx.run(hlx.kernels.relu(x), backend="cpu", memo=True)
from hlx_core.hookspecs import hookimpl
from hlx_core.registry import register_plugin
from hlx_cpu.backend import CpuBackend, CpuSession
class BrokenSession(CpuSession):
    backend = "broken"
    def _execute(self, plan):
        raise ZeroDivisionError("deep inside the plugin")
class Broken(CpuBackend):
    name = "broken"
    deterministic_kernels = frozenset()
    def open(self, device=None):
        return BrokenSession(super().open(device).device)
class Plugin:
    @hookimpl
    def hlx_register_backends(self):
        return [Broken()]
register_plugin(Plugin(), name="broken")
try:
    hlx.run(hlx.kernels.relu(x), backend="broken")
except hlx.BackendError as exc:
    print(exc.code)
"""


def test_hlx_log_debug_says_what_happened(tmp_path):
    proc = _python("-c", SCRIPT, HLX_LOG="debug", HLX_HOME=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "E_PLUGIN"
    err = proc.stderr
    assert "hlx DEBUG hlx.runtime:" in err and "runs on backend cpu" in err  # the backend choice
    assert "memo hit for" in err  # the cache hit
    assert "Traceback" in err and "ZeroDivisionError: deep inside the plugin" in err  # behind the E_PLUGIN


def test_hlx_log_unset_prints_nothing(tmp_path):
    proc = _python("-c", SCRIPT, HLX_HOME=str(tmp_path), HLX_LOG="")
    assert proc.returncode == 0 and proc.stderr == ""


def test_a_bad_hlx_log_is_a_config_error(monkeypatch):
    from hlx_core import log
    monkeypatch.setenv("HLX_LOG", "loud")
    monkeypatch.setattr(log, "_configured", [])
    with pytest.raises(HLXError) as exc:
        log.setup()
    assert exc.value.code == "E_CONFIG" and "HLX_LOG" in exc.value.message
