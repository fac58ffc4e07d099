"""Pipeline statistics (VK_KHR_pipeline_executable_properties): the driver's register, spill and memory
counts of a plan's pipelines where the device reports them, a coded refusal where it does not, and the
cooperative-matrix GEMM candidates (benchmarks/variants/hgemm_*.spv, other tilings of the library's shader)
valid and reflected."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.errors import HLXError
from hlx_core.planner import plan as make_plan
from hlx_core.spirv.reflect import reflect_entry
from hlx_core.spirv.validate import validate_module

VARIANTS = Path(__file__).resolve().parents[2] / "benchmarks" / "variants"
CANDIDATES = sorted(VARIANTS.glob("hgemm_*.spv"))


def _gemm_plan(rng):
    a = rng.standard_normal((9, 7)).astype(np.float32)
    b = rng.standard_normal((7, 5)).astype(np.float32)
    return make_plan(K.gemm(a, b)), a, b


def test_statistics_or_a_coded_refusal(session, rng):
    p, a, b = _gemm_plan(rng)
    if not session.core.pipeline_statistics_supported:
        with pytest.raises(HLXError) as err:
            session.pipeline_statistics(p)
        assert err.value.code == "E_UNSUPPORTED"
        assert "VK_KHR_pipeline_executable_properties" in str(err.value)
    else:
        stats = session.pipeline_statistics(p)
        assert list(stats) == [f"0:{p.stages[0].kernel_name}"]
        (one,) = stats.values()
        assert one and all(isinstance(k, str) and isinstance(v, (int, float, bool)) for k, v in one.items())
    # Asking for statistics leaves the run's own pipeline alone.
    got = session.execute(p).arrays[0]
    np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-5, atol=1e-6)


def test_the_feature_is_enabled_exactly_where_offered(session):
    core = session.core
    offered = "VK_KHR_pipeline_executable_properties" in core.phys.extensions
    assert ("VK_KHR_pipeline_executable_properties" in core.extensions) == offered
    assert core.pipeline_statistics_supported == bool(offered and core.phys.features["pipelineExecutableInfo"])


def test_the_feature_struct_is_chained_when_the_extension_is_listed():
    from hlx_vulkan_raw.devices import feature_chain
    from hlx_vulkan_raw.loader import make_version
    _head, parts = feature_chain(make_version(1, 3), frozenset({"VK_KHR_pipeline_executable_properties"}))
    by_type = dict(parts)
    assert hasattr(by_type["VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR"], "pipelineExecutableInfo")
    _head, parts = feature_chain(make_version(1, 3), frozenset())
    assert "VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR" not in dict(parts)


@pytest.mark.parametrize("fmt, field, value", [
    ("BOOL32", "b32", True), ("INT64", "i64", -3), ("UINT64", "u64", 2**40 + 7), ("FLOAT64", "f64", 0.375)])
def test_statistic_values_take_their_format(fmt, field, value):
    from hlx_vulkan_raw.loader import ffi, vk
    from hlx_vulkan_raw.pipelines import statistic_value
    stat = ffi.new("VkPipelineExecutableStatisticKHR*")
    stat.format = getattr(vk, f"VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_{fmt}_KHR")
    setattr(stat.value, field, value)
    got = statistic_value(stat)
    assert got == value and type(got) is type(value)


def test_an_unknown_statistic_format_is_coded():
    from hlx_vulkan_raw.loader import ffi
    from hlx_vulkan_raw.pipelines import statistic_value
    stat = ffi.new("VkPipelineExecutableStatisticKHR*")
    stat.format = 99
    with pytest.raises(HLXError) as err:
        statistic_value(stat)
    assert err.value.code == "E_BACKEND_INTERNAL"


def test_description_picks_registers_spills_and_memory():
    from hlx_vulkan_raw.pipelines import describe_statistics
    stats = {"Instruction Count": 812, "Register Count": 168, "Spilled VGPRs": 0, "Shared Memory Size": 29184,
             "Binary Size": 9000}
    assert describe_statistics(stats) == "Register Count=168, Spilled VGPRs=0, Shared Memory Size=29184"
    assert describe_statistics({"Instruction Count": 3}) == "Instruction Count=3"
    assert describe_statistics({}) == "none reported"


def test_coopmat_candidates_are_built():
    stems = {p.stem for p in CANDIDATES}
    assert len(stems) >= 6 and all(s.replace("_f16", "_bf16") in stems for s in stems if s.endswith("_f16"))


@pytest.mark.parametrize("spv", CANDIDATES, ids=lambda p: p.stem)
def test_coopmat_candidates_validate_and_reflect(spv):
    data = spv.read_bytes()
    validate_module(data)
    info = reflect_entry(data, "main")
    hlx.shader_contract(data)  # the 900 a benchmark stage binds
    workgroup = re.match(r"hgemm_(\d+)x(\d+)_k(\d+)_wg(\d+)_", spv.stem)
    if workgroup:  # workgroup-scope matrices (VK_NV_cooperative_matrix2): the tile is the accumulator
        bm, bn, bk, wg = (int(x) for x in workgroup.groups())
        assert info.local_size == (wg, 1, 1)
        assert {(m.scope, m.use, m.rows, m.cols) for m in info.cooperative_matrices} >= {
            ("workgroup", "a", bm, bk), ("workgroup", "b", bk, bn), ("workgroup", "accumulator", bm, bn)}
    else:
        bm, bn, _bk, wm, wn = (int(x) for x in re.match(r"hgemm_(\d+)x(\d+)_k(\d+)_w(\d+)x(\d+)_",
                                                        spv.stem).groups())
        assert info.local_size == ((bm // wm) * (bn // wn) * 32, 1, 1)
    assert [b.binding for b in info.bindings] == [0, 1, 2] and info.push_constant_size == 12
    want = "bfloat16" if spv.stem.endswith("_bf16") else "float16"
    assert {m.component for m in info.cooperative_matrices} == {want, "float32"}


@pytest.mark.parametrize("spv", sorted(VARIANTS.glob("coopmat2_ceiling_*.spv")), ids=lambda p: p.stem)
def test_workgroup_scope_loops_validate_and_reflect(spv):
    """bench_gemm_half.py's workgroup-scope ceiling loops: WG invocations, source and output, iters."""
    data = spv.read_bytes()
    validate_module(data)
    info = reflect_entry(data, "main")
    hlx.shader_contract(data)
    wg = int(re.search(r"_wg(\d+)$", spv.stem).group(1))
    assert info.local_size == (wg, 1, 1) and [b.binding for b in info.bindings] == [0, 1]
    assert {m.scope for m in info.cooperative_matrices} == {"workgroup"}


@pytest.mark.parametrize("spv", sorted([*VARIANTS.glob("coopmat_ceiling_*.spv"), *VARIANTS.glob("coopmat_inner*.spv")]),
                         ids=lambda p: p.stem)
def test_multiply_add_loops_validate_and_reflect(spv):
    """bench_gemm_half.py's ceiling and inner-loop shaders: 8 subgroups, source and output, iters."""
    data = spv.read_bytes()
    validate_module(data)
    info = reflect_entry(data, "main")
    hlx.shader_contract(data)
    assert info.local_size == (256, 1, 1) and [b.binding for b in info.bindings] == [0, 1]
    assert info.push_constant_size == 4
    want = "bfloat16" if "_bf16" in spv.stem else "float16"
    assert {m.component for m in info.cooperative_matrices} == {want, "float32"}
