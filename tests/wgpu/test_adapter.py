"""Adapter discovery and selection, the device's features and limits, and unavailability."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hlx_core.errors import BackendError, HLXError

from hlx_wgpu import adapter as adapters


def test_probe_lists_adapters_with_kind(wgpu_backend):
    availability = wgpu_backend.probe()
    assert availability.available and availability.version
    for dev in availability.devices:
        assert dev.kind in ("gpu-discrete", "gpu-integrated", "gpu-virtual", "cpu", "other")
        if "llvmpipe" in dev.name:  # Mesa's lavapipe runs on the CPU
            assert dev.kind == "cpu" and not dev.is_gpu


def test_device_gets_the_adapters_features_and_limits(session):
    st = session.core
    wanted = set(adapters.WANTED_FEATURES) & st.adapter.features
    assert wanted <= st.features
    for name in ("max-storage-buffer-binding-size", "max-buffer-size", "max-compute-workgroup-storage-size"):
        assert st.device.limits[name] == st.adapter.limits[name], name
    if "immediates" in st.features:
        assert st.device.limits["max-immediate-size"] == st.adapter.limits["max-immediate-size"] > 0


def test_select_by_index_name_and_environment(wgpu_backend, monkeypatch):
    first = adapters.adapters()[0]
    assert adapters.select(0) is first
    assert adapters.select(first.name[:6].upper()) in adapters.adapters()
    monkeypatch.setenv(adapters.ENV_ADAPTER, "0")
    assert adapters.select() is first
    monkeypatch.setenv(adapters.ENV_ADAPTER, "no-such-adapter")
    with pytest.raises(BackendError) as err:
        adapters.select()
    assert err.value.code == "E_DEVICE_UNKNOWN" and first.name in err.value.message
    with pytest.raises(BackendError) as err:
        adapters.select(len(adapters.adapters()))
    assert err.value.code == "E_DEVICE_UNKNOWN"
    with pytest.raises(HLXError) as err:
        adapters.select(None, "fastest")
    assert err.value.code == "E_CONFIG"


def test_unavailable_with_reason_when_no_adapter():
    """A process whose wgpu instance has no usable backend: probe says why, and HLX still imports."""
    code = ("import hlx; from hlx_wgpu.plugin import WgpuBackend; b = WgpuBackend(); a = b.probe(); "
            "print(a.available); print(a.reason)\n"
            "try:\n    b.open()\nexcept hlx.HLXError as e:\n    print(e.code)")
    env = dict(os.environ, **{adapters.ENV_BACKENDS: "DX12"})  # no D3D12 outside Windows
    if sys.platform == "win32":
        pytest.skip("D3D12 exists on Windows")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    lines = res.stdout.splitlines()
    assert res.returncode == 0, res.stderr
    assert lines[0] == "False" and "no adapter" in lines[1] and lines[2] == "E_BACKEND_UNAVAILABLE"


def test_power_preference_ranks_kinds_then_native_apis():
    """The ranking ``select`` applies when nothing names an adapter (the real adapter list here has one)."""
    def make(i, kind, api):
        return adapters.Adapter(i, None, f"a{i}", kind, api, frozenset(), {})
    found = [make(0, "cpu", "Vulkan"), make(1, "gpu-integrated", "OpenGL"), make(2, "gpu-integrated", "Vulkan"),
             make(3, "gpu-discrete", "OpenGL"), make(4, "gpu-discrete", "Vulkan"), make(5, "other", "Vulkan")]
    best = lambda pref, pool=found: min(pool, key=lambda a: adapters._rank(a, pref)).index  # noqa: E731
    assert best("high-performance") == 4 and best("low-power") == 2
    assert best("high-performance", [found[0], found[5]]) == 5  # other before CPU
    assert best("low-power", [found[1], found[3]]) == 1
