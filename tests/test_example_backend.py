"""The third-party example backend, installed as its own distribution, found through its entry point and
held to the conformance kit."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hlx-backend-example"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The example installed with pip into a folder of its own (built from a copy: the source stays clean)."""
    work = tmp_path_factory.mktemp("example")
    source = work / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HLX_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    return {**env, **extra}


def test_found_through_its_entry_point(site):
    code = ("import hlx, json\n"
            "info = [i for i in hlx.backend_info() if i['name'] == 'example']\n"
            "print(json.dumps(info))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(site), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    (info,) = json.loads(proc.stdout)
    assert info["available"] and info["distribution"] == "hlx-backend-example" and info["plugin"] == "example"
    assert info["devices"][0]["kind"] == "cpu"
    cli = subprocess.run([sys.executable, "-m", "hlx_core.cli", "plugins"],
                         env=_env(site, HLX_PLUGINS="cpu,example"), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    line = next(line for line in cli.stdout.splitlines() if "example" in line)
    assert "hlx-backend-example" in line and "available" in line


def test_passes_the_conformance_kit(site, tmp_path):
    """``hlx conformance example`` as its author runs it: from a folder of their own, no checkout of HLX."""
    proc = subprocess.run([sys.executable, "-m", "hlx_core.cli", "conformance", "example"],
                          cwd=tmp_path, env=_env(site, HLX_PLUGINS="cpu,example"),
                          capture_output=True, text=True, timeout=600)
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in tail and " failed" not in tail and " skipped" not in tail
