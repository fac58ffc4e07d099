"""Large outputs brought to the host: ``hlx.run(..., persist=True)`` of a GEMM and of a streaming add against
the device's own readback bandwidth, measured in the same run.

An output of at least the device-hash threshold (HLX_VULKAN_DEVICE_HASH_BYTES, default 1 MiB) is hashed on the
device and, by default, left there: ``hlx.run`` returns its handle and nothing crosses to the host until it is
read. ``persist=True`` downloads it within the call (and writes it through: a no-op here, since the store
holds that output from the first run), so the timed call is a run whose output reaches the host every time
(``Result.arrays()`` of a default run would not show it: the bytes come from the store's cache); the default
run, output left on the device, is timed beside it. For each case (a 4096^3 float32 GEMM, 64 MB out; an add of
64M float32, 256 MB out; ``--small``: 512^3 and 1M) and each store (``hlx.MemoryStore()`` and the default disk
store under a temporary HLX_HOME), the contract runs once (inputs become resident, the output is stored and
checked), then ``--repeat`` more times each way; the median wall time of the whole ``hlx.run(...,
persist=True)`` call is set against the budget of goal 2 of the run path:

    GPU time (timestamps) + output bytes / device-to-host bandwidth + 2 ms

The bandwidth is measured here through the backend's own readback path: a plain vkCmdCopyBuffer of the same
bytes from device memory into the host memory the backend reads outputs from (imported host memory where
the device has VK_EXT_external_memory_host, else its host-cached readback memory), submit to fence. With
torch and CUDA, ``tensor.cpu()`` of the same bytes is printed beside it. Where the time goes is printed per
case: the backend's execute (``host_ms``: the run, not the download after it), the run with the output left
on the device, hashing the output on the host (what the device's hash spares), a copy of it into fresh pages
(a download makes one, out of its staging or mapped buffer) and a first write of it into each store.

    .venv/bin/python benchmarks/bench_large_outputs.py [--small] [--repeat 7] [--backend vulkan] [--device 0]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any, Callable

import numpy as np
from _common import cuda_torch

import hlx
from hlx_core.codec.encoder import encode_chunks
from hlx_core.codec.handle import blake3_digest
from hlx_core.device.hash import min_bytes

SLACK_MS = 2.0
DEVICE_HASH_ENV = {"vulkan": "HLX_VULKAN_DEVICE_HASH_BYTES", "wgpu": "HLX_WGPU_DEVICE_HASH_BYTES"}


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(samples)


def vulkan_readback_gbps(nbytes: int, repeat: int, device: Any) -> tuple[float, str]:
    """Device-to-host GB/s of a plain copy of ``nbytes`` into the memory the Vulkan backend reads outputs
    from, and which memory that is."""
    from hlx_vulkan_raw.commands import HOST, HOST_READ, TRANSFER, TRANSFER_WRITE, Recorder
    from hlx_vulkan_raw.core import DeviceCore

    core = DeviceCore(device)
    try:
        src = core.allocator.create_buffer(nbytes)
        block = host = None
        if core.host_import is not None and not core.zero_copy:
            block = core.host_import.block(nbytes)
            dst, kind = block.buffer, "imported host memory"
        else:
            host = core.allocator.create_buffer(nbytes, host=True, readback=True)
            dst, kind = host.handle, "host-cached readback buffer"
        sub = core.submitter
        cb = sub.command_buffer()
        rec = Recorder(cb, one_time=False)
        rec.copy(src.handle, 0, dst, 0, nbytes)
        rec.barrier(TRANSFER, TRANSFER_WRITE, HOST, HOST_READ)
        rec.end()
        batch = sub.batch([cb])
        sub.wait(sub.submit(batch))
        ms = median_ms(lambda: sub.wait(sub.submit(batch)), repeat)
        if block is not None:
            block.release()
        for buf in (src, host):
            if buf is not None:
                core.allocator.free(buf)
        return nbytes / ms / 1e6, kind
    finally:
        core.close()


def torch_cpu_gbps(nbytes: int, repeat: int) -> float | None:
    """GB/s of ``tensor.cpu()`` of ``nbytes`` (into fresh pageable memory, as torch does), or None."""
    torch = cuda_torch()
    if torch is None:
        return None
    t = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda")
    t.cpu()
    torch.cuda.synchronize()
    return nbytes / median_ms(lambda: t.cpu(), repeat) / 1e6


Case = tuple[str, Callable[[Any], dict], int, Callable[[np.ndarray], bool]]


def cases(small: bool, rng: np.random.Generator) -> list[Case]:
    """(label, contract for a store, output bytes, check of the output)."""
    n = 512 if small else 4096
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    m = (1 << 20) if small else (64 << 20)
    x = rng.standard_normal(m, dtype=np.float32)
    y = rng.standard_normal(m, dtype=np.float32)
    rows = rng.choice(n, 8, replace=False)

    def gemm_ok(out: np.ndarray) -> bool:
        want = a[rows].astype(np.float64) @ b.astype(np.float64)
        return float(np.max(np.abs(out[rows] - want)) / np.max(np.abs(want))) < 1e-4

    return [(f"gemm {n}^3 f32", lambda store: hlx.kernels.gemm(a, b, store=store), 4 * n * n, gemm_ok),
            (f"add {m >> 20}M f32", lambda store: hlx.kernels.add(x, y, store=store), 4 * m,
             lambda out: bool(np.array_equal(out, x + y)))]


def measure(contract: dict, store: Any, nbytes: int, bw: float, check: Callable[[np.ndarray], bool],
            args: argparse.Namespace) -> tuple[float, ...]:
    """(hlx.run ms with the output brought to the host, gpu ms, execute ms, transfer ms, budget ms, hlx.run ms
    with the output left on the device, hash ms, copy ms, first write ms) for one case and store, the inputs
    resident and the output stored by a first run (whose downloaded output is checked)."""
    def run(persist: bool) -> Any:
        return hlx.run(contract, backend=args.backend, device=args.device, store=store, memo=False, persist=persist)

    out = run(True).arrays()[0]
    if not check(out):
        raise SystemExit("wrong output")
    hlx.flush()  # nothing left behind the first run: time the steady state, not that write
    timings: list[dict[str, float]] = []
    wall = median_ms(lambda: timings.append(run(True).timings), args.repeat)
    on_device = median_ms(lambda: run(False), args.repeat)
    hlx.flush()
    gpu = statistics.median(t.get("gpu_ms", float("nan")) for t in timings)
    host = statistics.median(t["host_ms"] for t in timings)
    transfer = nbytes / bw / 1e6
    hash_ms = median_ms(lambda: blake3_digest(encode_chunks(out)), args.repeat)
    copy_ms = median_ms(lambda: np.copy(out), args.repeat)
    memory = isinstance(store, hlx.MemoryStore)
    fresh = hlx.MemoryStore() if memory else hlx.DiskStore(tempfile.mkdtemp(prefix="hlx-w-"))
    t0 = time.perf_counter()
    hlx.collapse(out, store=fresh)
    hlx.flush()
    write_ms = (time.perf_counter() - t0) * 1e3
    return wall, gpu, host, transfer, gpu + transfer + SLACK_MS, on_device, hash_ms, copy_ms, write_ms


def hash_crossover(repeat: int) -> None:
    """One thread against all cores for BLAKE3 around blake3_digest's threshold (HASH_THREADS_MIN_BYTES)."""
    import blake3

    print("BLAKE3 one thread / all cores:", end="")
    for kib in (128, 256, 512, 1024, 4096):
        data = np.random.default_rng(kib).integers(0, 256, kib << 10, dtype=np.uint8).tobytes()
        one = median_ms(lambda data=data: blake3.blake3(data, max_threads=1).digest(), 20 * repeat)
        every = median_ms(lambda data=data: blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest(), 20 * repeat)
        print(f"  {kib} KiB {one / every:.2f}x", end="")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="512^3 and 1M: quick on lavapipe")
    parser.add_argument("--repeat", type=int, default=7, help="timed hlx.run calls per case and store")
    parser.add_argument("--backend", default="vulkan")
    parser.add_argument("--device", default=None)
    parser.add_argument("--crossover", action="store_true", help="also time BLAKE3 one thread against all cores")
    args = parser.parse_args()
    if args.crossover:
        hash_crossover(args.repeat)
    os.environ.setdefault("HLX_HOME", tempfile.mkdtemp(prefix="hlx-bench-"))

    rng = np.random.default_rng(0)
    stores = {"memory": hlx.MemoryStore(), "disk": None}  # None: the default DiskStore under HLX_HOME
    rows = []
    for label, contract_for, nbytes, check in cases(args.small, rng):
        bw, kind = vulkan_readback_gbps(nbytes, args.repeat, args.device if args.backend == "vulkan" else None)
        peer = torch_cpu_gbps(nbytes, args.repeat)
        print(f"{label}: {nbytes / 1e6:.1f} MB out; device-to-host {bw:.1f} GB/s (Vulkan copy into {kind})"
              + (f"; torch .cpu() {peer:.1f} GB/s" if peer else "; torch with CUDA not available"))
        for store_name, store in stores.items():
            rows.append((label, store_name) + measure(contract_for(store), store, nbytes, bw, check, args))

    env = DEVICE_HASH_ENV.get(args.backend)
    hashed = min_bytes(env) if env else 0
    print(f"\n{'case':<18} {'store':<7} {'hlx.run':>9} {'gpu':>8} {'execute':>9} {'transfer':>9} {'budget':>8} "
          f"{'ratio':>7} {'on dev':>8} {'hash':>7} {'copy':>7} {'write':>8}")
    print(f"{'':<18} {'':<7} {'ms':>9} {'ms':>8} {'host ms':>9} {'ms':>9} {'ms':>8} {'':>7} {'ms':>8} {'ms':>7} "
          f"{'ms':>7} {'ms':>8}")
    for label, store_name, wall, gpu, host, transfer, budget, on_device, hash_ms, copy_ms, write_ms in rows:
        print(f"{label:<18} {store_name:<7} {wall:9.2f} {gpu:8.3f} {host:9.2f} {transfer:9.2f} {budget:8.2f} "
              f"{wall / budget:6.2f}x {on_device:8.2f} {hash_ms:7.2f} {copy_ms:7.2f} {write_ms:8.2f}")
    where = (f"outputs of {hashed} bytes or more are hashed on the device and downloaded after the run" if hashed
             else "every output is hashed on the host and read back within the run")
    print(f"\nhlx.run = hlx.run(..., persist=True), the output brought to the host within the call\n({where});\n"
          "budget = gpu + output bytes / device-to-host bandwidth + 2 ms (goal: ratio <= 1.00x); execute = the "
          "backend's share of hlx.run\n(the run, not a download after it); on dev = hlx.run leaving the output on "
          "the device (the default);\nhash = BLAKE3 of the output's encoding on the host (what hashing on the "
          "device spares); copy = one host copy into fresh\npages (a download makes one); write = a first collapse "
          "of the output into an empty store of that kind, flushed.")

if __name__ == "__main__":
    main()
