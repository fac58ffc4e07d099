"""The proof of determinism: run one contract many times, here and in fresh processes, count what came out.

``prove`` runs a contract ``runs`` times in this process and ``runs`` times in each of ``processes`` fresh
Python processes (started as ``python -m hlx_core.determinism HANDLE ...``, all at once, on the same
store), with memo off so every run executes, and counts the distinct tuples of output handles. One means
every run gave the same bytes. ``hlx verify-determinism`` prints the proof and exits 0 only then.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from hlx_core import runtime
from hlx_core.cas import api as cas
from hlx_core.cas.disk import DiskStore
from hlx_core.codec.handle import Handle
from hlx_core.errors import HLXError
from hlx_core.input_files import load_contract

Outputs = tuple[Handle, ...]


@dataclass(frozen=True)
class Proof:
    """What ``prove`` saw: per distinct tuple of output handles, how many runs gave it and where
    (``"this process"`` or ``"process <i>"``)."""

    contract: Handle
    backend: str
    device: str
    runs: int
    processes: int
    seen: dict[Outputs, Counter[str]] = field(repr=False)
    seconds: float  # this process's runs
    process_seconds: float  # the fresh processes, start to exit, run side by side

    @property
    def distinct(self) -> int:
        return len(self.seen)

    @property
    def total_runs(self) -> int:
        return self.runs * (1 + self.processes)

    def lines(self) -> list[str]:
        """The proof as ``hlx verify-determinism`` prints it."""
        out = [f"contract {self.contract} on {self.backend} ({self.device}), memo off",
               f"runs: {self.runs} in this process"
               + (f", {self.runs} in each of {self.processes} fresh process(es)" if self.processes else "")
               + f" ({self.total_runs} in all)",
               f"distinct output handles: {self.distinct}",
               f"time: {self.seconds:.3f} s in this process ({self.seconds / self.runs * 1e3:.3f} ms a run)"
               + (f", {self.process_seconds:.3f} s for the fresh processes" if self.processes else "")]
        if self.distinct > 1:
            for outputs, where in sorted(self.seen.items(), key=lambda item: -sum(item[1].values())):
                places = ", ".join(f"{n} in {w}" for w, n in sorted(where.items()))
                out.append(f"  {sum(where.values())} run(s): {', '.join(outputs)} ({places})")
        return out


def run_many(contract: Any, runs: int, backend: str, device: str | None, store: Any) -> tuple[list[Outputs],
                                                                                              runtime.Result]:
    """The output handles of ``runs`` runs (memo off) and the last run's Result."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise HLXError("E_CONFIG", f"runs={runs!r}: expected an int >= 1")
    seen = []
    for _ in range(runs):
        result = runtime.run(contract, backend=backend, device=device, store=store, memo=False)
        seen.append(tuple(result.outputs))
    return seen, result


def prove(contract: Any, runs: int, backend: str = runtime.AUTO, device: str | None = None,
          processes: int = 0, store: Any = None) -> Proof:
    """Run ``contract`` ``runs`` times here and in each of ``processes`` fresh processes (which need a
    DiskStore: they read the contract from it)."""
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
        raise HLXError("E_CONFIG", f"processes={processes!r}: expected an int >= 0")
    store = store if store is not None else cas.get_default_store()
    if processes and not isinstance(store, DiskStore):
        raise HLXError("E_CONFIG", f"fresh processes read the contract from a DiskStore; {store!r} is not one")
    start = time.perf_counter()
    here, result = run_many(contract, runs, backend, device, store)
    seconds = time.perf_counter() - start
    seen: dict[Outputs, Counter[str]] = {}
    for outputs in here:
        seen.setdefault(outputs, Counter())["this process"] += 1
    start = time.perf_counter()
    if processes:
        store.flush()  # the fresh processes resolve the contract and its inputs from the files
        for i, outputs_list in enumerate(_in_fresh_processes(result.contract, runs, result.backend, device,
                                                              processes, store)):
            for outputs in outputs_list:
                seen.setdefault(outputs, Counter())[f"process {i}"] += 1
    return Proof(result.contract, result.backend, result.device, runs, processes, seen, seconds,
                 time.perf_counter() - start)


def _in_fresh_processes(contract: Handle, runs: int, backend: str, device: str | None, processes: int,
                        store: DiskStore) -> list[list[Outputs]]:
    argv = [sys.executable, "-m", "hlx_core.determinism", contract, "--runs", str(runs), "--backend", backend]
    if device is not None:
        argv += ["--device", str(device)]
    env = {**os.environ, "HLX_HOME": str(store.path)}
    children = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                for _ in range(processes)]
    replies = [child.communicate() for child in children]
    found = []
    for i, (child, (out, err)) in enumerate(zip(children, replies)):
        try:
            reply = json.loads(out)
        except ValueError:
            raise HLXError("E_BACKEND", f"fresh process {i} failed (exit status {child.returncode}): "
                                        f"{err.decode(errors='replace').strip()[-2000:]}") from None
        if "error" in reply:
            raise HLXError(reply["error"]["code"], f"fresh process {i}: {reply['error']['message']}")
        found.append([tuple(Handle(h) for h in outputs) for outputs in reply["outputs"]])
    return found


def cmd_verify_determinism(args: argparse.Namespace) -> int:
    """``hlx verify-determinism FILE|HANDLE --runs N --backend B [--device D] [--processes P]``."""
    store = cas.get_default_store()
    contract = load_contract(args.file, store, args.allow_path)
    proof = prove(contract, args.runs, args.backend, args.device, args.processes, store)
    print("\n".join(proof.lines()))
    return 0 if proof.distinct == 1 else 1


def _child(argv: Sequence[str]) -> int:
    """A fresh process's share: run the stored contract, print its output handles as JSON."""
    parser = argparse.ArgumentParser(prog="python -m hlx_core.determinism")
    parser.add_argument("contract")
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--backend", required=True)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    try:
        seen, _ = run_many(Handle(args.contract), args.runs, args.backend, args.device, cas.get_default_store())
    except HLXError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message}}))
        return 1
    print(json.dumps({"outputs": [list(outputs) for outputs in seen]}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
