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
    cases = {-2: ("E_DEVICE_OOM", "VK_ERROR_OUT_OF_DEVICE_MEMORY"), -4: ("E_DEVICE_LOST", "VK_ERROR_DEVICE_LOST"),
             -3: ("E_VK_INIT", "VK_ERROR_INITIALIZATION_FAILED"), -9: ("E_VK_INIT", "VK_ERROR_INCOMPATIBLE_DRIVER"),
             2: ("E_TIMEOUT", "VK_TIMEOUT"), -1000069000: ("E_LIMIT_EXCEEDED", "VK_ERROR_OUT_OF_POOL_MEMORY"),
             -1000161000: ("E_DEVICE_OOM", "VK_ERROR_FRAGMENTATION"), -1: ("E_HOST_OOM", "VK_ERROR_OUT_OF_HOST_MEMORY"),
             -1000011001: ("E_VK_VALIDATION", "VK_ERROR_VALIDATION_FAILED_EXT"),
             -13: ("E_VK_ERROR", "VK_ERROR_UNKNOWN"), -987654: ("E_VK_ERROR", "VkResult(-987654)")}
    for result, (code, name) in cases.items():
        err = result_error(result, "vkSomething")
        assert isinstance(err, VulkanError) and isinstance(err, BackendError)
        assert err.code == code and name in str(err) and "vkSomething" in str(err) and err.result == result


def test_every_vkresult_of_the_binding_is_mapped():
    """Every non-success VkResult the binding knows gets an E_ code and its own Vulkan name in the message."""
    from hlx_vulkan_raw.errors import result_error
    from hlx_vulkan_raw.loader import ffi
    names = {v: k for v, k in ffi.typeof("VkResult").elements.items() if k not in ("VK_SUCCESS", "VK_RESULT_MAX_ENUM")}
    assert len(names) > 40
    for value, name in names.items():
        err = result_error(value, "vkCall")
        assert err.code.startswith("E_") and f"failed: {name}" in err.message, (value, err)
    specific = {name for value, name in names.items() if result_error(value, "x").code != "E_VK_ERROR"}
    assert {"VK_ERROR_OUT_OF_DEVICE_MEMORY", "VK_ERROR_DEVICE_LOST", "VK_ERROR_INITIALIZATION_FAILED",
            "VK_TIMEOUT", "VK_ERROR_FRAGMENTATION", "VK_ERROR_FORMAT_NOT_SUPPORTED"} <= specific


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
            return c.core.pipeline_cache.loaded_bytes

    assert use() == 0
    files = _cache_files(tmp_path)
    assert len(files) == 1 and files[0].stat().st_size >= 32  # lavapipe stores just the header
    assert use() == files[0].stat().st_size  # the saved cache is loaded back
    good = files[0].read_bytes()
    foreign = good[:16] + bytes(16) + good[32:]  # another driver's pipelineCacheUUID
    other_gpu = good[:8] + struct.pack("<I", 0x10DE) + good[12:]  # written for another vendor
    version_two = good[:4] + struct.pack("<I", 2) + good[8:]
    truncated = struct.pack("<I", len(good) + 100) + good[4:]  # header claims more bytes than the file has
    for bad, why in ((b"garbage" * 3, "shorter"), (b"\xff" * 64, "header length"), (foreign, "pipelineCacheUUID"),
                     (other_gpu, "vendor/device 0x10de"), (version_two, "header version 2"),
                     (truncated, "header length")):
        files[0].write_bytes(bad)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="hlx.vulkan"):
            assert use() == 0
        assert any("ignoring Vulkan pipeline cache" in r.message and why in r.message for r in caplog.records), why
    # A valid header followed by garbage reaches the driver, which may keep or drop it: never a crash.
    files[0].write_bytes(good[:32] + bytes(range(256)) * 4)
    use()
    files[0].unlink()
    files[0].mkdir()  # unreadable as a file: ignored with a warning, and the save goes nowhere
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hlx.vulkan"):
        assert use() == 0
    assert any("ignoring Vulkan pipeline cache" in r.message for r in caplog.records)
    assert any("could not save Vulkan pipeline cache" in r.message for r in caplog.records)
    assert [f.name for f in files[0].parent.iterdir()] == [files[0].name]  # no temp file left behind


def test_a_new_process_starts_from_the_saved_pipeline_cache(tmp_path):
    """hlx.run in a fresh process loads the cache the previous one saved under HLX_HOME, and leaves the file
    alone when its pipelines added nothing."""
    code = ("import numpy as np, hlx\n"
            "from hlx_core import runtime\n"
            "a = np.arange(64, dtype=np.float32).reshape(8, 8)\n"
            "assert np.array_equal(hlx.run(hlx.kernels.gemm(a, a), backend='vulkan').arrays()[0], a @ a)\n"
            "(slot,) = {id(s): s for s in runtime._sessions.values()}.values()\n"
            "print(slot.session.core.pipeline_cache.loaded_bytes)\n")
    env = {**os.environ, "HLX_HOME": str(tmp_path)}

    def new_process() -> int:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout)

    assert new_process() == 0
    (file,) = _cache_files(tmp_path)
    saved = file.stat()
    assert saved.st_size >= 32
    assert new_process() == saved.st_size
    again = file.stat()
    assert (again.st_ino, again.st_mtime_ns) == (saved.st_ino, saved.st_mtime_ns)  # nothing new: not rewritten


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

    def objects(c) -> dict[str, int]:
        """What the context holds on the Vulkan side: none of it may grow with the cycles."""
        core = c.core
        return {"blocks": len(core.allocator.blocks), "used": core.allocator.stats()["used_bytes"],
                "pools": len(core.pipelines.pools), "free_sets": sum(left for _, left in core.pipelines.pools),
                "pipelines": len(core.pipelines.pipelines), "modules": len(core.shaders.modules),
                "command_buffers": len(core.submitter.free_cbs), "fences": len(core.submitter.free_fences),
                "pending": len(core.submitter.pending), "api_buffers": c.get_memory_info()["buffers"]}

    t0 = time.perf_counter()
    with VulkanContext() as c:
        for _ in range(100):  # warm-up: caches, pools and the allocator reach their steady state
            cycle(c)
        contexts(10)
        held = objects(c)
        base = _rss()
        for _ in range(850):
            cycle(c)
        contexts(40)
        grown = _rss() - base
        assert objects(c) == held, (held, objects(c))
        assert held["used"] == 0 and held["api_buffers"] == 0 and held["pending"] == 0
    print(f"resident memory grew by {grown / 2**20:.2f} MiB over 1,000 cycles")
    # ~0.7 MiB when run alone, most of it the validation layer's per-device records; the margin absorbs the
    # allocator noise of a full suite run. The object counts above are the exact check.
    assert grown < 8 << 20, f"resident memory grew by {grown / 2**20:.1f} MiB over 1,000 cycles"
    assert time.perf_counter() - t0 < 60


def _run_script(code: str, spirv_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HLX_VULKAN_VALIDATION": "1", "SPV": str(spirv_path)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


_HAZARD = """
import logging, json
seen = []
class Keep(logging.Handler):
    def emit(self, record):
        seen.append((record.levelname, record.getMessage()))
logging.getLogger("hlx.vulkan").addHandler(Keep())
import hlx_vulkan_raw
from hlx_vulkan_raw.commands import Recorder
with hlx_vulkan_raw.VulkanContext() as c:
    a, b = c.buffer(256), c.buffer(256)
    sub, src, dst = c.core.submitter, a.device_buffer().handle, b.device_buffer().handle
    rec = Recorder(sub.command_buffer(), one_time=True)
    rec.copy(src, 0, dst, 0, 256)
    rec.copy(src, 0, dst, 0, 256)  # no barrier between two writes of b
    cb = rec.end()
    sub.wait(sub.submit([cb], recycle=[cb]))
    a.free(); b.free()
print(json.dumps({"counts": hlx_vulkan_raw.validation_counts(), "seen": seen}))
"""


def test_validation_messages_are_logged_and_counted_with_sync_validation(tmp_path):
    """A deliberate hazard (two unsynchronised copies into one buffer), in a child process so this session's
    counts stay clean: the debug messenger logs it as an ERROR on hlx.vulkan and counts it."""
    import json
    proc = _run_script(_HAZARD, tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["counts"]["error"] >= 1
    assert any(level == "ERROR" and "SYNC-HAZARD-WRITE-AFTER-WRITE" in msg for level, msg in out["seen"])


_LEFT_OPEN = """
import atexit, json, os, struct, sys
import numpy as np
def report():  # registered before the plugin's exit hook, so it runs after it
    import hlx_vulkan_raw
    print(json.dumps(hlx_vulkan_raw.validation_counts()), flush=True)
atexit.register(report)
import hlx_vulkan_raw
spv = open(os.environ["SPV"], "rb").read()
keep = []
for _ in range(2):
    c = hlx_vulkan_raw.VulkanContext()
    k = c.kernel(spv)
    x, y = c.buffer(256), c.buffer(256)
    x.upload(np.arange(64, dtype=np.uint32))
    k.launch([x, x, y], global_size=64, push_constants=struct.pack("<I", 64))  # still in flight at exit
    keep.append((c, k, x, y))
session = hlx_vulkan_raw.VulkanBackend().open(0)
keep.append(session)  # never closed
"""


def test_objects_left_open_are_destroyed_at_exit(tmp_path, spirv):
    """Contexts, kernels, buffers, in-flight launches and a session never cleaned up: the exit hook destroys
    them before the instance, and the validation layer (which reports every object still alive when its
    device or instance is destroyed) has nothing to say."""
    import json
    spv = tmp_path / "add.spv"
    spv.write_bytes(spirv["add_u32"])
    proc = _run_script(_LEFT_OPEN, spv)
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["warning"] == 0 and counts["error"] == 0, proc.stderr
