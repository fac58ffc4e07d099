"""Fixtures for the wgpu backend tests: the GLSL test shaders compiled at test time and one session per
push-constant mode (opening a device costs a few hundred ms, so sessions live for the whole run)."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from wgpu_plans import SHADERS


@pytest.fixture(scope="session")
def wgpu_backend():
    from hlx_wgpu.plugin import WgpuBackend

    backend = WgpuBackend()
    if not backend.probe().available:
        pytest.skip(f"wgpu unavailable: {backend.probe().reason}")
    return backend


@pytest.fixture(scope="session")
def session(wgpu_backend):
    s = wgpu_backend.open()
    yield s
    s.close()


@pytest.fixture(scope="session")
def uniform_session(wgpu_backend):
    s = wgpu_backend.open(push_constants="uniform")
    yield s
    s.close()


@pytest.fixture(scope="session")
def spirv(tmp_path_factory) -> dict[str, bytes]:
    """Every tests/wgpu/shaders/*.comp compiled with glslangValidator, by stem."""
    if shutil.which("glslangValidator") is None:
        pytest.skip("glslangValidator is not installed (apt-get install glslang-tools)")
    out = tmp_path_factory.mktemp("spv")
    result = {}
    for comp in sorted(SHADERS.glob("*.comp")):
        target = out / f"{comp.stem}.spv"
        subprocess.run(["glslangValidator", "-V", "--target-env", "vulkan1.1", "-o", str(target), str(comp)],
                       check=True, capture_output=True)
        result[comp.stem] = target.read_bytes()
    return result
