"""The built-in kernels: one ``KernelSpec`` each (docs/KERNELS.md describes them in full)."""
from __future__ import annotations

from hlx_core.kernels import references as ref
from hlx_core.kernels.registry import KernelSpec

WORD_DTYPES = ("float32", "int32", "uint32")  # the 4-byte dtypes: shaders on raw 32-bit words carry them
GRID_STRIDE = "[min(max(ceil(n / 256), 1), 65535), 1, 1]; the shader loops over the rest"

LIBRARY: tuple[KernelSpec, ...] = (
    KernelSpec(
        name="add", reference=ref.add, exact=True, dtypes=WORD_DTYPES, shader="add",
        signature="add(a: T[...], b: T[...]) -> T[...], same shape, T in float32|int32|uint32",
        push_constants=(("n", "uint"), ("kind", "uint")), dispatch=GRID_STRIDE),
    KernelSpec(
        name="mul", reference=ref.mul, exact=True, dtypes=WORD_DTYPES, shader="mul",
        signature="mul(a: T[...], b: T[...]) -> T[...], same shape, T in float32|int32|uint32",
        push_constants=(("n", "uint"), ("kind", "uint")), dispatch=GRID_STRIDE),
    KernelSpec(
        name="saxpy", reference=ref.saxpy, shader="saxpy",
        signature="saxpy(alpha: float, x: float32[...], y: float32[...]) -> float32[...] = alpha*x + y",
        push_constants=(("n", "uint"), ("alpha", "float")), dispatch=GRID_STRIDE),
    KernelSpec(
        name="relu", reference=ref.relu, exact=True, shader="relu",
        signature="relu(x: float32[...]) -> float32[...] = x > 0 ? x : 0",
        push_constants=(("n", "uint"),), dispatch=GRID_STRIDE),
    KernelSpec(
        name="reduce_sum", reference=ref.reduce_sum, exact=True, dtypes=("float32", "int32"),
        shader="reduce_sum",
        signature="reduce_sum(x: T[...]) -> T[] (0-d), T in float32|int32; one stage per pass of "
                  "512-element fixed-order trees, passes chained until one value remains",
        push_constants=(("n", "uint"), ("kind", "uint")),
        dispatch="chunks = max(ceil(n / 512), 1): [chunks, 1, 1], or [65535, ceil(chunks / 65535), 1]"),
    KernelSpec(
        name="softmax", reference=ref.softmax, shader="softmax",
        signature="softmax(x: float32[rows, cols]) -> float32[rows, cols], over the last axis",
        push_constants=(("rows", "uint"), ("cols", "uint")),
        dispatch="[min(max(rows, 1), 65535), 1, 1]: one workgroup per row, grid-stride over rows"),
    KernelSpec(
        name="transpose", reference=ref.transpose, exact=True, dtypes=WORD_DTYPES, shader="transpose",
        signature="transpose(x: T[rows, cols]) -> T[cols, rows], T any 4-byte dtype",
        push_constants=(("rows", "uint"), ("cols", "uint")),
        dispatch="[min(max(ceil(cols / 16), 1), 65535), min(max(ceil(rows / 16), 1), 65535), 1]"),
    KernelSpec(
        name="gemm", reference=ref.gemm, shader="gemm",
        signature="gemm(a: float32[M, K], b: float32[K, N]) -> float32[M, N]",
        push_constants=(("M", "uint"), ("N", "uint"), ("K", "uint")),
        dispatch="[max(ceil(N / 64), 1), max(ceil(M / 64), 1), 1], each at most 65535"),
    KernelSpec(
        name="gemm128", reference=ref.gemm, shader="gemm128",
        signature="gemm128(a: float32[M, K], b: float32[K, N]) -> float32[M, N]; what gemm() builds for "
                  "products whose 128x128 tile grid has at least 192 workgroups",
        push_constants=(("M", "uint"), ("N", "uint"), ("K", "uint")),
        dispatch="[ceil(N / 128), ceil(M / 128), 1], each at most 65535"),
    KernelSpec(
        name="conv2d", reference=ref.conv2d, shader="conv2d",
        signature="conv2d(x: float32[N, C, H, W], w: float32[K, C, R, S], stride=1, padding=0) -> "
                  "float32[N, K, OH, OW], OH = (H + 2*padding - R) // stride + 1",
        push_constants=tuple((f, "uint") for f in ("N", "C", "H", "W", "K", "R", "S", "OH", "OW",
                                                    "stride", "padding")),
        dispatch="[min(max(ceil(N*K*OH*OW / 256), 1), 65535), 1, 1]; the shader loops over the rest"),
)
