"""The plugin system: entry points, HLX_PLUGINS, failure isolation, programmatic registration."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from plugin_fakes import FakeBackend, FakePlugin, plugins, write_distribution  # noqa: F401 (fixture)

import hlx
from hlx_core import registry
from hlx_core.hookspecs import hookimpl
from hlx_core.kernels.spec import KernelRegistry, KernelSpec

BROKEN_DIST = "hlx-broken-demo"

# Four plugins of one distribution: one raises on import, one whose hook raises, one returning a non-Backend,
# and a good one that also adds a kernel and counts its hook calls.
MODULES = {
    "hlxt_broken": 'raise RuntimeError("boom at import")\n',
    "hlxt_raising": """
        from hlx_core.hookspecs import hookimpl

        @hookimpl
        def hlx_register_backends():
            raise ValueError("hook exploded")
    """,
    "hlxt_wrongtype": """
        from hlx_core.hookspecs import hookimpl

        @hookimpl
        def hlx_register_backends():
            return [42]
    """,
    "hlxt_good": """
        import time
        import numpy as np
        from hlx_core.backend import Availability, Backend, DeviceInfo
        from hlx_core.kernels.spec import KernelSpec
        from hlx_core.hookspecs import hookimpl

        CALLS = []

        class Good(Backend):
            name = "good"
            def probe(self):
                return Availability(True, devices=(DeviceInfo(0, "good device", "cpu"),), version="9.9")
            def open(self, device=None):
                raise RuntimeError("good opens nothing")

        @hookimpl
        def hlx_register_backends():
            CALLS.append(1)
            time.sleep(0.05)  # widen the window for concurrent loaders
            return [Good()]

        @hookimpl
        def hlx_register_kernels(registry):
            registry.register(KernelSpec(name="hlxt_negate", reference=lambda i, p, o: [-i[0]]))
    """,
}
ENTRY_POINTS = {"broken": "hlxt_broken", "raising": "hlxt_raising", "wrongtype": "hlxt_wrongtype",
                "good": "hlxt_good"}


@pytest.fixture
def dist_dir(tmp_path, monkeypatch):
    write_distribution(tmp_path, BROKEN_DIST, MODULES, ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in MODULES:
        sys.modules.pop(module, None)
    yield tmp_path
    for module in MODULES:
        sys.modules.pop(module, None)


@pytest.fixture
def kernel_registry(monkeypatch):
    """A fresh kernel registry for this test, so kernels registered here do not leak into other tests."""
    monkeypatch.setattr(registry, "_kernels", KernelRegistry())
    return registry.kernel_registry


def _info(name: str) -> dict:
    (found,) = [i for i in hlx.backend_info() if i["name"] == name]
    return found


def test_builtin_backends_come_from_entry_points(plugins):
    plugins(None)
    for name in ("cpu", "vulkan", "wgpu"):  # found through the entry point (listed even if it failed)
        info = _info(name)
        assert info["distribution"] == "hlx" and info["plugin"] == name
    cpu = _info("cpu")
    assert cpu["available"] and cpu["devices"] and cpu["version"] and cpu["reason"] is None
    assert "cpu" in hlx.backends()


def test_failing_plugins_are_reported_and_isolated(plugins, dist_dir, kernel_registry):
    plugins("broken,raising,wrongtype,good,cpu,nosuch")
    assert set(hlx.backends()) == {"good", "cpu"}
    good = _info("good")
    assert good["distribution"] == BROKEN_DIST and good["version"] == "9.9"
    assert good["devices"][0]["name"] == "good device"
    failed = {i["name"]: i for i in hlx.backend_info() if "error" in i}
    assert set(failed) == {"broken", "raising", "wrongtype", "nosuch"}
    assert failed["broken"]["stage"] == "import" and "boom at import" in failed["broken"]["error"]
    assert failed["broken"]["distribution"] == BROKEN_DIST and not failed["broken"]["available"]
    assert failed["raising"]["stage"] == "backends" and "hook exploded" in failed["raising"]["error"]
    assert "not an hlx_core.backend.Backend" in failed["wrongtype"]["error"]
    assert "HLX_PLUGINS" in failed["nosuch"]["error"]
    with pytest.raises(hlx.BackendError) as err:
        hlx.run({}, backend="broken")
    assert err.value.code == "E_BACKEND_UNAVAILABLE" and "boom at import" in err.value.message
    # The good plugin's kernel hook ran too.
    assert "hlxt_negate" in registry.kernel_registry()


def test_entry_points_load_once_even_from_many_threads(plugins, dist_dir, kernel_registry):
    plugins("good")
    barrier = threading.Barrier(6)
    seen: list[set[str]] = []

    def ask() -> None:
        barrier.wait()
        seen.append(set(registry.backend_entries()))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [{"good"}] * 6
    assert len(sys.modules["hlxt_good"].CALLS) == 1
    registry.backend_entries()
    assert len(sys.modules["hlxt_good"].CALLS) == 1


def test_allowlist(plugins):
    plugins("cpu")
    assert set(registry.backend_entries()) == {"cpu"} and hlx.backends() == ["cpu"]
    plugins("")
    assert registry.backend_entries() == {} and hlx.backends() == [] and hlx.backend_info() == []
    with pytest.raises(hlx.BackendError) as err:
        hlx.run({}, backend="auto")
    assert err.value.code == "E_BACKEND_UNAVAILABLE" and "HLX_PLUGINS" in err.value.message
    plugins(" cpu , ")  # spaces and empty items are ignored
    assert set(registry.backend_entries()) == {"cpu"}


def test_register_plugin_in_code(plugins):
    fake = FakeBackend("fakegpu")
    assert registry.register_plugin(FakePlugin(fake), name="mine", distribution="my-dist") == ["fakegpu"]
    info = _info("fakegpu")
    assert info["available"] and info["distribution"] == "my-dist" and info["plugin"] == "mine"
    assert info["devices"] == [{"index": 0, "name": "Fake GPU", "kind": "gpu-discrete", "is_gpu": True}]
    hlx.backend_info()
    hlx.backends()
    assert fake.probes == 1  # probed once, remembered
    with pytest.raises(hlx.BackendError) as err:  # a second backend under a taken name is refused
        registry.register_plugin(FakePlugin(FakeBackend("fakegpu")), name="other")
    assert err.value.code == "E_PLUGIN" and "already provided by plugin 'mine'" in err.value.message
    assert registry.failures() == [] and set(registry.backend_entries()) == {"fakegpu"}
    registry.unregister_plugin("mine")
    assert registry.backend_entries() == {}


def test_probe_that_raises_means_unavailable(plugins):
    class Flaky(FakeBackend):
        def probe(self):
            raise OSError("driver went away")

    registry.register_plugin(FakePlugin(Flaky("flaky")))
    info = _info("flaky")
    assert not info["available"] and "OSError: driver went away" in info["reason"]
    assert hlx.backends() == []


def test_kernel_hook_registers_once(plugins, kernel_registry):
    spec = KernelSpec(name="hlxt_identity", reference=lambda i, p, o: [i[0]])

    class Kernels:
        calls = 0

        @hookimpl
        def hlx_register_kernels(self, registry):
            Kernels.calls += 1
            registry.register(spec)

    plugin = Kernels()
    registry.register_plugin(plugin, name="kernels")
    assert registry.kernel_registry().get("hlxt_identity") is spec and Kernels.calls == 1
    plugins("")  # a reset re-registers the plugin's backends but not its kernels
    registry.register_plugin(plugin, name="kernels")
    assert Kernels.calls == 1


def test_import_hlx_is_lazy_and_survives_broken_plugins(dist_dir):
    code = ("import sys, hlx\n"
            "assert 'hlx_cpu.plugin' not in sys.modules and 'hlxt_broken' not in sys.modules\n"
            "print(sorted(hlx.backends()))\n"
            "print(sorted(i['name'] for i in hlx.backend_info() if 'error' in i))\n")
    env = dict(os.environ, PYTHONPATH=str(dist_dir), HLX_PLUGINS="broken,cpu")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["['cpu']", "['broken']"]


def test_an_entry_point_name_taken_by_another_distribution_is_reported(plugins, tmp_path, monkeypatch):
    """The first distribution on sys.path that declares a name keeps it; a later one is reported, not loaded."""
    write_distribution(tmp_path, "hlx-impostor", {"hlxt_impostor": "raise RuntimeError('must not load')\n"},
                       {"cpu": "hlxt_impostor"})
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    plugins("cpu")
    assert hlx.backends() == ["cpu"]
    (failure,) = registry.failures()
    assert failure.name == "cpu" and "already provided by distribution" in failure.error
    assert (failure.distribution, registry.backend_entries()["cpu"].distribution) == ("hlx-impostor", "hlx")
    assert "hlxt_impostor" not in sys.modules


def test_the_distribution_ships_every_package_and_builtin_plugin() -> None:
    """pyproject.toml lists packages by hand: a new subpackage missing there would be absent from a wheel."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    dirs = {"hlx_cpu": "plugins/hlx_cpu", "hlx_vulkan_raw": "plugins/hlx_vulkan_raw", "hlx_wgpu": "plugins/hlx_wgpu",
            "hlx_shaders": "shaders"}
    assert config["tool"]["setuptools"]["package-dir"] == dirs
    found = {".".join(p.parent.relative_to(root).parts) for top in ("hlx", "hlx_core")
             for p in (root / top).rglob("__init__.py")}
    found |= {name for name, folder in dirs.items() if (root / folder / "__init__.py").is_file()}
    assert listed == found
    entry_points = config["project"]["entry-points"]["hlx.backends"]
    assert entry_points == {"cpu": "hlx_cpu.plugin", "vulkan": "hlx_vulkan_raw.plugin", "wgpu": "hlx_wgpu.plugin"}
    assert config["project"]["requires-python"] == ">=3.10"
    assert {"test", "bench"} <= set(config["project"]["optional-dependencies"])
