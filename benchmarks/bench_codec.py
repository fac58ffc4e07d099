"""LC-B codec on a large tensor: encode copies the payload at most once, decode copies nothing.

Prints GB/s for encode_chunks, encode and decode of a 256 MiB float32 tensor next to a plain copy of the
same bytes (``bytes(memoryview)`` and ``np.copy``) measured in the same run, and checks that the decoded
array is a read-only view into the encoded bytes. Also times a 1000-entry nested dict (small-value path).

    .venv/bin/python benchmarks/bench_codec.py [--mib 256] [--repeat 5]
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np

from hlx_core.codec import decode, encode, encode_chunks


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    """Best wall time of ``repeat`` calls (the result of each call is dropped before the next)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
        del result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=256, help="tensor size in MiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    n_bytes = args.mib * 2**20
    arr = np.random.default_rng().standard_normal(n_bytes // 4, dtype=np.float32)
    gb = n_bytes / 1e9

    t_bytes = best_of(args.repeat, lambda: bytes(memoryview(arr)))
    t_npcopy = best_of(args.repeat, lambda: np.copy(arr))
    t_chunks = best_of(args.repeat, lambda: encode_chunks(arr))
    t_encode = best_of(args.repeat, lambda: encode(arr))
    data = encode(arr)
    t_decode = best_of(args.repeat, lambda: decode(data))

    back = decode(data)
    is_view = np.shares_memory(back, np.frombuffer(data, np.uint8))
    assert is_view and not back.flags.writeable and np.array_equal(back, arr)
    chunk_views = [c for c in encode_chunks(arr) if isinstance(c, memoryview)]
    assert any(np.shares_memory(np.asarray(c), arr) for c in chunk_views)

    print(f"LC-B codec, float32 tensor of {args.mib} MiB, best of {args.repeat}")
    print(f"{'operation':<34}{'time ms':>10}{'GB/s':>10}{'vs bytes()':>12}")
    rows = [
        ("plain copy bytes(memoryview)", t_bytes),
        ("plain copy np.copy", t_npcopy),
        ("encode_chunks (no copy)", t_chunks),
        ("encode (one copy)", t_encode),
        ("decode (read-only view)", t_decode),
    ]
    for name, t in rows:
        print(f"{name:<34}{t * 1e3:>10.3f}{gb / t:>10.1f}{t_bytes / t:>11.2f}x")
    print(f"decode is a read-only view into the encoded bytes: {is_view and not back.flags.writeable}")

    nested = {f"k{i}": [i, f"v{i}", i * 1.5, {"x": i, "y": None}] for i in range(1000)}
    small = encode(nested)
    t_small_enc = best_of(args.repeat * 4, lambda: encode(nested))
    t_small_dec = best_of(args.repeat * 4, lambda: decode(small))
    print(f"1000-entry nested dict ({len(small)} bytes): encode {t_small_enc * 1e3:.2f} ms, "
          f"decode {t_small_dec * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
