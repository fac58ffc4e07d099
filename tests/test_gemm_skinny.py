"""The few-rows GEMM (shaders/gemm_skinny.comp), which gemm() builds for products of at most 64 rows.

On every backend: awkward shapes on both sides of the bound (M 0..70, K off the 16-step and across the
256-deep chunks, N off the 16-column blocks) within gemm's bound of float64, outputs poisoned (this suite's
HLX_POISON_OUTPUTS=1, so an unwritten element is NaN) and not (memory first filled by other work); the same
bytes run to run and between Vulkan and wgpu; the same bits for a row as gemm's 64x64 tiles give it in a
larger product (batch invariance across the switch, long K included); the shader past the bound when a
contract names it by hand; the MLP of the batch benchmark at batch sizes on both sides of the bound.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from _backends import backend_or_skip, f32

import hlx
from hlx import kernels as K
from hlx_core import registry
from hlx_core.bench.suites.batch import check, mlp, weights
from hlx_core.device.poison import ENV_POISON
from hlx_core.errors import ContractError
from hlx_core.kernels import tolerances as tol
from hlx_core.kernels.helpers import shader_handle
from hlx_core.kernels.library import SKINNY_BLOCK, SKINNY_MAX_ROWS
from hlx_core.plan import OutputRef
from hlx_core.planner import plan

BACKENDS = ("cpu", "vulkan", "wgpu")
GPU = ("vulkan", "wgpu")
KS, NS = (1, 3, 1000, 1031), (1, 5, 257)
ROWS = (0, 1, 2, 15, 16, 17, 33, 63, 64, 65, 70)
# every (K, N) at one row and at the bound; one (K, N) in turn for the other row counts
SHAPES = sorted({(m, k, n) for m in (1, SKINNY_MAX_ROWS) for k, n in itertools.product(KS, NS)}
                | {(m, *kn) for m, kn in zip(ROWS, itertools.cycle(itertools.product(KS, NS)))})


def _within_bound(a: np.ndarray, b: np.ndarray, got: np.ndarray) -> bool:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    (bound,) = tol.gemm([a64, b64], [np.zeros_like(a64), np.zeros_like(b64)], {},
                        [OutputRef(np.dtype(np.float32), got.shape)])
    return got.shape == (a.shape[0], b.shape[1]) and bool(np.all(np.abs(got - a64 @ b64) <= bound))


def _run(contract: dict, backend: str) -> np.ndarray:
    return hlx.run(contract, backend=backend, memo=False).arrays()[0]


def _hand_written(a: np.ndarray, b: np.ndarray, dispatch: list[int]) -> dict:
    """gemm()'s contract for a and b with the gemm_skinny shader and ``dispatch`` put in by hand."""
    body = {k: v for k, v in K.gemm(a, b)["901"].items() if k not in ("params", "push_constants_layout")}
    return {"901": {**body, "kernel_name": "gemm_skinny", "shader_handle": shader_handle("gemm_skinny"),
                    "dispatch": dispatch}}


def test_the_row_count_alone_picks_the_shader(rng):
    for m, n in ((1, 1), (SKINNY_MAX_ROWS, 257), (SKINNY_MAX_ROWS + 1, 1), (130, 257)):
        body = K.gemm(f32(rng, m, 3), f32(rng, 3, n))["901"]
        skinny = m <= SKINNY_MAX_ROWS
        assert body["kernel_name"] == ("gemm_skinny" if skinny else "gemm")
        if skinny:
            assert body["dispatch"] == [-(-n // SKINNY_BLOCK), max(1, -(-m // SKINNY_BLOCK)), 1]
    # N past 65535 blocks of 16 columns: the tiles of 128 columns still fit one dispatch dimension
    wide = K.gemm(f32(rng, 1, 1), f32(rng, 1, SKINNY_BLOCK * 65535 + 1))["901"]
    assert wide["kernel_name"] == "gemm128" and wide["dispatch"] == [8192, 1, 1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_within_the_bound_of_float64(backend, shape, rng):
    backend = backend_or_skip(backend)
    m, k, n = shape
    a, b = f32(rng, m, k), f32(rng, k, n)
    got = _run(K.gemm(a, b), backend)
    assert _within_bound(a, b, got), (backend, shape)


@pytest.fixture(scope="module")
def unpoisoned():
    """A session per GPU backend opened without HLX_POISON_OUTPUTS, inputs never resident, so each run's
    buffers come out of the memory the one before used."""
    opened: dict[str, object] = {}

    def open_(backend: str):
        if backend not in opened:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv(ENV_POISON, "0")
                mp.setenv("HLX_VULKAN_RESIDENCY_MB", "0")
                mp.setenv("HLX_WGPU_RESIDENT_BYTES", "0")
                opened[backend] = registry.backend_entries()[backend].backend.open()
        return opened[backend]

    yield open_
    for session in opened.values():
        session.close()


@pytest.mark.parametrize("backend", GPU)
def test_without_poisoning_after_other_work(backend, unpoisoned, rng):
    session = unpoisoned(backend_or_skip(backend))
    for m, k, n in ((1, 1031, 257), (17, 3, 5), (64, 1000, 257)):
        stale = f32(rng, m, 2) * 1000
        session.execute(plan(K.gemm(stale, f32(rng, 2, n))))  # an output of the same size, far off
        a, b = f32(rng, m, k), f32(rng, k, n)
        assert _within_bound(a, b, session.execute(plan(K.gemm(a, b))).arrays[0]), (backend, m, k, n)


def test_same_bytes_every_run_and_on_both_gpu_backends(rng):
    a, b = f32(rng, 33, 1031), f32(rng, 1031, 257)
    contract = K.gemm(a, b)
    runs = [_run(contract, backend_or_skip(backend)).tobytes() for backend in GPU for _ in range(2)]
    assert len(set(runs)) == 1


@pytest.mark.parametrize("backend", GPU)
def test_a_row_has_the_bits_of_the_64x64_tiles(backend, rng):
    """Rows of a product past SKINNY_MAX_ROWS (gemm.comp) against the same rows computed alone
    (gemm_skinny.comp, up to its most rows), with K over several chunks and off the 16-step, and K a
    multiple of it (no zero products past K)."""
    backend = backend_or_skip(backend)
    rows_all = SKINNY_MAX_ROWS + 64
    for k in (1031, 512):
        a, b = f32(rng, rows_all, k), f32(rng, k, 257)
        assert K.gemm(a, b)["901"]["kernel_name"] == "gemm"
        full = _run(K.gemm(a, b), backend)
        for start, m in ((0, 1), (5, 17), (64, SKINNY_MAX_ROWS), (rows_all - 1, 1)):
            rows = np.ascontiguousarray(a[start:start + m])
            assert K.gemm(rows, b)["901"]["kernel_name"] == "gemm_skinny"
            assert _run(K.gemm(rows, b), backend).tobytes() == full[start:start + m].tobytes(), (k, start, m)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_shader_takes_more_rows_when_named_by_hand(backend, rng):
    """Past the bound gemm() builds gemm's tiles, but the shader itself covers any M with its grid."""
    backend = backend_or_skip(backend)
    a, b = f32(rng, 100, 37), f32(rng, 37, 40)
    got = _run(_hand_written(a, b, [3, 7, 1]), backend)
    assert _within_bound(a, b, got)


def test_a_dispatch_other_than_the_builders_is_refused(rng):
    a, b = f32(rng, 3, 40), f32(rng, 40, 50)
    with pytest.raises(ContractError) as exc:
        hlx.run(_hand_written(a, b, [1, 1, 1]), backend="cpu")
    assert exc.value.code == "E_CONTRACT_STRUCTURE" and "[4, 1, 1]" in exc.value.message


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_batch_benchmarks_mlp(backend, rng):
    backend = backend_or_skip(backend)
    w1, w2 = weights((256, 256, 64))
    h1, h2 = hlx.collapse(w1), hlx.collapse(w2)
    for batch in (1, 64, SKINNY_MAX_ROWS, SKINNY_MAX_ROWS + 1):  # 256 and 64 columns: few 64x64 tiles
        x = f32(rng, batch, 256)
        contract = mlp(x, h1, h2)
        names = [s["901"]["kernel_name"] for s in contract["902"]["stages"]]
        skinny = batch <= SKINNY_MAX_ROWS
        assert names == (["gemm_skinny", "relu", "gemm_skinny"] if skinny else ["gemm", "relu", "gemm"])
        check(_run(contract, backend), x, w1, w2)
