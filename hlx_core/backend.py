"""The protocol every backend plugin implements (built-in or third-party).

A backend says whether it is available here and on which devices, opens a ``Session`` on one device, and
executes ``Plan``s in it. The runtime owns sessions (one per backend and device, reused while the process
lives) and closes them at exit.

A session belongs to the process that opened it: a GPU API's state does not survive ``fork()`` (the child
shares the parent's driver objects, without the driver's threads), so in a forked child every inherited
session is marked ``forked`` and refuses to run (E_BACKEND_FORKED at once, where a run would hang), and is
kept referenced so that no destructor acts on the parent's device from the child.
"""
from __future__ import annotations

import os
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

from hlx_core.cas.resident import spilled, wanted
from hlx_core.codec.handle import Handle
from hlx_core.errors import BackendError, HLXError
from hlx_core.log import get_logger
from hlx_core.plan import Plan

log = get_logger("hlx.backend")

DeviceKind = Literal["gpu-discrete", "gpu-integrated", "gpu-virtual", "cpu", "other"]


@dataclass(frozen=True)
class DeviceInfo:
    """A device as the backend names it. ``kind`` drives backend="auto"; ``uuid`` (where the API reports
    one) lets a user name the same device across processes and backends.

    ``device_class`` holds the facts that decide which bytes a kernel gives on this device (vendor and
    device ids, driver version and UUID, API version, the CPU's instruction set for a CPU device) and
    nothing that tells two identical devices apart, so a memoized result is reused on an identical device
    (hlx_core/memo). A backend that leaves it empty gets results reused on this very device only."""

    index: int
    name: str
    kind: DeviceKind
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    uuid: str = ""
    device_class: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_gpu(self) -> bool:
        return self.kind.startswith("gpu") and self.kind != "gpu-virtual"


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; ``reason`` says why not when it cannot."""

    available: bool
    reason: str | None = None
    devices: tuple[DeviceInfo, ...] = ()
    version: str = ""


class DeviceOutput(ABC):
    """A plan output left on the device that computed it, known by the handle the device hashed.

    A GPU backend returns one in ``Execution.arrays`` (instead of an array) for an output it hashed on the
    device (at least the device-hash threshold): ``hlx.run`` then stores nothing on the host and the next
    run taking ``handle`` reads the buffer where it is. The backend keeps the buffer in its residency,
    counted against the same budget as resident inputs, and calls ``evict`` just before freeing it, inside
    the session: the bytes go to every store still waiting for them (hlx_core/cas/resident.py), or stay
    here (``host``) when the runtime has not taken the output yet (a run whose outputs did not fit).
    ``download`` and ``evict`` run on the session's device, so their caller serialises them with its runs
    (the runtime holds the session's lock)."""

    def __init__(self, handle: Handle, dtype: Any, shape: tuple[int, ...]) -> None:
        self.handle = handle
        self.dtype = np.dtype(dtype)
        self.shape = tuple(shape)
        self.host: np.ndarray | None = None  # the bytes, when the device let them go before delivery
        self.released = False  # the device buffer is gone
        self.delivered = False  # the runtime has registered it with its store

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @abstractmethod
    def _read(self) -> np.ndarray:
        """Copy the bytes off the device into a new (C-order, native) array."""

    def download(self) -> np.ndarray | None:
        """The output as a read-only host array; None once its buffer is gone and its bytes were handed
        to the stores that waited for them."""
        if self.host is None and not self.released:
            array = self._read()
            array.flags.writeable = False
            return array
        return self.host

    def deliver(self) -> np.ndarray | None:
        """The output as a host array for a caller that takes it now (``download``), marked delivered: an
        eviction later spills it only into the stores still waiting for it."""
        array = self.download()
        self.delivered = True
        return array

    def evict(self) -> None:
        """The backend is about to free the buffer: spill the bytes where they are still wanted."""
        if self.released:
            return
        try:
            if not self.delivered:
                self.host = self.download()
            elif wanted(self.handle):
                spilled(self.handle, self.download())
        except HLXError as exc:  # a device that fails now (lost, timed out) loses the output: say so
            log.warning("spilling %s before freeing its buffer failed: %s", self.handle, exc)
        self.released = True


class DeviceOutputs:
    """A device's resident outputs by the serial of the buffer holding each: what both GPU backends look up
    when a run's output has the bytes of a buffer already resident (one output per buffer, however many
    runs produced it), and spill before the residency frees a buffer."""

    def __init__(self) -> None:
        self._by_serial: dict[int, DeviceOutput] = {}

    def of(self, serial: int, make: Callable[[], DeviceOutput]) -> DeviceOutput:
        """The output buffer ``serial`` holds, made by ``make`` the first time."""
        out = self._by_serial.get(serial)
        if out is None:
            out = self._by_serial[serial] = make()
        return out

    def evict(self, serial: int) -> None:
        """Buffer ``serial`` is about to be freed: spill its output, if it holds one (DeviceOutput.evict)."""
        out = self._by_serial.pop(serial, None)
        if out is not None:
            out.evict()

    def __contains__(self, serial: object) -> bool:
        return serial in self._by_serial

    def __len__(self) -> int:
        return len(self._by_serial)


@dataclass
class Execution:
    """What a session returns: outputs in the order of ``plan.outputs`` and timings in milliseconds
    (``gpu_ms`` and ``stage<i>_gpu_ms`` where the backend has timestamps, ``host_ms`` always). An output is
    a NumPy array, or a ``DeviceOutput`` left on the device. ``handles``, where the backend computed them
    (on the device, where the outputs already are), gives each output's handle, None for those the runtime
    is to hash; without it the runtime hashes every output array."""

    arrays: list[np.ndarray | DeviceOutput]
    timings: dict[str, float] = field(default_factory=dict)
    handles: list[Handle | None] | None = None


_open: "weakref.WeakSet[Session]" = weakref.WeakSet()  # every session of this process not yet collected
_inherited: list["Session"] = []  # in a forked child: the parent's sessions, kept so none is ever collected


class Session(ABC):
    """An open device. Sessions are not shared between threads without the runtime's lock.

    The base refuses a closed session (E_BACKEND_CLOSED) and one inherited through fork (E_BACKEND_FORKED)
    the same way on every backend; a backend implements ``_execute`` and a ``close`` that sets ``closed``.
    A backend sets ``broken`` when the session should take no more work from the runtime (a run timed out
    and is still on its device): the runtime then opens a new session for the next run and closes this one
    on a thread of its own, since its close waits for that work. A broken session run directly waits for
    the earlier run first, and clears ``broken`` once it has finished."""

    backend: str
    device: DeviceInfo
    closed: bool = False
    broken: bool = False
    forked: bool = False
    on_device: bool = False  # the caller takes DeviceOutputs (hlx.run's sessions); else outputs are arrays

    def __new__(cls, *args: Any, **kwargs: Any) -> "Session":
        session = super().__new__(cls)
        _open.add(session)
        return session

    def execute(self, plan: Plan) -> Execution:
        """Run every stage of ``plan`` and return its outputs; raise HLXError subclasses only. Outputs the
        backend left on its device come back as arrays, downloaded, unless ``on_device`` is set."""
        if self.closed:
            raise self._refusal()
        execution = self._execute(plan)
        if not self.on_device and any(isinstance(a, DeviceOutput) for a in execution.arrays):
            execution.arrays = [a.deliver() if isinstance(a, DeviceOutput) else a for a in execution.arrays]
        return execution

    def _refusal(self) -> BackendError:
        if self.forked:
            return BackendError("E_BACKEND_FORKED",
                                f"this {self.backend} session was opened by the process this one was forked "
                                "from, and a GPU API's state does not survive fork(): open a new session here "
                                "(hlx.run does), or start workers with the 'spawn' or 'forkserver' method")
        return BackendError("E_BACKEND_CLOSED", f"this {self.backend} session is closed; open a new one")

    def holds(self, handle: str) -> bool:
        """Whether ``handle``'s tensor is on this session's device now (a run taking it uploads nothing).
        Placement prefers such a device; a backend without residency holds nothing."""
        return False

    @abstractmethod
    def _execute(self, plan: Plan) -> Execution:
        """The backend's run of ``plan`` on an open session."""

    @abstractmethod
    def close(self) -> None:
        """Release every device object and set ``closed``; idempotent."""


def timeout_message(seconds: float, setting: str, detail: str = "") -> str:
    """What E_TIMEOUT says on every backend: a run's wait outlived ``setting`` and its work is still on the
    device, so its session is ``broken``."""
    return (f"the device did not finish within {seconds:g} s ({setting}{'; ' + detail if detail else ''}). The "
            "work is still on the device, slow or hung: the session waits for it before its next run, and "
            "hlx.run runs the next contract on a new session instead (closing this one once the work ends)")


def _after_fork_in_child() -> None:
    """Refuse the parent's sessions and keep them: closing or collecting one here would act on its device."""
    for session in list(_open):
        session.forked = session.closed = True
        _inherited.append(session)
    _open.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Backend(ABC):
    """A compute backend. ``name`` is what users pass as ``backend=``.

    ``deterministic_kernels`` names the kernels whose runs on this backend give the same bytes every time
    (fixed-order code: no atomics, no order that depends on scheduling); ``hlx.run`` memoizes those by
    default. ``byte_settings`` names the HLX_* variables that can change the bytes its runs give; their
    values are part of a memoized result's key."""

    name: str = ""
    deterministic_kernels: frozenset[str] = frozenset()
    byte_settings: tuple[str, ...] = ()

    @abstractmethod
    def probe(self) -> Availability:
        """Check (cheaply, once) whether this backend works here and list its devices."""

    @abstractmethod
    def open(self, device: int | str | None = None) -> Session:
        """Open a session on a device chosen by index, name substring, or the backend's default."""
