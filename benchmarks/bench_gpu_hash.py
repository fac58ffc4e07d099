"""BLAKE3 of a tensor on the GPU (shaders/blake3.comp) against the blake3 package on the host, same run.

A float32 tensor (256 MiB; 16 MiB with ``--small``) is hashed through ``hlx.run`` of the hash contract
(``hlx_core.device.hash``) on each GPU backend: run once, so the tensor is resident on the device, then
``--repeat`` timed runs, whose GPU timestamps (Result.timings["gpu_ms"]: first pass's start to last pass's
end) give the device's rate over the bytes hashed (the LC-B encoding: prefix and payload). The host line is
the blake3 package hashing the same bytes with all its threads (``max_threads=blake3.AUTO``). Every digest
is checked against the host's. Printed per line: median ms, GB/s, the fraction of the H200's 4.8 TB/s HBM
bandwidth, and the ratio to the host's rate.

``--variants FILE.spv ...`` (any build with the library shader's interface: its bindings, push constants,
128 chunks or chaining values per workgroup and passes) times each one on each backend the same way,
through the same contract with only its shader swapped, checks its digest against the host's, and prints
its ratio to the library shader's rate in the same run; on a device that reports them, each one's
registers, spills and shared memory come first.

    python3 bench_gpu_hash.py                    # 256 MiB (the goal: >= 1 TB/s on an H200)
    python3 bench_gpu_hash.py --small            # 16 MiB, for lavapipe
    python3 bench_gpu_hash.py --variants ../shaders/blake3.spv other.spv
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import blake3
import numpy as np

import hlx
from hlx_core.codec import encode_chunks, tensor_prefix
from hlx_core.contracts.ids import COMPUTE_KERNEL, PIPELINE_CONFIG
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


def variant_contract(contract: dict, spv: Path) -> dict:
    """``contract`` (a hash contract: a 901, or a 902 of 901 stages) with every stage running the shader
    in ``spv`` instead of the library's: same bindings, push constants and dispatches."""
    handle = hlx.collapse(hlx.shader_contract(Path(spv).read_bytes()))

    def swap(stage: dict) -> dict:
        return {COMPUTE_KERNEL: {**stage[COMPUTE_KERNEL], "shader_handle": handle}}

    if COMPUTE_KERNEL in contract:
        return swap(contract)
    body = contract[PIPELINE_CONFIG]
    return {PIPELINE_CONFIG: {**body, "stages": [swap(st) for st in body["stages"]]}}


def device_ms(contract: dict, backend: str, repeat: int, want: bytes) -> tuple[float, dict[str, float]]:
    """Median GPU ms of ``repeat`` runs after a first one (compiles, uploads: the tensor stays resident), and
    the median of each pass's own GPU time."""
    first = hlx.run(contract, backend=backend)
    if "gpu_ms" not in first.timings:
        raise SystemExit(f"{backend}: no GPU timestamps on {first.device}")
    runs = [hlx.run(contract, backend=backend) for _ in range(repeat)]
    for r in (first, *runs):
        if digest_handle(r.arrays()[0]).digest != want:
            raise ValueError(f"{backend}: the device digest differs from the host's")
    passes = {k: statistics.median(r.timings[k] for r in runs) for k in sorted(runs[0].timings)
              if k.startswith("stage")}
    return statistics.median(r.timings["gpu_ms"] for r in runs), passes


def print_statistics(named: list[tuple[str, dict]]) -> None:
    """Registers, spills and shared memory of each named contract's passes, from a Vulkan session of the
    default device (where it reports them)."""
    if "vulkan" not in set(hlx.backends()):
        return
    from _variants import open_session
    from _variants import print_statistics as statistics_of

    session = open_session(False)
    try:
        statistics_of(session, named)
    finally:
        session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="16 MiB instead of 256 MiB (lavapipe)")
    parser.add_argument("--mib", type=int, help="tensor size in MiB (overrides --small)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per line (median kept)")
    parser.add_argument("--variants", nargs="+", type=Path, default=[], metavar="FILE.spv",
                        help="other builds of the hash shader to time against the library's")
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
    header = f"{'where':<30} {'ms':>9} {'GB/s':>9} {'of HBM':>7} {'vs host':>8}" + (
        f" {'vs library':>11}" if args.variants else "")
    print(header)
    print("-" * len(header))
    print(f"{'host blake3, all threads':<30} {ms:>9.3f} {host_rate:>9.1f} {host_rate / (HBM_BYTES_PER_S / 1e9):>7.3f} "
          f"{1.0:>8.2f}")
    contract = hash_contract(tensor)
    named = [("library blake3", contract)] + [(spv.stem, variant_contract(contract, spv)) for spv in args.variants]
    if args.variants:
        print_statistics(named)
    available = set(hlx.backends())
    failed = []
    for backend in GPU_BACKENDS:
        if backend not in available:
            print(f"{backend}: not available here")
            continue
        print(f"{backend} on {hlx.run(contract, backend=backend).device}:")
        library_rate = None
        for name, c in named:
            try:
                ms, per_pass = device_ms(c, backend, args.repeat, want)
            except Exception as err:  # a candidate the backend refuses or that hashes wrong is reported
                if library_rate is None:
                    raise
                failed.append(f"{backend} {name}")
                print(f"  {name:<28} FAILED: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
                continue
            rate = nbytes / ms / 1e6
            library_rate = library_rate or rate
            print(f"  {name:<28} {ms:>9.3f} {rate:>9.1f} {rate / (HBM_BYTES_PER_S / 1e9):>7.3f} "
                  f"{rate / host_rate:>8.2f}" + (f" {rate / library_rate:>11.2f}" if args.variants else ""))
            print("      passes (gpu ms): " + ", ".join(f"{k.removesuffix('_gpu_ms')} {v:.3f}"
                                                   for k, v in per_pass.items()))
    if failed:
        print("FAILED: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
