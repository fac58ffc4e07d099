"""Errors, the pipeline cache on disk, a machine without Vulkan, and 1,000 create/run/destroy cycles."""
from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from hlx_core.errors import BackendError


def test_vkresult_mapping():
    from hlx_vulkan_raw.errors import VulkanError, result_error
    cases = {-2: ("E_DEVICE_OOM", "VK_ERROR_OUT_OF_DEVICE_MEMORY"), -4: ("E_VK_DEVICE_LOST", "VK_ERROR_DEVICE_LOST"),
             -3: ("E_VK_INIT", "VK_ERROR_INITIALIZATION_FAILED"), -9: ("E_VK_INIT", "VK_ERROR_INCOMPATIBLE_DRIVER"),
             2: ("E_VK_TIMEOUT", "VK_TIMEOUT"), -1000069000: ("E_LIMIT_EXCEEDED", "VK_ERROR_OUT_OF_POOL_MEMORY"),
             -13: ("E_VK_ERROR", "VK_ERROR_UNKNOWN")}
    for result, (code, name) in cases.items():
        err = result_error(result, "vkSomething")
        assert isinstance(err, VulkanError) and isinstance(err, BackendError)
        assert err.code == code and name in str(err) and "vkSomething" in str(err) and err.result == result


def _cache_files(home):
    return list((home / "vulkan" / "pipeline-cache").glob("*.bin"))


def test_pipeline_cache_persisted_and_bad_files_ignored(spirv, tmp_path, monkeypatch, caplog):
    from hlx_vulkan_raw import VulkanContext
    monkeypatch.setenv("HLX_HOME", str(tmp_path))

    def use():
        with VulkanContext() as c:
            k = c.kernel(spirv["add_u32"])
            b = c.buffer(256)
            b.upload(np.arange(64, dtype=np.uint32))
            k.launch([b, b, b], global_size=64, push_constants=struct.pack("<I", 64))
            assert np.array_equal(np.frombuffer(b.download(), np.uint32), 2 * np.arange(64, dtype=np.uint32))
            return c.pipeline_cache.loaded_bytes

    assert use() == 0
    files = _cache_files(tmp_path)
    assert len(files) == 1 and files[0].stat().st_size >= 32  # lavapipe stores just the header
    assert use() == files[0].stat().st_size  # the saved cache is loaded back
    good = files[0].read_bytes()
    foreign = good[:16] + bytes(16) + good[32:]  # another driver's pipelineCacheUUID
    for bad, why in ((b"garbage" * 3, "shorter"), (b"\xff" * 64, "header length"), (foreign, "pipelineCacheUUID")):
        files[0].write_bytes(bad)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hlx.vulkan"):
            assert use() == 0
        assert any("ignoring Vulkan pipeline cache" in r.message and why in r.message for r in caplog.records)


def test_no_driver_and_no_loader_are_reported_not_raised():
    code = ("import hlx, hlx_vulkan_raw; a = hlx_vulkan_raw.VulkanBackend().probe(); "
            "print(a.available, '|', a.reason)")
    env = {**os.environ, "VK_ICD_FILENAMES": "/nonexistent/icd.json", "VK_DRIVER_FILES": "/nonexistent/icd.json"}
    env.pop("HLX_VULKAN_VALIDATION", None)
    no_driver = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert no_driver.returncode == 0, no_driver.stderr
    assert no_driver.stdout.startswith("False |") and "driver" in no_driver.stdout
    no_loader = subprocess.run([sys.executable, "-c", "import sys; sys.modules['vulkan'] = None; " + code],
                               capture_output=True, text=True, timeout=60)
    assert no_loader.returncode == 0, no_loader.stderr
    assert no_loader.stdout.startswith("False |") and "loader" in no_loader.stdout
    opened = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['vulkan'] = None\nimport hlx_vulkan_raw\n"
         "try:\n hlx_vulkan_raw.VulkanBackend().open()\nexcept hlx_vulkan_raw.VulkanBackend and Exception as e:"
         "\n print(type(e).__name__, e.code)"], capture_output=True, text=True, timeout=60)
    assert opened.stdout.strip() == "BackendError E_BACKEND_UNAVAILABLE", opened.stderr


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_thousand_cycles_keep_memory_flat(spirv, rng):
    """950 buffer/kernel create-launch-download-free cycles in one context, plus 50 whole contexts."""
    from hlx_vulkan_raw import VulkanContext
    a = rng.integers(0, 2**20, 256, dtype=np.uint32)
    push = struct.pack("<I", a.size)

    def cycle(c):
        k = c.kernel(spirv["add_u32"])
        x, y = c.buffer(a.nbytes), c.buffer(a.nbytes)
        x.upload(a)
        k.launch([x, x, y], global_size=a.size, push_constants=push)
        assert np.frombuffer(y.download(), np.uint32)[7] == 2 * a[7]
        x.free()
        y.free()
        k.release()

    def contexts(n):
        for _ in range(n):
            with VulkanContext() as c:
                cycle(c)

    t0 = time.perf_counter()
    with VulkanContext() as c:
        for _ in range(100):  # warm-up: caches, pools and the allocator reach their steady state
            cycle(c)
        contexts(10)
        base = _rss()
        for _ in range(850):
            cycle(c)
        contexts(40)
        grown = _rss() - base
        assert c.get_memory_info()["used_bytes"] == 0
    assert grown < 8 << 20, f"resident memory grew by {grown / 2**20:.1f} MiB over 1,000 cycles"
    assert time.perf_counter() - t0 < 60
