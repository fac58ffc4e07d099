"""blake3_digest hashes large inputs on all cores and small ones on one thread: the digest, and so every
handle, must be the one single-threaded BLAKE3 gives, on both sides of the threshold."""
from __future__ import annotations

import blake3
import numpy as np
import pytest

import hlx
from hlx_core.codec.encoder import encode
from hlx_core.codec.handle import HASH_THREADS_MIN_BYTES, Handle, blake3_digest

T = HASH_THREADS_MIN_BYTES


def _one_thread(data: bytes) -> bytes:
    return blake3.blake3(data, max_threads=1).digest()


@pytest.mark.parametrize("size", [0, 1, T - 4097, T - 1, T, T + 1, T + 1023, 2 * T + 12345, 8 * T])
def test_digest_matches_one_thread_around_the_threshold(size, rng):
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    assert blake3_digest([data]) == _one_thread(data)
    cut = size // 3
    chunks = [data[:cut], memoryview(data)[cut:2 * cut], bytearray(data[2 * cut:])]
    assert blake3_digest(chunks) == _one_thread(data)  # several chunks summing across the threshold


@pytest.mark.parametrize("elements", [T // 4 - 1, T // 4, T // 4 + 1, 3 * T // 4])
def test_tensor_handles_around_the_threshold(elements, rng):
    """A float32 tensor whose encoding straddles the threshold: collapse (which hashes the payload in place,
    as a non-byte view) names it by the single-threaded BLAKE3 of its LC-B bytes."""
    arr = rng.standard_normal(elements).astype(np.float32)
    want = Handle.from_digest("tensor", _one_thread(encode(arr)))
    assert hlx.collapse(arr, store=hlx.MemoryStore()) == want
    assert blake3_digest([memoryview(arr)]) == _one_thread(arr.tobytes())
