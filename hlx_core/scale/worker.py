"""The worker's side of the Dask executor: what a task runs, what a worker says about its device, and
``hlx worker``, which starts one Dask worker per device.

A task is a ``Task`` (handles and options, never arrays) and the LC-B bytes of the objects the worker may
lack; the worker checks every object against its handle before storing it, runs the contract with
``hlx.run`` on its one device and returns handles (and, unless it shares a store with the client, the
outputs' bytes). A worker whose device is lost leaves the cluster and hands the task back to the
scheduler, which runs it elsewhere. Each worker process opens its own device (a spawned process: GPU state
does not survive fork) and keeps its store under its own ``HLX_HOME``.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hlx_core import registry, runtime
from hlx_core.backend import DeviceInfo
from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec import encode
from hlx_core.codec.handle import blake3_digest
from hlx_core.errors import HLXError
from hlx_core.memo.key import platform, settings
from hlx_core.memo.policy import Memo
from hlx_core.scale.objects import payload, receive_all
from hlx_core.scale.placement import identities
from hlx_core.scale.shared_store import SharedStore
from hlx_core.settings import hlx_home

#: A worker started with ``--store URL`` (``hlx worker``) keeps its objects there, behind its HLX_HOME.
ENV_STORE = "HLX_WORKER_STORE"
#: Codes after which the worker's device cannot take more work: the worker leaves the cluster.
DEVICE_GONE = frozenset({"E_DEVICE_LOST"})


@dataclass(frozen=True)
class Task:
    """One contract for a worker: its handle, how to run it, and the store shared with the client (None:
    the outputs travel back as bytes). The objects the worker may lack come beside it, in bundles."""

    contract: str
    backend: str
    memo: Memo
    salt: str
    store_url: str | None


_stores: dict[str | None, Store] = {}
_stores_lock = threading.Lock()


def worker_store(url: str | None) -> Store:
    """The store tasks run against here: the shared store ``url`` (or this worker's ``--store``) in front
    of the default store, else the default store (a DiskStore under this worker's HLX_HOME)."""
    url = url or os.environ.get(ENV_STORE) or None
    if url is None:
        return cas.get_default_store()
    with _stores_lock:
        found = _stores.get(url)
        if found is None:
            found = _stores[url] = SharedStore(url)
        return found


def safe_name(text: str) -> str:
    """``text`` as a folder or worker name: letters, digits, ``-`` and ``_`` kept, anything else ``_``."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def class_tag(device_platform: dict[str, Any]) -> str:
    """A short name for a device class (hlx_core.memo.key.platform): the Dask resource ``hlx-class-<tag>``
    that keeps a task on workers whose results share its execution key."""
    return blake3_digest([encode(device_platform)]).hex()[:16]


def describe(backend: str) -> dict[str, Any]:
    """What the client needs to key this worker's runs as the worker will: the backend, its device class,
    the byte-changing settings as this process has them, the kernels it declares deterministic."""
    name, session = runtime.session(backend)
    entry = registry.backend_entries()[name]
    device_platform = platform(name, entry.version, session.device)
    return {"backend": name, "platform": device_platform, "class": class_tag(device_platform),
            "settings": settings(tuple(entry.backend.byte_settings)), "device": session.device.name,
            "uuid": session.device.uuid, "pid": os.getpid()}


def execute(task: Task, *bundles: list[tuple[str, bytes]]) -> dict[str, Any]:
    """Run ``task`` here (a Dask task): store the objects that came with it (verified), run, answer."""
    store = worker_store(task.store_url)
    for bundle in bundles:
        receive_all(bundle, store)
    try:
        result = runtime.run(task.contract, task.backend, None, store, memo=task.memo, memo_salt=task.salt,
                             persist=True)
    except HLXError as exc:
        if exc.code in DEVICE_GONE:
            _leave(exc)
        raise
    shared = task.store_url is not None
    return {"outputs": [str(h) for h in result.outputs], "backend": result.backend, "device": result.device,
            "uuid": runtime.session(result.backend)[1].device.uuid, "timings": dict(result.timings),
            "memo_hit": result.memo_hit, "exec_key": result.exec_key, "pid": os.getpid(),
            "payloads": None if shared else [payload(h, store) for h in result.outputs]}


def _leave(exc: HLXError) -> None:
    """Take this worker (and its nanny, which would restart it on the same device) out of the cluster and
    give the task back to the scheduler, which places it on another worker."""
    from distributed import Reschedule, get_worker

    worker = get_worker()
    worker.loop.add_callback(worker.close, nanny=True, reason=f"hlx: {exc.code} on {worker.name}")
    raise Reschedule() from exc


# -- hlx worker ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkerSpec:
    """One Dask worker process of ``hlx worker``: its name, environment and resources."""

    name: str
    env: dict[str, str]
    resources: dict[str, int]


def pin_variable(backend: str) -> str | None:
    """The variable that pins ``backend``'s default device in a worker process."""
    return {"vulkan": "HLX_VULKAN_DEVICE", "wgpu": "HLX_WGPU_ADAPTER"}.get(backend)


def plan_workers(backend: str, devices: str, home: Path, store: str | None) -> list[WorkerSpec]:
    """A worker per chosen device: pinned by UUID (by index when two devices share one, as two copies of a
    driver do), its own HLX_HOME, resources ``hlx-<backend>`` and ``hlx-class-<tag>``."""
    name, _ = runtime.session(backend)
    entry = registry.backend_entries()[name]
    listed: Sequence[DeviceInfo] = entry.availability().devices
    idents = identities(listed)
    chosen = [(i, d) for i, (ident, d) in enumerate(zip(idents, listed))
              if devices == "all" or ident in devices.split(",") or str(d.index) in devices.split(",")]
    if not chosen:
        raise HLXError("E_EXECUTOR", f"--devices {devices!r} names none of {name}'s devices: "
                                     + ", ".join(f"{d.index} {ident}" for ident, d in zip(idents, listed)))
    unique = {d.uuid for d in listed if d.uuid and sum(o.uuid == d.uuid for o in listed) == 1}
    variable = pin_variable(name)
    specs = []
    for i, device in chosen:
        ident = idents[i]
        safe = safe_name(ident)
        env = {"HLX_HOME": str(home / safe)}
        if store:
            env[ENV_STORE] = store
        if variable is not None:
            env[variable] = device.uuid if device.uuid in unique else str(device.index)
        tag = class_tag(platform(name, entry.version, device))
        specs.append(WorkerSpec(f"hlx-{name}-{safe}", env, {f"hlx-{name}": 1, f"hlx-class-{tag}": 1}))
    return specs


def dask_worker_command(scheduler: str, spec: WorkerSpec) -> list[str]:
    """The plain ``dask worker`` command line of one worker (its environment comes beside it)."""
    resources = ",".join(f"{k}={v}" for k, v in spec.resources.items())
    return [sys.executable, "-m", "distributed.cli.dask_worker", scheduler, "--nthreads", "1", "--nworkers", "1",
            "--name", spec.name, "--resources", resources]


def start_workers(scheduler: str, specs: Sequence[WorkerSpec]) -> list[subprocess.Popen]:
    """Start every worker (each a process of its own, spawned, never forked from one holding a device)."""
    return [subprocess.Popen(dask_worker_command(scheduler, spec), env={**os.environ, **spec.env})
            for spec in specs]


def cmd_worker(args: Any) -> int:
    """``hlx worker SCHEDULER``: one Dask worker per device until interrupted (or every worker ended)."""
    scheduler = args.scheduler.removeprefix("dask://")
    if "://" not in scheduler:
        scheduler = f"tcp://{scheduler}"
    home = Path(args.home) if args.home else hlx_home() / "workers"
    specs = plan_workers(args.backend, args.devices, home, args.store)
    for spec in specs:
        pinned = " ".join(f"{k}={v}" for k, v in spec.env.items())
        print(f"{spec.name}: {pinned} {' '.join(dask_worker_command(scheduler, spec)[1:])}", flush=True)
    if args.dry_run:
        return 0
    procs = start_workers(scheduler, specs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # a terminated launcher ends its workers too
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    return max((p.returncode or 0 for p in procs), default=0)
