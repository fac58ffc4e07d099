"""The Dask executor: contracts as tasks of a Dask cluster, one worker per device (worker.py).

A contract's execution key (hlx_core/memo) is its task key, computed here from the device class and
settings the workers report, so two submissions of one deterministic contract merge into one task, and the
client answers a contract it has a memo record for without asking the cluster. Tasks carry handles: with a
shared store (an fsspec URL) the client publishes the objects a contract needs there; without one it sends
their LC-B bytes along (each object once while tasks need it) and the outputs' bytes come back and are
checked against their handles before the client stores them. A worker killed mid-task is the engine's to
handle: the scheduler runs the task again elsewhere (``distributed.scheduler.allowed-failures`` times) and,
the key being a content address, the handles are the same.
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import CancelledError, Future
from typing import Any
from urllib.parse import parse_qs, urlparse

import distributed

from hlx_core import registry, runtime
from hlx_core.backend import DeviceInfo
from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle
from hlx_core.errors import BackendError, HLXError
from hlx_core.log import get_logger
from hlx_core.memo.key import derive_key, key_fields
from hlx_core.memo.memoized import MemoizedRun
from hlx_core.memo.policy import Memo, check_mode, enabled
from hlx_core.planner import plan as make_plan
from hlx_core.runtime import Result
from hlx_core.scale.base import Executor
from hlx_core.scale.objects import carry, needed, payload, receive
from hlx_core.scale.shared_store import SharedStore
from hlx_core.scale.worker import Task, describe, execute, safe_name

log = get_logger("hlx.scale")

#: How long the first submit waits for a worker to join a cluster given by address.
WORKER_WAIT_S = 60.0


class OwnHome(distributed.WorkerPlugin):
    """Gives each worker of a cluster HLX started a store of its own, ``<base>/<worker name>``, as
    ``hlx worker`` gives each of its workers (the default store follows HLX_HOME), restarted workers too."""

    name = "hlx-own-home"

    def __init__(self, base: str) -> None:
        self.base = base

    def setup(self, worker: Any) -> None:
        os.environ["HLX_HOME"] = os.path.join(self.base, safe_name(str(worker.name)))


class _Bundle:
    """Object bytes on their way to the workers as one task (``carry``), and how many tasks still need it."""

    def __init__(self, future: Any, handles: list[Handle]) -> None:
        self.future = future
        self.handles = handles
        self.users = 0


@dataclasses.dataclass(frozen=True)
class _Launch:
    """One submission of a contract's task: what the worker gets, under which key and restrictions, the
    objects it needs (``shipped``: those sent with it, none with a shared store), and what its answer is
    checked and recorded against; ``retried`` once its objects were published again."""

    task: Task
    key: str
    restrictions: dict[str, Any]
    objects: list[Handle]
    shipped: list[Handle]
    memoized: MemoizedRun | None
    contract: Handle
    started: float
    retried: bool = False


class _Target:
    """The workers of one backend: the device class their runs are keyed on and how tasks reach them."""

    def __init__(self, backend: str, info: dict[str, Any], restrictions: dict[str, Any]) -> None:
        self.backend = backend
        self.info = info
        self.restrictions = restrictions


class DaskExecutor(Executor):
    """Contracts over the workers of a ``distributed.Client``."""

    def __init__(self, client: Any, store: Store | None = None, *, owned: bool = False, cluster: Any = None,
                 home: str | None = None) -> None:
        self.client = client
        self._owned = owned  # a client this executor made (closed with it); a caller's client stays open
        self.store = store if store is not None else cas.get_default_store()
        self._shared = self.store.url if isinstance(self.store, SharedStore) else None
        self._cluster = cluster  # a LocalCluster this executor started, closed with it
        self._home = home  # its workers' stores, removed with it
        self._targets: dict[str, _Target] = {}
        self._bundles: dict[Handle, _Bundle] = {}  # object -> the bundle carrying it to the workers
        self._prefix = uuid.uuid4().hex[:12]  # task keys of this executor's bundles and unmerged tasks
        self._count = itertools.count()
        self._running: set[Any] = set()  # Dask futures of tasks in flight
        self._lock = threading.Lock()

    @classmethod
    def local(cls, workers: int, store: Store | None = None) -> "DaskExecutor":
        """A LocalCluster of ``workers`` processes (spawned), one thread each, each with its own store."""
        home = tempfile.mkdtemp(prefix="hlx-dask-")
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        try:
            client = distributed.Client(cluster, set_as_default=False)
            client.register_plugin(OwnHome(home))
            client.wait_for_workers(workers)
        except BaseException:
            cluster.close()
            shutil.rmtree(home, ignore_errors=True)
            raise
        return cls(client, store, owned=True, cluster=cluster, home=home)

    @classmethod
    def connect(cls, address: str, store: Store | None = None) -> "DaskExecutor":
        try:
            client = distributed.Client(address, set_as_default=False, timeout=WORKER_WAIT_S)
        except OSError as exc:
            raise HLXError("E_EXECUTOR", f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        return cls(client, store, owned=True)

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address if self.client.scheduler else '?'})"

    # -- the workers ------------------------------------------------------------------------------------
    def _target(self, backend: str) -> _Target:
        with self._lock:
            found = self._targets.get(backend)
        if found is not None:
            return found
        if not self.client.scheduler_info().get("workers"):
            self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        answers = self.client.run(describe, backend, on_error="return")
        infos = {addr: info for addr, info in answers.items() if isinstance(info, dict)}
        if not infos:
            why = "; ".join(f"{addr}: {exc}" for addr, exc in answers.items()) or "no workers"
            raise HLXError("E_EXECUTOR", f"no worker of {self!r} runs backend {backend!r} ({why})")
        by_class: dict[str, list[str]] = {}
        for addr, info in sorted(infos.items()):
            by_class.setdefault(info["class"], []).append(addr)
        tag, addrs = max(by_class.items(), key=lambda item: (len(item[1]), item[0]))
        info = infos[addrs[0]]
        resources = self.client.scheduler_info()["workers"].get(addrs[0], {}).get("resources", {})
        restrictions = {"resources": {f"hlx-class-{tag}": 1}} if f"hlx-class-{tag}" in resources else {}
        if len(by_class) > 1 and not restrictions:
            restrictions = {"workers": addrs, "allow_other_workers": False}
        found = _Target(info["backend"], info, restrictions)
        with self._lock:
            self._targets[backend] = found
        return found

    # -- submitting -------------------------------------------------------------------------------------
    def _submit(self, contract: Any, backend: str, memo: Memo, memo_salt: str) -> Future[Result]:
        out: Future[Result] = Future()
        try:
            self._start(out, contract, backend, check_mode(memo), memo_salt)
        except HLXError as exc:
            out.set_exception(exc)
        return out

    def _start(self, out: Future, contract: Any, backend: str, memo: Memo, salt: str) -> None:
        started = time.perf_counter()
        store = self.store
        value = runtime.as_contract(contract, store)
        planned = make_plan(value, store)
        handle = Handle(contract) if isinstance(contract, str) else cas.collapse(value, store=store)
        target = self._target(backend)
        info = target.info
        entry = registry.backend_entries().get(target.backend)
        fields = key_fields(planned.key, info["platform"], info["settings"], salt)
        key = derive_key(fields)
        memoized = None
        if entry is not None and enabled(memo, entry.backend, planned):
            memoized = MemoizedRun(memo, target.backend, store, planned, key, fields)
            hit = memoized.lookup()
            if hit is not None:
                now = time.perf_counter()
                timings = {"memo_ms": (now - started) * 1e3, "total_ms": (now - started) * 1e3}
                out.set_result(Result(hit.outputs, target.backend, info["device"], timings, planned.key, None,
                                      memo_hit=True, exec_key=key, _store=store))
                return
        merge = memoized is not None and memoized.mode in (None, True)
        task_key = f"hlx-{key}" if merge else f"hlx-{key}-{self._prefix}-{next(self._count)}"
        objects = needed(handle, store)
        if self._shared is not None:
            assert isinstance(store, SharedStore)
            for h in objects:
                store.publish(h)
            shipped: list[Handle] = []
        else:
            shipped = objects
        task = Task(str(handle), target.backend, memo, salt, self._shared)
        launch = _Launch(task, task_key, target.restrictions, objects, shipped, memoized, planned.key, started)
        self._launch(out, launch)

    def _launch(self, out: Future, launch: _Launch) -> None:
        bundles = self._ship(launch.shipped)
        future = self.client.submit(execute, launch.task, *(b.future for b in bundles), key=launch.key, pure=False,
                                    **launch.restrictions)
        with self._lock:  # a Dask future nobody references is released, and its task forgotten
            self._running.add(future)
        future.add_done_callback(lambda f: self._finish(f, out, launch, bundles))

    def _republish(self, out: Future, launch: _Launch, exc: HLXError) -> bool:
        """Run ``launch`` once more after publishing its objects again when its worker did not find one in
        the shared store (another process removed it after this client had published it); True when it
        is on its way."""
        if launch.retried or self._shared is None or exc.code != "E_HANDLE_NOT_FOUND":
            return False
        store = self.store
        assert isinstance(store, SharedStore)
        store.forget_published(launch.objects)
        for h in launch.objects:
            store.publish(h)
        log.info("republished the objects of %s after %s", launch.contract, exc)
        again = dataclasses.replace(launch, key=f"{launch.key}-again-{self._prefix}-{next(self._count)}",
                                    retried=True)
        self._launch(out, again)
        return True

    def _ship(self, handles: list[Handle]) -> list[_Bundle]:
        """The bundles carrying ``handles``' bytes: those already in flight, and one new bundle for the rest."""
        with self._lock:
            missing = [h for h in handles if h not in self._bundles]
            if missing:
                # A task that returns the bytes it carries, not scattered data: the scheduler keeps the task,
                # so a worker that dies holding the bytes loses nothing (they are made again elsewhere). A key
                # of its own each time: a released key may still be on its way out of the cluster.
                items = [(str(h), payload(h, self.store)) for h in missing]
                key = f"hlx-objects-{self._prefix}-{next(self._count)}"
                bundle = _Bundle(self.client.submit(carry, items, key=key, pure=False), missing)
                for h in missing:
                    self._bundles[h] = bundle
            used = list({id(b): b for b in (self._bundles[h] for h in handles)}.values())
            for bundle in used:
                bundle.users += 1
            return used

    def _release(self, used: list[_Bundle]) -> None:
        """Tasks that needed ``used`` are done: a bundle no task needs any more leaves the cluster."""
        with self._lock:
            for bundle in used:
                bundle.users -= 1
                if bundle.users == 0:
                    for h in bundle.handles:
                        if self._bundles.get(h) is bundle:
                            del self._bundles[h]

    def _finish(self, future: Any, out: Future, launch: _Launch, bundles: list[_Bundle]) -> None:
        """The task's answer as the Result (outputs verified into the store) or as an HLXError."""
        try:
            with self._lock:
                self._running.discard(future)
            self._release(bundles)
            out.set_result(self._result(future, launch.memoized, launch.contract, launch.started))
        except HLXError as exc:
            try:
                if not self._republish(out, launch, exc):
                    out.set_exception(exc)
            except BaseException as again:
                out.set_exception(again)
        except BaseException as exc:  # the Future carries it to whoever waits
            out.set_exception(exc)

    def _result(self, future: Any, memoized: MemoizedRun | None, contract: Handle, started: float) -> Result:
        try:
            answer = future.result()
        except HLXError:
            raise
        except distributed.KilledWorker as exc:
            raise HLXError("E_WORKER_LOST", f"the workers running {contract} died too often: {exc}") from exc
        except (CancelledError, distributed.client.FutureCancelledError, OSError) as exc:
            raise HLXError("E_WORKER_LOST", f"{contract} did not finish: the cluster went away "
                                            f"({type(exc).__name__}: {exc})") from exc
        except Exception as exc:
            raise BackendError("E_PLUGIN", f"a Dask worker failed running {contract}: {type(exc).__name__}: {exc}"
                               ) from exc
        outputs = [Handle(h) for h in answer["outputs"]]
        if answer["payloads"] is not None:
            for h, data in zip(outputs, answer["payloads"]):
                receive(h, data, self.store)
        timings = dict(answer["timings"])
        if memoized is not None:
            if answer["exec_key"] not in (None, memoized.key):
                log.warning("worker keyed %s as %s, the client as %s (settings changed on the worker?)",
                            contract, answer["exec_key"], memoized.key)
            device = DeviceInfo(index=-1, name=answer["device"], kind="other", uuid=answer["uuid"])
            memoized.finish(outputs, device, timings, behind=False)
        timings["total_ms"] = (time.perf_counter() - started) * 1e3
        return Result(outputs, answer["backend"], answer["device"], timings, contract, None,
                      memo_hit=answer["memo_hit"], exec_key=memoized.key if memoized is not None else None,
                      _store=self.store)

    def _close(self) -> None:
        with self._lock:
            running = list(self._running)
        if running:
            distributed.wait(running)  # what was submitted finishes, and its results are stored
        with self._lock:
            self._bundles.clear()
        if self._owned:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)


def parse_local(spec: str) -> int:
    """The worker count of ``dask+local://?workers=N`` (default 2)."""
    query = parse_qs(urlparse(spec).query)
    text = query.pop("workers", ["2"])[-1]
    if query or not text.isdigit() or int(text) < 1:
        raise HLXError("E_EXECUTOR", f"{spec!r}: expected dask+local://?workers=N with N >= 1")
    return int(text)
