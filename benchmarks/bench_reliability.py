"""Reliability under load, faults and bad input: fuzzed LC-B, kill -9 while writing, threads, processes, drift.

Five checks, each printing what it did and what it found; the exit status is 1 when any fails.

- fuzz: ``--fuzz`` inputs through ``hlx.decode``: random byte strings and mutations (flipped, overwritten,
  inserted, deleted, duplicated bytes, truncations, splices) of valid encodings (contracts, tensors of every
  dtype, handles, nested containers). Every refusal must be an HLXError (counted by code); every accepted
  input must be canonical (it re-encodes to the same bytes).
- kill: ``--kills`` child processes, ``--kill-parallel`` at a time, write to one DiskStore (``collapse``,
  ``collapse(behind=True)`` + ``flush``, ``hlx.run(persist=True)`` on the cpu backend) and are killed with
  SIGKILL at a random moment (0 to 1 s after their first write). Afterwards every object file must verify
  (no partial or corrupt object), and every handle a child logged as written must be there (nothing lost).
- threads: ``--threads`` threads run ``--thread-runs`` adds with new inputs on the cpu backend; every result
  must equal NumPy's.
- processes: ``--processes`` spawned processes run ``--process-runs`` adds likewise on one DiskStore while
  this process loops ``gc(max_bytes=0)`` with the default grace period beside them: no run may fail.
- drift: ``--drift-runs`` warm runs, each with a NEW small input (an add of 256 float32), on ``--backend``:
  per block of ``--block`` runs the median run time and resident memory (as bench_long_loop.py); fails when
  memory grows by more than ``--max-growth-mib`` or the last block is ``--max-slowdown`` times the first.

Everything is written under a fresh temporary HLX_HOME (``--home`` to choose one), never the user's cache.

    .venv/bin/python benchmarks/bench_reliability.py [--quick] [--backend vulkan] [--only fuzz,kill,...]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from _common import rss_bytes

import hlx
from hlx.kernels import add

CHECKS = ("fuzz", "kill", "threads", "processes", "drift")
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16",
          "float32", "float64")


# -- fuzz ----------------------------------------------------------------------------------------------

def seed_values(rng: np.random.Generator) -> list[Any]:
    """Valid values of every kind LC-B holds, to mutate."""
    tensors = [rng.integers(0, 255, size=shape).astype(dtype)
               for dtype in DTYPES for shape in ((), (3,), (2, 3), (1, 0, 2))]
    handle = hlx.collapse(np.arange(4, dtype=np.float32), store=hlx.MemoryStore())
    contract = add(np.ones(8, np.float32), np.zeros(8, np.float32), store=hlx.MemoryStore())
    return [*tensors, handle, contract, None, True, False, 0, -1, 127, 128, -33, 2**63 - 1, -(2**63), 2**64 - 1,
            0.5, -1e300, "", "näive ✓", "x" * 300, b"", bytes(range(256)), [], [[[]]], {},
            {"a": [1, 2.5, "s", b"b", None], "b": {"c": handle}, "é": tensors[5]}, list(range(40)),
            {str(i): i for i in range(20)}]


def mutate(data: bytes, pool: list[bytes], r: random.Random) -> bytes:
    """One random mutation of ``data``."""
    b = bytearray(data)
    kind = r.randrange(7)
    if kind == 0 and b:
        for _ in range(r.randint(1, 4)):
            b[r.randrange(len(b))] ^= 1 << r.randrange(8)
    elif kind == 1 and b:
        b[r.randrange(len(b))] = r.randrange(256)
    elif kind == 2:
        i = r.randint(0, len(b))
        b[i:i] = r.randbytes(r.randint(1, 8))
    elif kind == 3 and b:
        i = r.randrange(len(b))
        del b[i:i + r.randint(1, 8)]
    elif kind == 4 and b:
        i = r.randrange(len(b))
        b[i:i] = b[i:i + r.randint(1, 16)]
    elif kind == 5:
        del b[r.randint(0, len(b)):]
    else:
        other = r.choice(pool)
        b = b[:r.randint(0, len(b))] + other[r.randint(0, len(other)):]
    return bytes(b)


def check_fuzz(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    pool = [hlx.encode(v) for v in seed_values(np.random.default_rng(seed))]
    codes: Counter[str] = Counter()
    raw: list[str] = []
    accepted = noncanonical = 0
    t0 = time.perf_counter()
    for i in range(n):
        data = r.randbytes(r.randint(0, 64)) if i % 4 == 0 else mutate(r.choice(pool), pool, r)
        try:
            value = hlx.decode(data)
        except hlx.HLXError as exc:
            codes[exc.code] += 1
            continue
        except Exception as exc:  # noqa: BLE001 (counting what must never happen)
            raw.append(f"{type(exc).__name__}: {exc} on {data[:40].hex()}")
            continue
        accepted += 1
        if hlx.encode(value) != data:
            noncanonical += 1
    seconds = time.perf_counter() - t0
    print(f"fuzz: {n} inputs ({n // 4 + (n % 4 > 0)} random, the rest mutated from {len(pool)} valid encodings) "
          f"in {seconds:.1f} s: {accepted} accepted, {sum(codes.values())} refused with a code, "
          f"{len(raw)} raw exceptions")
    print("  refused by code: " + ", ".join(f"{code} {count}" for code, count in codes.most_common()))
    failed = [f"fuzz: {len(raw)} non-HLXError exceptions, first: {raw[0]}"] if raw else []
    if noncanonical:
        failed.append(f"fuzz: {noncanonical} accepted inputs do not re-encode to themselves")
    return failed


# -- kill -9 ------------------------------------------------------------------------------------------

def kill_child(folder: str, log: str, seed: int, ready: Any) -> None:
    """Write to the store at ``folder`` until killed; every handle known written goes to ``log``."""
    store = hlx.DiskStore(folder)
    rng = np.random.default_rng(seed)
    with open(log, "a", buffering=1) as out:
        for i in range(1_000_000):
            x = rng.random(int(rng.integers(1, 1 << 18)), dtype=np.float32)  # up to 1 MiB
            step = i % 3
            if step == 0:
                written = [hlx.collapse(x, store=store)]
            elif step == 1:
                written = [hlx.collapse(x, store=store, behind=True), hlx.collapse(x[::2], store=store, behind=True)]
                hlx.flush(store)
            else:
                y = rng.random(x.size, dtype=np.float32)
                written = list(hlx.run(add(x, y, store=store), backend="cpu", store=store, persist=True).outputs)
            out.write("".join(f"{h}\n" for h in written))
            if i == 0:
                ready.set()


def check_kill(kills: int, parallel: int, home: Path, seed: int) -> list[str]:
    ctx = mp.get_context("spawn")
    folder, logs = home / "kill-store", home / "kill-logs"
    logs.mkdir(parents=True, exist_ok=True)
    r = random.Random(seed)
    t0 = time.perf_counter()
    delays = []
    for wave in range(0, kills, parallel):
        children = []
        for k in range(wave, min(wave + parallel, kills)):
            ready = ctx.Event()
            p = ctx.Process(target=kill_child, args=(str(folder), str(logs / f"{k}.log"), seed + k, ready))
            p.start()
            children.append((p, ready))
        for _, ready in children:
            ready.wait(120)
        delay = r.uniform(0.0, 1.0)
        delays.append(delay)
        time.sleep(delay)
        for p, _ in children:
            os.kill(p.pid, signal.SIGKILL)
        for p, _ in children:
            p.join()
    store = hlx.DiskStore(folder)
    corrupt: list[str] = []
    handles = list(store.handles())
    for h in handles:
        try:
            store.get(h)
        except hlx.HLXError as exc:
            corrupt.append(f"{h}: [{exc.code}] {exc.message}")
    logged = {line.strip() for log in logs.glob("*.log") for line in log.read_text().splitlines()
              if line.strip().startswith("&h_") and len(line.strip()) > 70}
    present = set(str(h) for h in handles)
    lost = sorted(h for h in logged if h not in present)
    stats = store.stats()
    print(f"kill: {kills} children ({parallel} at a time) SIGKILLed 0-1000 ms into their writes "
          f"(median {statistics.median(delays) * 1e3:.0f} ms) in {time.perf_counter() - t0:.1f} s: "
          f"{len(handles)} objects ({stats['bytes'] / 2**20:.1f} MiB), all re-hashed: {len(corrupt)} corrupt; "
          f"{len(logged)} logged as written, {len(lost)} missing; {stats['temp_files']} temp file(s) left "
          f"({stats['temp_bytes'] / 2**20:.1f} MiB, removed by gc after an hour)")
    failed = [f"kill: {len(corrupt)} objects do not verify, first: {corrupt[0]}"] if corrupt else []
    if lost:
        failed.append(f"kill: {len(lost)} handles logged as written are missing, first: {lost[0]}")
    return failed


# -- threads and processes ------------------------------------------------------------------------------

def run_adds(runs: int, seed: int, store: Any = None) -> tuple[int, int, dict[str, int]]:
    """(right, wrong, errors by code) of ``runs`` adds with new inputs on the cpu backend."""
    rng = np.random.default_rng(seed)
    right = wrong = 0
    errors: Counter[str] = Counter()
    for _ in range(runs):
        n = int(rng.integers(1, 4096))
        a, b = rng.random(n, dtype=np.float32), rng.random(n, dtype=np.float32)
        try:
            got = hlx.run(add(a, b, store=store), backend="cpu", store=store).arrays()[0]
        except hlx.HLXError as exc:
            errors[exc.code] += 1
            continue
        if np.array_equal(got, a + b):
            right += 1
        else:
            wrong += 1
    return right, wrong, dict(errors)


def _outcome(check: str, runs: int, results: list[tuple[int, int, dict[str, int]]]) -> tuple[str, list[str]]:
    """The summary of the workers' (right, wrong, errors) tallies, and what failed (not every run right)."""
    errors: Counter[str] = Counter()
    for _, _, e in results:
        errors.update(e)
    right, wrong = sum(r[0] for r in results), sum(r[1] for r in results)
    summary = f"{right} right, {wrong} wrong, {sum(errors.values())} errors {dict(errors)}"
    return summary, [] if right == runs else [f"{check}: {wrong} wrong results, errors {dict(errors)}"]


def check_threads(threads: int, runs: int, seed: int) -> list[str]:
    results: list[tuple[int, int, dict[str, int]]] = []
    per = [runs // threads + (i < runs % threads) for i in range(threads)]
    t0 = time.perf_counter()
    workers = [threading.Thread(target=lambda n=n, i=i: results.append(run_adds(n, seed + i)))
               for i, n in enumerate(per)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    summary, failed = _outcome("threads", runs, results)
    print(f"threads: {threads} threads, {runs} adds with new inputs (cpu backend) in "
          f"{time.perf_counter() - t0:.1f} s: {summary}")
    return failed


def check_processes(processes: int, runs: int, home: Path, seed: int) -> list[str]:
    ctx = mp.get_context("spawn")
    per = [runs // processes + (i < runs % processes) for i in range(processes)]
    stop = threading.Event()
    passes = [0]

    def gc_loop() -> None:  # what `hlx cache gc --max-bytes 0` in a shell loop does, beside the runs
        store = hlx.DiskStore(home)
        while not stop.is_set():
            store.gc(max_bytes=0, grace_seconds=60.0)
            passes[0] += 1

    t0 = time.perf_counter()
    gc = threading.Thread(target=gc_loop)
    gc.start()
    try:
        with ctx.Pool(processes) as pool:
            results = pool.starmap(run_adds, [(n, seed + 1000 + i) for i, n in enumerate(per)])
    finally:
        stop.set()
        gc.join()
    summary, failed = _outcome("processes", runs, results)
    print(f"processes: {processes} spawned processes, {runs} adds with new inputs (cpu backend, one DiskStore) "
          f"beside {passes[0]} gc(max_bytes=0) passes in {time.perf_counter() - t0:.1f} s: {summary}")
    return failed


# -- drift ----------------------------------------------------------------------------------------------

def check_drift(runs: int, block: int, backend: str, device: str | None, max_growth_mib: float,
                max_slowdown: float, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    b = rng.random(256, dtype=np.float32)
    wrong = 0

    def one(backend: str) -> tuple[float, str]:
        nonlocal wrong
        a = rng.random(256, dtype=np.float32)
        t0 = time.perf_counter()
        result = hlx.run(add(a, b), backend=backend, device=device, memo=False)
        seconds = time.perf_counter() - t0
        wrong += not np.array_equal(result.arrays()[0], a + b)
        return seconds, result.backend

    _, name = one(backend)
    blocks = max(runs // block, 1)
    for _ in range(block):  # warm-up, not measured
        one(name)
    print(f"drift: {blocks} blocks of {block} warm runs on {name}, each an add of 256 float32 with a new input")
    print("  (after each block, not timed, hlx.flush() waits for the store's writes behind the runs: its time "
          "is the writer's backlog; RSS is read after it)")
    print(f"  {'block':>5s} {'runs':>7s} {'median µs':>10s} {'flush ms':>9s} {'RSS MiB':>9s}")
    hlx.flush()
    medians, rss = [], []
    for i in range(blocks):
        medians.append(statistics.median(one(name)[0] for _ in range(block)))
        t0 = time.perf_counter()
        hlx.flush()
        flush_ms = (time.perf_counter() - t0) * 1e3
        rss.append(rss_bytes())
        print(f"  {i + 1:5d} {(i + 1) * block:7d} {medians[-1] * 1e6:10.1f} {flush_ms:9.1f} {rss[-1] / 2**20:9.2f}",
              flush=True)
    growth, slowdown = (rss[-1] - rss[0]) / 2**20, medians[-1] / medians[0]
    print(f"  RSS {rss[0] / 2**20:.2f} -> {rss[-1] / 2**20:.2f} MiB: {growth:+.2f} MiB (bound {max_growth_mib}); "
          f"median run {medians[0] * 1e6:.1f} -> {medians[-1] * 1e6:.1f} µs: {slowdown:.2f}x (bound {max_slowdown}x); "
          f"{wrong} wrong results")
    failed = [f"drift: memory grew by {growth:.2f} MiB"] if growth > max_growth_mib else []
    if slowdown > max_slowdown:
        failed.append(f"drift: the last block is {slowdown:.2f}x slower than the first")
    if wrong:
        failed.append(f"drift: {wrong} wrong results")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run of every check (a minute on 2 cores)")
    parser.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated subset of {','.join(CHECKS)}")
    parser.add_argument("--backend", default="auto", help="drift: backend name, or auto (the default)")
    parser.add_argument("--device", default=None, help="drift: device of that backend")
    parser.add_argument("--fuzz", type=int, default=None, help="fuzzed inputs (200000; quick 20000)")
    parser.add_argument("--kills", type=int, default=None, help="children killed (50; quick 6)")
    parser.add_argument("--kill-parallel", type=int, default=2, help="children writing at once")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--thread-runs", type=int, default=None, help="runs over all threads (2500; quick 400)")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--process-runs", type=int, default=None, help="runs over all processes (900; quick 200)")
    parser.add_argument("--drift-runs", type=int, default=None, help="measured drift runs (10000; quick 2000)")
    parser.add_argument("--block", type=int, default=None, help="drift runs per block (1000; quick 500)")
    parser.add_argument("--max-growth-mib", type=float, default=8.0)
    parser.add_argument("--max-slowdown", type=float, default=1.3)
    parser.add_argument("--seed", type=int, default=None, help="random seed (printed; default: new each run)")
    parser.add_argument("--home", default=None, help="HLX_HOME to use (default: a new temporary folder)")
    args = parser.parse_args()

    def pick(value: int | None, full: int, quick: int) -> int:
        return value if value is not None else (quick if args.quick else full)

    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(only) - set(CHECKS)
    if unknown:
        parser.error(f"unknown checks {sorted(unknown)}; choose from {', '.join(CHECKS)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    with tempfile.TemporaryDirectory(prefix="hlx-reliability-") as tmp:
        home = Path(args.home or tmp)
        os.environ["HLX_HOME"] = str(home)
        print(f"seed {seed}; HLX_HOME {home}; {os.cpu_count()} CPU cores; numpy {np.__version__}")
        failed: list[str] = []
        if "fuzz" in only:
            failed += check_fuzz(pick(args.fuzz, 200_000, 20_000), seed)
        if "kill" in only:
            failed += check_kill(pick(args.kills, 50, 6), args.kill_parallel, home, seed)
        if "threads" in only:
            failed += check_threads(args.threads, pick(args.thread_runs, 2500, 400), seed)
        if "processes" in only:
            failed += check_processes(args.processes, pick(args.process_runs, 900, 200), home, seed)
        if "drift" in only:
            failed += check_drift(pick(args.drift_runs, 10_000, 2000), pick(args.block, 1000, 500), args.backend,
                                  args.device, args.max_growth_mib, args.max_slowdown, seed)
        hlx.flush()
    print("\n" + ("FAIL: " + "; ".join(failed) if failed else "OK: every check passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
