"""A new process's start and exit: what ``import hlx`` loads, entry points and versions read without
importlib.metadata, and the collection an exiting process skips."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib import metadata

import pytest

from hlx_core import distributions


def _child(code: str, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_entry_points_and_versions_are_importlib_metadatas():
    """Every group of every installed distribution, in the same order, and every version."""
    dists = list(metadata.distributions())
    groups = {ep.group for dist in dists for ep in dist.entry_points}
    assert {"hlx.backends", "console_scripts"} <= groups
    for group in sorted(groups):
        ours = [(ep.name, ep.value) for ep in distributions.entry_points(group)]
        assert ours == [(ep.name, ep.value) for ep in metadata.entry_points(group=group)], group
    for dist in dists:
        name = dist.metadata["Name"]
        assert distributions.version(name) == metadata.version(name), name
    assert distributions.version("no-such-distribution-anywhere") is None


def test_the_first_distribution_of_a_name_wins_and_loads(tmp_path, monkeypatch):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, version, target in ((first, "1.0", "json:dumps"), (second, "2.0", "json:loads")):
        info = folder / f"Demo_Dist-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: demo-dist\nVersion: {version}\n\nbody\n")
        (info / "entry_points.txt").write_text(f"# a comment\n[demo.group]\nthing = {target}\n[other]\nx = y\n")
    monkeypatch.setattr(sys, "path", [str(first), str(second), *sys.path])
    (ep,) = distributions.entry_points("demo.group")
    import json
    assert (ep.name, ep.load()) == ("thing", json.dumps)
    assert (ep.dist.name, ep.dist.version) == ("demo-dist", "1.0")
    assert distributions.version("demo.dist") == distributions.version("Demo_Dist") == "1.0"
    assert [(e.name, e.value) for e in distributions.entry_points("demo.group")] == \
        [(e.name, e.value) for e in metadata.entry_points(group="demo.group")]


def test_a_zip_on_the_path_is_left_to_importlib_metadata(tmp_path, monkeypatch):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("zipped-3.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 3.1\n")
        z.writestr("zipped-3.1.dist-info/entry_points.txt", "[zip.group]\nz = json:loads\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(archive)])
    assert [(ep.name, ep.value) for ep in distributions.entry_points("zip.group")] == [("z", "json:loads")]
    assert distributions.version("zipped") == "3.1"


def test_import_hlx_loads_only_what_a_first_run_needs(tmp_path):
    """Nothing of the email package, multiprocessing, tempfile, subprocess or sockets; no module of
    compare, compile, the scale layer or the Vulkan binding's Python layer; the lazy names still resolve."""
    code = ("import sys, hlx\n"
            "print(' '.join(sorted(sys.modules)))\n"
            "import hlx_core.compare, hlx_core.kernels.user, hlx_core.scale.executor, hlx_core.submit\n"
            "assert hlx.compare is hlx_core.compare.compare and hlx.Kernel is hlx_core.kernels.user.Kernel\n"
            "assert hlx.run_many is hlx_core.scale.executor.run_many and hlx.submit is hlx_core.submit.submit\n"
            "assert set(hlx.__all__) <= set(dir(hlx)) and hlx.__version__ not in ('', 'unknown')\n"
            "ns = {}\n"
            "exec('from hlx import *', ns)\n"
            "assert set(hlx.__all__) <= set(ns)\n"
            "try:\n"
            "    hlx.no_such_name\n"
            "except AttributeError:\n"
            "    pass\n"
            "else:\n"
            "    raise SystemExit('no AttributeError')\n")
    loaded = set(_child(code, HLX_HOME=str(tmp_path)).stdout.split())
    unwanted = {"importlib.metadata", "email", "multiprocessing", "tempfile", "subprocess", "socket", "platformdirs",
                "importlib.resources", "hlx_core.compare", "hlx_core.compile", "hlx_core.scale", "vulkan._vulkan"}
    assert not unwanted & loaded
    assert {"hlx_core.runtime", "hlx_core.kernels.helpers"} <= loaded


def test_a_vulkan_run_loads_no_binding_python_layer_nor_metadata(tmp_path):
    pytest.importorskip("vulkan")
    code = ("import sys, numpy as np, hlx\n"
            "if 'vulkan' in hlx.backends():\n"
            "    a = np.random.default_rng(5).standard_normal((8, 8)).astype(np.float32)\n"
            "    got = hlx.run(hlx.kernels.gemm(a, a), backend='vulkan', memo=False).arrays()[0]\n"
            "    assert np.allclose(got, a.astype(np.float64) @ a, rtol=1e-4, atol=1e-5)\n"
            "print(' '.join(sorted(sys.modules)))\n")
    loaded = set(_child(code, HLX_HOME=str(tmp_path)).stdout.split())
    assert not {"vulkan._vulkan", "importlib.metadata", "email", "multiprocessing", "socket"} & loaded


_CYCLE = ("import hlx\n"
          "class Noisy:\n"
          "    def __del__(self):\n"
          "        print('collected', flush=True)\n"
          "a = Noisy()\n"
          "a.me = a  # a reference cycle: only the garbage collector frees it\n"
          "del a\n"
          "import gc; gc.disable()\n")


def test_an_exiting_process_leaves_cyclic_garbage_to_the_system():
    """By default HLX's last exit hook freezes the collector; HLX_EXIT_GC=1 keeps Python's collection."""
    env = {k: v for k, v in os.environ.items() if k != "HLX_EXIT_GC"}
    frozen = subprocess.run([sys.executable, "-c", _CYCLE], env=env, capture_output=True, text=True, timeout=60)
    assert frozen.returncode == 0 and frozen.stdout == "", frozen.stderr
    collected = subprocess.run([sys.executable, "-c", _CYCLE], env={**env, "HLX_EXIT_GC": "1"},
                               capture_output=True, text=True, timeout=60)
    assert collected.returncode == 0 and collected.stdout == "collected\n", collected.stderr


def test_writes_go_through_in_a_multiprocessing_child_only():
    code = ("import multiprocessing as mp\n"
            "from hlx_core.cas.writer import writes_behind\n"
            "if __name__ == '__main__':\n"
            "    assert writes_behind()\n"
            "    with mp.get_context('spawn').Pool(1) as pool:\n"
            "        assert pool.apply(writes_behind) is False\n"
            "    print('ok')\n")
    assert _child(code).stdout == "ok\n"
    assert _child("import sys; from hlx_core.cas.writer import writes_behind; assert writes_behind(); "
                  "assert 'multiprocessing' not in sys.modules; print('ok')").stdout == "ok\n"
