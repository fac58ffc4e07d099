"""BLAKE3 on the GPU (shaders/blake3.comp, hlx_core/device/hash.py): the device's digest of a tensor's LC-B
encoding equals the blake3 package's, bit for bit, and the handle ``hlx.collapse`` gives, on every GPU
backend here (a backend that is not available is skipped), for every LC-B dtype, payload sizes around the
block, chunk and workgroup boundaries, 0-d, empty and 4-d shapes, prefixes that take each of the shader's
load paths (uvec4, words, bytes), and tensors of 16 MiB."""
from __future__ import annotations

import blake3
import numpy as np
import pytest

import hlx
from hlx_core.codec import tensor_prefix
from hlx_core.device.hash import (
    CHUNK_BYTES,
    CHUNKS_PER_GROUP,
    VALUES_PER_GROUP,
    digest_handle,
    hash_contract,
    hash_passes,
    prefix_words,
)

GPU_BACKENDS = ("vulkan", "wgpu")
AVAILABLE = set(hlx.backends())
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64")


@pytest.fixture(params=GPU_BACKENDS)
def backend(request) -> str:
    if request.param not in AVAILABLE:
        pytest.skip(f"backend {request.param!r} is not available here")
    return request.param


def _random(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Fresh random data of every bit pattern the dtype holds (bool: 0 and 1)."""
    if dtype == "bool":
        return rng.integers(0, 2, shape, dtype=np.uint8).astype(bool)
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    return rng.integers(0, 256, nbytes, dtype=np.uint8).view(dtype).reshape(shape)


def _check(array: np.ndarray, backend: str) -> None:
    words = hlx.run(hash_contract(array), backend=backend).arrays()[0]
    assert words.dtype == np.uint32 and words.shape == (8,)
    assert words.astype("<u4").tobytes() == blake3.blake3(hlx.encode(array)).digest()
    assert digest_handle(words) == hlx.collapse(array)


@pytest.mark.parametrize("shape", [(3, 5, 7, 11), (4, 1024)], ids=str)  # 1155 elements: not whole words
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype(backend, rng, dtype, shape) -> None:
    _check(_random(rng, dtype, shape), backend)


def _prefix_1d(nbytes: int) -> int:
    return len(tensor_prefix(np.uint8, (nbytes,)))


def _payload_for_chunks(chunks: int, short: int = 0) -> int:
    """The uint8 payload whose 1-d message fills ``chunks`` chunks, the last one ``short`` bytes short (the
    header's length changes only at payloads of 246 and 65526 bytes, far from these)."""
    total = chunks * CHUNK_BYTES - short
    return total - _prefix_1d(total)


PAYLOADS = [0, 1, 6, 63, 64, 1023, 1024, 1025, 2047, 2048, 3 * 1024 + 7,
            _payload_for_chunks(5, 300), _payload_for_chunks(37, 1),
            _payload_for_chunks(CHUNKS_PER_GROUP), _payload_for_chunks(CHUNKS_PER_GROUP + 1, 1000),
            _payload_for_chunks(2 * CHUNKS_PER_GROUP + 1, 5), 200_003]


@pytest.mark.parametrize("nbytes", PAYLOADS)
def test_payload_sizes(backend, rng, nbytes) -> None:
    _check(_random(rng, "uint8", (nbytes,)), backend)


def test_chunk_counts_of_the_size_cases() -> None:
    counts = [hash_passes(_prefix_1d(n), n)[0].count for n in PAYLOADS[11:16]]
    assert counts == [5, 37, CHUNKS_PER_GROUP, CHUNKS_PER_GROUP + 1, 2 * CHUNKS_PER_GROUP + 1]
    assert [len(hash_passes(_prefix_1d(n), n)) for n in PAYLOADS[11:16]] == [1, 1, 1, 2, 2]


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (2, 3, 4, 5), (1,) * 31 + (100,)],
                         ids=lambda s: f"{len(s)}-d {s}"[:20])
def test_shapes(backend, rng, shape) -> None:
    """0-d int16 has the shortest prefix (4 bytes: fixext4), 32 dimensions the longest (264: ext32)."""
    for dtype in ("float64", "int16", "bool"):
        _check(_random(rng, dtype, shape), backend)


# (shape, prefix bytes): uint8 payloads of about 147 chunks (two passes, the last word partial) whose blocks
# past the prefix are read as uvec4 (a prefix of 16 or 32 bytes) or as words (24 or 40 bytes).
LOAD_PATHS = [((150_001,), 16), ((7, 21_429), 24), ((3, 7, 7143), 32), ((3, 5, 7, 1429), 40)]


@pytest.mark.parametrize("shape, prefix_len", LOAD_PATHS, ids=lambda v: f"{len(v)}-d" if isinstance(v, tuple) else "")
def test_load_paths(backend, rng, shape, prefix_len) -> None:
    assert len(tensor_prefix(np.dtype(np.uint8), shape)) == prefix_len
    _check(_random(rng, "uint8", shape), backend)


@pytest.mark.parametrize("dtype, shape, prefix_len", [("float32", (2, 2, 1024, 1024), 40),
                                                      ("uint8", ((16 << 20) + 5,), 16)], ids=["4-d", "1-d"])
def test_16_mib(backend, rng, dtype, shape, prefix_len) -> None:
    """Three passes (16385 chunks -> 129 chaining values -> 2 -> the root); word loads (4-d) and uvec4
    loads with a partial last word (1-d)."""
    array = _random(rng, dtype, shape)
    prefix = tensor_prefix(array.dtype, array.shape)
    assert len(prefix) == prefix_len
    assert [p.count for p in hash_passes(len(prefix), array.nbytes)] == [16385, 129, 2]
    _check(array, backend)


def test_a_stored_tensor_by_handle(backend, rng) -> None:
    array = _random(rng, "int32", (1000,))
    handle = hlx.collapse(array)
    words = hlx.run(hash_contract(handle), backend=backend).arrays()[0]
    assert digest_handle(words) == handle


# -- the host side, no device ------------------------------------------------------------------------------

def test_prefix_is_the_codec_header() -> None:
    for dtype, shape in (("float32", ()), ("bool", (0,)), (">i8", (3, 4)), ("uint16", (70_000,))):
        array = np.zeros(shape, dtype)
        encoded = hlx.encode(array)
        prefix = tensor_prefix(array.dtype, shape)
        assert encoded == prefix + array.astype(array.dtype.newbyteorder("<")).tobytes()
    words = prefix_words(b"\x01\x02\x03\x04\x05")
    assert words.dtype == np.uint32 and words.tolist() == [0x04030201, 0x05]


def test_passes() -> None:
    (single,) = hash_passes(13, 0)
    assert (single.mode, single.count, single.root, single.dispatch, single.output_words) == (0, 1, True,
                                                                                               (1, 1, 1), 8)
    chunks = 2**32 // CHUNK_BYTES + 1  # the largest tensor: 4 GiB less its header
    passes = hash_passes(16, 2**32 - 11)
    groups = -(-chunks // CHUNKS_PER_GROUP)
    assert passes[0].count == chunks and passes[0].dispatch == (groups, 1, 1) and groups < 65536
    assert [p.count for p in passes[1:]] == [groups, -(-groups // VALUES_PER_GROUP), 3]
    assert [p.root for p in passes] == [False, False, False, True] and passes[-1].output_words == 8
    assert passes[1].push_constants == np.array([1, 0, 0, groups, 0], "<u4").tobytes()


@pytest.mark.parametrize("prefix_len, payload_len", [(0, 5), (1024, 5), (13, 2**32), (13, -1)])
def test_passes_refuse_messages_the_shader_cannot_take(prefix_len, payload_len) -> None:
    with pytest.raises(hlx.ContractError) as err:
        hash_passes(prefix_len, payload_len)
    assert err.value.code == "E_SHAPE"


def test_bad_arguments() -> None:
    with pytest.raises(hlx.ContractError) as err:
        hash_contract([1, 2, 3])
    assert err.value.code == "E_CONTRACT_FIELD_TYPE"
    with pytest.raises(hlx.ContractError) as err:
        hash_contract(hlx.collapse({"not": "a tensor"}))
    assert err.value.code == "E_CONTRACT_FIELD_TYPE"
    with pytest.raises(hlx.ContractError) as err:
        digest_handle(np.zeros(8, np.int32))
    assert err.value.code == "E_SHAPE"
