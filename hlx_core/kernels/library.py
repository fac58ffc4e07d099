"""The built-in kernels: one ``KernelSpec`` each, with its builder (docs/KERNELS.md describes them in full).

The library is a plugin like any other: its ``hlx_register_kernels`` hook puts ``LIBRARY`` into the kernel
registry, and ``hlx_core.registry`` registers this module before any entry point loads.
"""
from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from hlx_core.errors import ContractError
from hlx_core.hookspecs import hookimpl
from hlx_core.kernels import references as ref
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.build import (
    MAX_GROUPS,
    MAX_U32,
    Operand,
    body,
    check_dtype,
    check_ndim,
    check_same,
    dtype_name,
    grid_stride,
    groups,
    tiles,
    u32,
)
from hlx_core.kernels.shaders import record_library
from hlx_core.kernels.spec import KernelSpec
from hlx_core.kernels.variants import Variant

if TYPE_CHECKING:
    from hlx_core.kernels.spec import KernelRegistry

WORD_DTYPES = ("float32", "int32", "uint32")  # the 4-byte dtypes: shaders on raw 32-bit words carry them
GEMM128_MIN_GROUPS = 96  # 128x128 tiles of C at which gemm switches to the gemm128 shader
SKINNY_MAX_ROWS = 128  # products of more rows never run the gemm_skinny shader
SKINNY_ALWAYS_ROWS = 32  # ... and of at most this many always do
SKINNY_GEMM_GROUPS = 16  # between the two, gemm_skinny runs where gemm's 64x64 grid has fewer workgroups
SKINNY_BLOCK = 16  # the square block of C a gemm_skinny workgroup computes (shaders/gemm_skinny.comp)
STREAM_PER = 4  # uvec4 groups a thread of the element-wise shaders moves per step (shaders/stream.glsl)
TRANSPOSE_TILE = 32  # the square tile a transpose workgroup moves through shared memory
CONV_CHANNELS, CONV_PIXELS = 64, 128  # the block of conv2d's output a workgroup computes (shaders/conv2d.comp)


def _word_kind(op: Operand) -> int:
    """The shader's ``kind`` push constant: 0 adds/multiplies float32 words, 1 integer words."""
    return 0 if op.dtype.kind == "f" else 1


def _stream_grid(n: int) -> list[int]:
    """The dispatch of add, mul, saxpy and relu: a workgroup per 256 * STREAM_PER whole uvec4 groups of
    the n words, grid-stride beyond 65535 workgroups (the n % 4 last words ride on the first ones)."""
    return grid_stride(n // 4, 256 * STREAM_PER)


def _build_binary(base: int, a: Operand, b: Operand, *, kernel: str) -> list[dict]:
    spec = BY_NAME[kernel]
    check_dtype(kernel, "a", a, spec.dtypes)
    check_same(kernel, a, b, "a and b")
    n = u32(kernel, "size", a.size)
    return [body(spec, _stream_grid(n), [a, b], [(a.dtype, a.shape)], {"n": n, "kind": _word_kind(a)})]


def _build_saxpy(base: int, x: Operand, y: Operand, *, alpha: float) -> list[dict]:
    check_dtype("saxpy", "x", x, ("float32",))
    check_same("saxpy", x, y, "x and y")
    n = u32("saxpy", "size", x.size)
    return [body(BY_NAME["saxpy"], _stream_grid(n), [x, y], [(x.dtype, x.shape)], {"n": n, "alpha": alpha})]


def _build_relu(base: int, x: Operand) -> list[dict]:
    check_dtype("relu", "x", x, ("float32",))
    n = u32("relu", "size", x.size)
    return [body(BY_NAME["relu"], _stream_grid(n), [x], [(x.dtype, x.shape)], {"n": n})]


def _build_reduce_sum(base: int, x: Operand) -> list[dict]:
    """One stage per pass; each pass folds 8192-element chunks (``ref.REDUCE_CHUNK``) until a single (0-d)
    value remains."""
    spec = BY_NAME["reduce_sum"]
    check_dtype("reduce_sum", "x", x, spec.dtypes)
    n = u32("reduce_sum", "size", x.size)
    kind = _word_kind(x)
    bodies: list[dict] = []
    source = x
    while True:
        chunks = groups(n, ref.REDUCE_CHUNK)
        shape: tuple[int, ...] = () if chunks == 1 else (chunks,)
        grid = [chunks, 1, 1] if chunks <= MAX_GROUPS else [MAX_GROUPS, groups(chunks, MAX_GROUPS), 1]
        bodies.append(body(spec, grid, [source], [(x.dtype, shape)], {"n": n, "kind": kind}))
        if chunks == 1:
            return bodies
        source = Operand({"stage": base + len(bodies) - 1, "output": 0}, x.dtype, shape)
        n = chunks


SOFTMAX_INVOCATIONS = 256  # shaders/softmax.comp's workgroup
SOFTMAX_REGISTERS = 8  # vec4 each lane of a row's team holds


def _softmax_team(cols: int) -> int:
    """Invocations per row, as the shader's fit_team computes them: the smallest power of two up to the
    workgroup whose lanes hold the row's 4-element groups in their registers."""
    team = 1
    while team < SOFTMAX_INVOCATIONS and team * SOFTMAX_REGISTERS < groups(cols, 4):
        team *= 2
    return team


def _build_softmax(base: int, x: Operand) -> list[dict]:
    check_dtype("softmax", "x", x, ("float32",))
    check_ndim("softmax", "x", x, 2)
    rows, cols = x.shape
    u32("softmax", "size", x.size)
    grid = [min(groups(rows, SOFTMAX_INVOCATIONS // _softmax_team(cols)), MAX_GROUPS), 1, 1]
    return [body(BY_NAME["softmax"], grid, [x], [(x.dtype, x.shape)], {"rows": rows, "cols": cols})]


def _build_transpose(base: int, x: Operand) -> list[dict]:
    check_dtype("transpose", "x", x, WORD_DTYPES)
    check_ndim("transpose", "x", x, 2)
    rows, cols = x.shape
    u32("transpose", "size", x.size)
    grid = [min(groups(cols, TRANSPOSE_TILE), MAX_GROUPS), min(groups(rows, TRANSPOSE_TILE), MAX_GROUPS), 1]
    return [body(BY_NAME["transpose"], grid, [x], [(x.dtype, (cols, rows))], {"rows": rows, "cols": cols})]


def _build_gemm(base: int, a: Operand, b: Operand) -> list[dict]:
    if dtype_name(a.dtype) in HALF_GEMMS:
        return _build_gemm_half(a, b)
    for name, op in (("a", a), ("b", b)):
        check_dtype("gemm", name, op, ("float32",))
        check_ndim("gemm", name, op, 2)
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise ContractError("E_SHAPE", f"gemm: a is {m}x{k} and b is {k2}x{n}: inner dimensions differ")
    for what, count in (("M*K", m * k), ("K*N", k * n), ("M*N", m * n)):
        u32("gemm", what, count)
    # The 128x128 tile runs ~1.4x faster on a large GPU once its grid fills the chip; below that the
    # 64x64 tile's 4x more workgroups win (docs/BENCHMARKS.md: on the H200 gemm128 took 0.79x gemm's time
    # at 1280^3, 100 tiles of 128x128, and 0.92x at 1536^3, 144; gemm 0.67x gemm128's at 1024^3, 64 tiles).
    # A product of few rows fills a row of 64x64 tiles at most, N/64 workgroups: gemm_skinny's 16x16
    # blocks give 4 to 16 times more, with the same summation order (batch invariance holds across the
    # switch). The choice depends on shapes only, so the same product always gives the same contract.
    # On the H200 (docs/BENCHMARKS.md) gemm_skinny took 0.28-0.66x gemm's time up to 32 rows; at 64 rows
    # 0.40x where N = 256 (gemm: 4 workgroups) but 1.18x where N = 1024 (gemm: 16); at 96 and 128 rows 0.64x
    # where N = 256 (gemm: 8) and 1.7-2.3x where N = 1024 (32); at 192 rows 1.17x where N = 256 (12).
    kernel, tile = "gemm", 64
    few_groups = groups(m, 64) * groups(n, 64) < SKINNY_GEMM_GROUPS
    if (m <= SKINNY_ALWAYS_ROWS or (m <= SKINNY_MAX_ROWS and few_groups)) and groups(n, SKINNY_BLOCK) <= MAX_GROUPS:
        kernel, tile = "gemm_skinny", SKINNY_BLOCK
    elif groups(m, 128) * groups(n, 128) >= GEMM128_MIN_GROUPS:
        kernel, tile = "gemm128", 128
    grid = [tiles(kernel, "N", n, tile), tiles(kernel, "M", m, tile), 1]
    return [body(BY_NAME[kernel], grid, [a, b], [(a.dtype, (m, n))], {"M": m, "N": n, "K": k})]


# 16-bit float inputs: input dtype -> the kernel that runs anywhere (its coopmat variant where the device has
# cooperative matrices). Both accumulate in float32 and return float32 (docs/KERNELS.md).
HALF_GEMMS = {"float16": "gemm_f16", "bfloat16": "gemm_bf16"}
COOPMAT_ROWS, COOPMAT_COLS = 128, 256  # the block of C a workgroup of gemm_half_coopmat.glsl computes
# Below this many 128x256 blocks the coopmat128 build's 128x128 blocks (twice the workgroups) run instead: on
# the H200 at 1024^3 (32 blocks) 79.5 TFLOP/s against 47.1, at 1536^3 (72) 108.9 against 115.5.
COOPMAT_SMALL_GRID = 64


def _build_gemm_half(a: Operand, b: Operand) -> list[dict]:
    kernel = HALF_GEMMS[a.dtype.name]
    for name, op in (("a", a), ("b", b)):
        check_dtype(kernel, name, op, (a.dtype.name,))
        check_ndim(kernel, name, op, 2)
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2:
        raise ContractError("E_SHAPE", f"{kernel}: a is {m}x{k} and b is {k2}x{n}: inner dimensions differ")
    for what, count in (("M*K", m * k), ("K*N", k * n), ("M*N", m * n)):
        u32(kernel, what, count)
    tiles(kernel, "M", m, 64)  # the generic grid's rows; the coopmat variant's grid is never larger
    grid = [tiles(kernel, "N", n, 64), tiles(kernel, "M", m, 64), 1]
    return [body(BY_NAME[kernel], grid, [a, b], [(np.dtype(np.float32), (m, n))], {"M": m, "N": n, "K": k})]


def _coopmat_grid(params: dict[str, Any]) -> tuple[int, int, int]:
    """The dispatch of gemm_half_coopmat.glsl: one workgroup per 128x256 block of C."""
    return (groups(params["N"], COOPMAT_COLS), groups(params["M"], COOPMAT_ROWS), 1)


def _coopmat128_grid(params: dict[str, Any]) -> tuple[int, int, int]:
    """The dispatch of its coopmat128 build: one workgroup per 128x128 block of C."""
    return (groups(params["N"], COOPMAT_ROWS), groups(params["M"], COOPMAT_ROWS), 1)


def _small_grid(params: dict[str, Any]) -> bool:
    x, y, _ = _coopmat_grid(params)
    return x * y < COOPMAT_SMALL_GRID


def _half_gemm(name: str, dtype: str, coopmat: str) -> KernelSpec:
    return KernelSpec(name=name, reference=ref.gemm, tolerance=tol.gemm_half, dtypes=(dtype,), shader=name,
                      push_constants=(("M", "uint"), ("N", "uint"), ("K", "uint")),
                      build=_build_gemm, tensors=2, writes_all_outputs=True,
                      variants=(Variant(f"{coopmat}128", _coopmat128_grid, subgroup_size=32, fits=_small_grid),
                                Variant(coopmat, _coopmat_grid, subgroup_size=32)))


def check_conv_scalars(stride: Any, padding: Any) -> None:
    """conv2d's stride (>= 1) and padding (>= 0), refused as E_CONTRACT_FIELD_TYPE."""
    for name, value, low in (("stride", stride, 1), ("padding", padding, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= MAX_U32:
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"conv2d: {name}={value!r} must be an int >= {low}")


def _build_conv2d(base: int, x: Operand, w: Operand, *, stride: int, padding: int) -> list[dict]:
    check_conv_scalars(stride, padding)
    for name, op in (("x", x), ("w", w)):
        check_dtype("conv2d", name, op, ("float32",))
        check_ndim("conv2d", name, op, 4)
    (n, c, h, wd), (k, c2, r, s) = x.shape, w.shape
    if c != c2:
        raise ContractError("E_SHAPE", f"conv2d: x has {c} channels but w expects {c2} (x {x.shape}, w {w.shape})")
    if h + 2 * padding < r or wd + 2 * padding < s:
        raise ContractError("E_SHAPE", f"conv2d: the {r}x{s} filter is larger than the padded {h}x{wd} input "
                            f"(padding {padding})")
    oh, ow = (h + 2 * padding - r) // stride + 1, (wd + 2 * padding - s) // stride + 1
    u32("conv2d", "output size", n * k * oh * ow)
    for what, count in (("x size", x.size), ("w size", w.size)):
        u32("conv2d", what, count)
    params = {"N": n, "C": c, "H": h, "W": wd, "K": k, "R": r, "S": s, "OH": oh, "OW": ow,
              "stride": stride, "padding": padding}
    # A workgroup per block of CONV_CHANNELS output channels by CONV_PIXELS output pixels, grid-stride over
    # the pixel blocks past 65535 (shaders/conv2d.glsl).
    grid = [min(groups(n * oh * ow, CONV_PIXELS), MAX_GROUPS), tiles("conv2d", "K", k, CONV_CHANNELS), 1]
    return [body(BY_NAME["conv2d"], grid, [x, w], [(x.dtype, (n, k, oh, ow))], params)]


# Every library shader writes each element of each output when run as its builder makes it: grid-stride
# loops over the elements (rows, tiles) cover any size, the tile kernels get one workgroup per tile, and
# reduce_sum one per 8192-element chunk. So none of them pays for an output clear before each run.
LIBRARY: tuple[KernelSpec, ...] = (
    KernelSpec(name="add", reference=ref.add, tolerance=tol.add, exact=True, dtypes=WORD_DTYPES, shader="add",
               push_constants=(("n", "uint"), ("kind", "uint")),
               build=functools.partial(_build_binary, kernel="add"), tensors=2, writes_all_outputs=True,
               batch_invariant=True),
    KernelSpec(name="mul", reference=ref.mul, tolerance=tol.mul, exact=True, dtypes=WORD_DTYPES, shader="mul",
               push_constants=(("n", "uint"), ("kind", "uint")),
               build=functools.partial(_build_binary, kernel="mul"), tensors=2, writes_all_outputs=True,
               batch_invariant=True),
    KernelSpec(name="saxpy", reference=ref.saxpy, tolerance=tol.saxpy, shader="saxpy",
               push_constants=(("n", "uint"), ("alpha", "float")),
               build=_build_saxpy, tensors=2, scalars=("alpha",), writes_all_outputs=True,
               batch_invariant=True),
    KernelSpec(name="relu", reference=ref.relu, tolerance=tol.relu, exact=True, shader="relu",
               push_constants=(("n", "uint"),),
               build=_build_relu, tensors=1, writes_all_outputs=True,
               batch_invariant=True),
    KernelSpec(name="reduce_sum", reference=ref.reduce_sum, tolerance=tol.reduce_sum, exact=True,
               dtypes=("float32", "int32"), shader="reduce_sum", push_constants=(("n", "uint"), ("kind", "uint")),
               build=_build_reduce_sum, tensors=1, writes_all_outputs=True),
    KernelSpec(name="softmax", reference=ref.softmax, tolerance=tol.softmax, shader="softmax",
               push_constants=(("rows", "uint"), ("cols", "uint")),
               build=_build_softmax, tensors=1, writes_all_outputs=True,
               batch_invariant=True),
    KernelSpec(name="transpose", reference=ref.transpose, tolerance=tol.transpose, exact=True, dtypes=WORD_DTYPES,
               shader="transpose", push_constants=(("rows", "uint"), ("cols", "uint")),
               build=_build_transpose, tensors=1, writes_all_outputs=True),
    # gemm, gemm128 and gemm_skinny are not declared batch invariant. Their shaders keep it (one accumulator per
    # element of C, k ascending, in every block shape, so the switches between them keep the order; the GPU
    # backends are tested for it), but the CPU reference rounds a float64 BLAS product whose summation order
    # depends on the number of rows (a matrix-vector product for one), so its float32 result may differ in a
    # rare rounding.
    KernelSpec(name="gemm", reference=ref.gemm, tolerance=tol.gemm, shader="gemm",
               push_constants=(("M", "uint"), ("N", "uint"), ("K", "uint")),
               build=_build_gemm, tensors=2, writes_all_outputs=True),
    # What gemm() builds for products of few rows (see _build_gemm; N/16 workgroups fitting a dispatch).
    KernelSpec(name="gemm_skinny", reference=ref.gemm, tolerance=tol.gemm, shader="gemm_skinny",
               push_constants=(("M", "uint"), ("N", "uint"), ("K", "uint")),
               build=_build_gemm, tensors=2, writes_all_outputs=True),
    # What gemm() builds for products whose 128x128 tile grid has at least GEMM128_MIN_GROUPS workgroups.
    KernelSpec(name="gemm128", reference=ref.gemm, tolerance=tol.gemm, shader="gemm128",
               push_constants=(("M", "uint"), ("N", "uint"), ("K", "uint")),
               build=_build_gemm, tensors=2, writes_all_outputs=True, grid_z=1),
    # What gemm() builds for float16 / bfloat16 inputs; GPU backends run the coopmat variant where they can.
    _half_gemm("gemm_f16", "float16", "gemm_f16_coopmat"),
    _half_gemm("gemm_bf16", "bfloat16", "gemm_bf16_coopmat"),
    KernelSpec(name="conv2d", reference=ref.conv2d, tolerance=tol.conv2d, shader="conv2d",
               push_constants=tuple((f, "uint") for f in ("N", "C", "H", "W", "K", "R", "S", "OH", "OW",
                                                          "stride", "padding")),
               build=_build_conv2d, tensors=2, scalars=("stride", "padding"), writes_all_outputs=True,
               batch_invariant=True),
)
BY_NAME: dict[str, KernelSpec] = {spec.name: spec for spec in LIBRARY}
record_library(LIBRARY)


@hookimpl
def hlx_register_kernels(registry: KernelRegistry) -> None:
    """Put the built-in kernels into the registry, as any plugin does with its own."""
    for spec in LIBRARY:
        registry.register(spec)
