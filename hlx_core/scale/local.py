"""The local executor: this process, one worker thread per device of a backend.

Each device has a queue and one thread that runs its contracts through ``hlx.run`` in order, so a device
is never idle while work waits and never shared between two runs; placement (placement.py) picks the queue.
The threads are made for a backend the first time a contract asks for it and end when the executor
closes, after the work already queued.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from hlx_core import registry, runtime
from hlx_core.cas import api as cas
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle
from hlx_core.errors import HLXError
from hlx_core.memo.policy import Memo
from hlx_core.plan import InputRef
from hlx_core.planner import plan as make_plan
from hlx_core.runtime import Result
from hlx_core.scale.base import Executor
from hlx_core.scale.placement import Device, Placement, identities

_Job = tuple[Future, Any, Memo, str]


def inputs_of(contract: Any, store: Store) -> list[tuple[Handle, int]]:
    """The contract's input tensors as (handle, bytes), each once; none for a contract that does not plan
    (its run reports why)."""
    try:
        planned = make_plan(runtime.as_contract(contract, store), store)
    except HLXError:
        return []
    sizes: dict[Handle, int] = {}
    for stage in planned.stages:
        for binding in stage.bindings:
            if isinstance(binding, InputRef):
                sizes[binding.handle] = binding.array.nbytes
    return list(sizes.items())


@dataclass
class _Backend:
    """A backend's devices, their queues and threads."""

    name: str
    placement: Placement
    queues: dict[str, "queue.SimpleQueue[_Job | None]"] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)


class LocalExecutor(Executor):
    """Contracts over every device of the backend each asks for, in this process; ``only`` keeps the
    devices named there (indices or UUIDs, as ``placement.identities`` names them), for measuring."""

    def __init__(self, store: Store | None = None, *, only: Sequence[int | str] | None = None) -> None:
        self.store = store if store is not None else cas.get_default_store()
        self._only = None if only is None else {str(x) for x in only}
        self._backends: dict[str, _Backend] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalExecutor({', '.join(self._backends) or 'no backend yet'})"

    def devices(self, backend: str = runtime.AUTO) -> list[Device]:
        """The devices contracts for ``backend`` are spread over."""
        return self._backend(backend).placement.devices

    def _backend(self, backend: str) -> _Backend:
        name, _ = runtime.session(backend)
        with self._lock:
            found = self._backends.get(name)
            if found is None:
                found = self._backends[name] = self._start(name)
            return found

    def _start(self, name: str) -> _Backend:
        listed = registry.backend_entries()[name].availability().devices
        devices = [Device(ident, d.index, d) for ident, d in zip(identities(listed), listed)
                   if self._only is None or {ident, str(d.index)} & self._only]
        if not devices and listed:
            raise HLXError("E_EXECUTOR", f"no device of {name} is among {sorted(self._only or ())}")
        devices = devices or [Device("default", None)]

        def holds(device: Device, handle: Handle) -> bool:
            return runtime.session(name, device.selector)[1].holds(handle)

        started = _Backend(name, Placement(devices, holds))
        for device in devices:
            jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
            started.queues[device.ident] = jobs
            thread = threading.Thread(target=self._serve, args=(started, device, jobs), daemon=True,
                                      name=f"hlx-{name}-{device.ident}")
            thread.start()
            started.threads.append(thread)
        return started

    def _serve(self, backend: _Backend, device: Device, jobs: "queue.SimpleQueue[_Job | None]") -> None:
        while (job := jobs.get()) is not None:
            future, contract, memo, salt = job
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(runtime.run(contract, backend.name, device.selector, self.store,
                                                      memo=memo, memo_salt=salt))
                    except BaseException as exc:  # the Future carries it to whoever waits
                        future.set_exception(exc)
            finally:
                backend.placement.done(device)

    def _submit(self, contract: Any, backend: str, memo: Memo, memo_salt: str) -> Future[Result]:
        target = self._backend(backend)
        several = len(target.placement.devices) > 1  # one device needs no look at the inputs
        device = target.placement.place(inputs_of(contract, self.store) if several else [])
        future: Future[Result] = Future()
        target.queues[device.ident].put((future, contract, memo, memo_salt))
        return future

    def _close(self) -> None:
        with self._lock:
            started = list(self._backends.values())
            self._backends.clear()
        for backend in started:
            for jobs in backend.queues.values():
                jobs.put(None)
            for thread in backend.threads:
                thread.join()
