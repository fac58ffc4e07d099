"""Fixtures of the Vulkan backend tests: validation on for the whole session (and zero warnings or errors
at the end), shaders compiled from tests/vulkan/shaders/ with glslangValidator, a shared handle-API context
and plan session (vkplan.py builds Plans directly)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SHADER_DIR = Path(__file__).parent / "shaders"


def _vulkan_ready() -> str | None:
    from hlx_vulkan_raw import VulkanBackend
    avail = VulkanBackend().probe()
    return None if avail.available else avail.reason


@pytest.fixture(scope="session", autouse=True)
def vulkan_session(tmp_path_factory):
    """Validation layers on for every context of the session; the session must end with no validation
    message of warning or error severity."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HLX_VULKAN_VALIDATION", "1")
    mp.setenv("HLX_HOME", str(tmp_path_factory.mktemp("hlx_home_vulkan")))  # before any context exists
    reason = _vulkan_ready()
    if reason:
        mp.undo()
        pytest.skip(f"Vulkan unavailable: {reason}")
    import hlx_vulkan_raw
    before = hlx_vulkan_raw.validation_counts()
    yield
    after = hlx_vulkan_raw.validation_counts()
    mp.undo()
    bad = {k: after[k] - before[k] for k in ("warning", "error") if after[k] != before[k]}
    assert not bad, (f"validation layers reported {bad} during the Vulkan tests (logger hlx.vulkan); latest: "
                     + "\n".join(hlx_vulkan_raw.validation_messages()))


@pytest.fixture(scope="session")
def spirv(tmp_path_factory) -> dict[str, bytes]:
    """SPIR-V of every tests/vulkan/shaders/*.comp, compiled now."""
    exe = shutil.which("glslangValidator")
    if exe is None:
        pytest.skip("glslangValidator not installed (glslang-tools)")
    out_dir = tmp_path_factory.mktemp("spv")
    result = {}
    for src in sorted(SHADER_DIR.glob("*.comp")):
        out = out_dir / (src.stem + ".spv")
        subprocess.run([exe, "-V", "--target-env", "vulkan1.1", "-o", str(out), str(src)], check=True,
                       capture_output=True)
        result[src.stem] = out.read_bytes()
    return result


@pytest.fixture(scope="module")
def ctx():
    from hlx_vulkan_raw import VulkanContext
    c = VulkanContext()
    yield c
    c.cleanup()


@pytest.fixture(scope="module")
def session():
    from hlx_vulkan_raw import VulkanSession
    s = VulkanSession()
    yield s
    s.close()
