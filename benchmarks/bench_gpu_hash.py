"""BLAKE3 of a tensor on the GPU (shaders/blake3.comp) against the blake3 package on the host, same run.

A float32 tensor (256 MiB; 16 MiB with ``--small``) is hashed through ``hlx.run`` of the hash contract
(``hlx_core.device.hash``) on each GPU backend: run once, so the tensor is resident on the device, then
``--repeat`` timed runs, whose GPU timestamps (Result.timings["gpu_ms"]: first pass's start to last pass's
end) give the device's rate over the bytes hashed (the LC-B encoding: prefix and payload). The host line is
the blake3 package hashing the same bytes with all its threads (``max_threads=blake3.AUTO``). Every digest
is checked against the host's. Printed per line: median ms, GB/s, the fraction of the H200's 4.8 TB/s HBM
bandwidth, and the ratio to the host's rate.

    .venv/bin/python benchmarks/bench_gpu_hash.py            # 256 MiB (the goal: >= 1 TB/s on an H200)
    .venv/bin/python benchmarks/bench_gpu_hash.py --small    # 16 MiB, for lavapipe
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import blake3
import numpy as np

import hlx
from hlx_core.codec import encode_chunks, tensor_prefix
from hlx_core.device.hash import digest_handle, hash_contract, hash_passes

GPU_BACKENDS = ("vulkan", "wgpu")
HBM_BYTES_PER_S = 4.8e12  # H200 HBM3e peak


def host_ms(chunks: list, repeat: int) -> tuple[float, bytes]:
    """Median ms of the blake3 package over the encoding's pieces, all threads, and the digest."""
    times, digest = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        for piece in chunks:
            hasher.update(piece)
        digest = hasher.digest()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), digest


def device_ms(contract: dict, backend: str, repeat: int, want: bytes) -> tuple[float, dict[str, float]]:
    """Median GPU ms of ``repeat`` runs after a first one (compiles, uploads: the tensor stays resident), and
    the median of each pass's own GPU time."""
    first = hlx.run(contract, backend=backend)
    if "gpu_ms" not in first.timings:
        raise SystemExit(f"{backend}: no GPU timestamps on {first.device}")
    runs = [hlx.run(contract, backend=backend) for _ in range(repeat)]
    for r in (first, *runs):
        if digest_handle(r.arrays()[0]).digest != want:
            raise SystemExit(f"{backend}: the device digest differs from the host's")
    passes = {k: statistics.median(r.timings[k] for r in runs) for k in sorted(runs[0].timings)
              if k.startswith("stage")}
    return statistics.median(r.timings["gpu_ms"] for r in runs), passes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="16 MiB instead of 256 MiB (lavapipe)")
    parser.add_argument("--mib", type=int, help="tensor size in MiB (overrides --small)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per line (median kept)")
    args = parser.parse_args()

    mib = args.mib or (16 if args.small else 256)
    rng = np.random.default_rng(0)
    tensor = rng.integers(0, 2**32, (mib << 20) // 4, dtype=np.uint32).view(np.float32)
    chunks = encode_chunks(tensor)
    nbytes = sum(len(c) for c in chunks)
    prefix = tensor_prefix(tensor.dtype, tensor.shape)
    passes = hash_passes(len(prefix), tensor.nbytes)
    print(f"float32[{tensor.size}]: {nbytes} bytes hashed (prefix {len(prefix)}), "
          f"{passes[0].count} chunks, {len(passes)} passes: " + " -> ".join(str(p.count) for p in passes) + " -> 1")

    ms, want = host_ms(chunks, args.repeat)
    host_rate = nbytes / ms / 1e6
    header = f"{'where':<26} {'ms':>9} {'GB/s':>9} {'of HBM':>7} {'vs host':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'host blake3, all threads':<26} {ms:>9.3f} {host_rate:>9.1f} {host_rate / (HBM_BYTES_PER_S / 1e9):>7.3f} "
          f"{1.0:>8.2f}")
    contract = hash_contract(tensor)
    available = set(hlx.backends())
    for backend in GPU_BACKENDS:
        if backend not in available:
            print(f"{backend}: not available here")
            continue
        ms, per_pass = device_ms(contract, backend, args.repeat, want)
        rate = nbytes / ms / 1e6
        print(f"{backend:<26} {ms:>9.3f} {rate:>9.1f} {rate / (HBM_BYTES_PER_S / 1e9):>7.3f} {rate / host_rate:>8.2f}")
        print(f"    on {hlx.run(contract, backend=backend).device}; passes (gpu ms): "
              + ", ".join(f"{k.removesuffix('_gpu_ms')} {v:.3f}" for k, v in per_pass.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
