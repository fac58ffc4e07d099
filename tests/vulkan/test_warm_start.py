"""What a warm start skips on Vulkan, and what it must not: the pipeline cache is saved exactly when a
pipeline was built that the cache did not hold; host-memory import only where the readback path uses it."""
from __future__ import annotations

import struct

import numpy as np
import pytest


def _cache_files(home):
    return list((home / "vulkan" / "pipeline-cache").glob("*.bin"))


def _build(spirv, names, hits, monkeypatch):
    """Build the pipelines of ``names`` (the first an add of uint32) in a fresh context, the driver's
    feedback replaced by ``hits`` (one per build), run the first (checked against NumPy), close; returns the
    cache hits counted, the calls of vkGetPipelineCacheData and what the driver's feedback said."""
    from hlx_vulkan_raw import VulkanContext, pipelines
    answers = iter(hits)
    seen = []
    real = pipelines._cache_hit

    def feedback(flags: int) -> bool:
        seen.append(real(flags))  # what the driver said, for the record
        return next(answers)

    monkeypatch.setattr(pipelines, "_cache_hit", feedback)
    reads = []
    with VulkanContext() as c:
        assert c.core.pipelines.feedback  # lavapipe is Vulkan 1.3: creation feedback is core
        monkeypatch.setattr(pipelines, "lib", _Counting(pipelines.lib, reads))
        c.core.pipelines.get_many([(spirv[n], "main", None, ()) for n in names])
        x = np.random.default_rng(3).integers(0, 1 << 20, 64, dtype=np.uint32)
        b = c.buffer(256)
        b.upload(x)
        c.kernel(spirv[names[0]]).launch([b, b, b], global_size=64, push_constants=struct.pack("<I", 64))
        assert np.array_equal(np.frombuffer(b.download(), np.uint32), 2 * x)
        hits_counted = c.core.pipelines.cache_hits
    return hits_counted, len(reads), seen


class _Counting:
    """``lib`` with its vkGetPipelineCacheData calls counted."""

    def __init__(self, lib, calls):
        self._lib, self._calls = lib, calls

    def __getattr__(self, name):
        fn = getattr(self._lib, name)
        if name != "vkGetPipelineCacheData":
            return fn
        return lambda *args: self._calls.append(1) or fn(*args)


def test_a_process_whose_pipelines_all_came_from_the_cache_saves_nothing(spirv, tmp_path, monkeypatch):
    monkeypatch.setenv("HLX_HOME", str(tmp_path))
    hits, reads, driver_said = _build(spirv, ["add_u32", "saxpy"], [True, True], monkeypatch)
    assert (hits, reads) == (2, 0)  # the driver's data is not even read back
    assert _cache_files(tmp_path) == []
    assert driver_said == [False, False]  # lavapipe keeps nothing in a VkPipelineCache


def test_a_pipeline_the_cache_did_not_hold_is_saved(spirv, tmp_path, monkeypatch):
    """Fails if the save were skipped: one build of two missed the cache, so the file must appear."""
    monkeypatch.setenv("HLX_HOME", str(tmp_path))
    hits, reads, _ = _build(spirv, ["add_u32", "saxpy"], [True, False], monkeypatch)
    assert hits == 1 and reads == 2  # size, then data
    (file,) = _cache_files(tmp_path)
    assert file.stat().st_size >= 32


def test_host_memory_import_only_for_the_readback_path(monkeypatch):
    from hlx_vulkan_raw.core import HOST_IMPORT_EXTENSION, DeviceCore
    core = DeviceCore()
    try:
        if HOST_IMPORT_EXTENSION not in core.phys.extensions:
            pytest.skip(f"{core.phys.name} has no {HOST_IMPORT_EXTENSION}")
        assert core.zero_copy and core.host_import is None  # lavapipe reads outputs in place
    finally:
        core.close()
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    core = DeviceCore()
    try:
        assert not core.zero_copy and core.host_import is not None and core.host_import.alignment >= 4096
    finally:
        core.close()


def test_the_binding_shares_the_declarations_the_backend_loaded():
    """The backend never imports the binding's Python layer; importing it later reuses the same ffi, and
    its enum values are the C headers' (the layer's VK_ERROR_OUT_OF_POOL_MEMORY has the wrong sign)."""
    from hlx_vulkan_raw.loader import ffi, vk
    assert vk.VK_ERROR_OUT_OF_POOL_MEMORY == -1000069000 == ffi.typeof("VkResult").relements[
        "VK_ERROR_OUT_OF_POOL_MEMORY"]
    import vulkan
    assert vulkan.ffi is ffi
