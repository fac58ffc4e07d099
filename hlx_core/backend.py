"""The protocol every backend plugin implements (built-in or third-party).

A backend says whether it is available here and on which devices, opens a ``Session`` on one device, and
executes ``Plan``s in it. The runtime owns sessions (one per backend and device, reused while the process
lives) and closes them at exit.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from hlx_core.errors import BackendError
from hlx_core.plan import Plan

DeviceKind = Literal["gpu-discrete", "gpu-integrated", "gpu-virtual", "cpu", "other"]


@dataclass(frozen=True)
class DeviceInfo:
    """A device as the backend names it. ``kind`` drives backend="auto"; ``uuid`` (where the API reports
    one) lets a user name the same device across processes and backends."""

    index: int
    name: str
    kind: DeviceKind
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    uuid: str = ""

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


@dataclass
class Execution:
    """What a session returns: arrays in the order of ``plan.outputs`` and timings in milliseconds
    (``gpu_ms`` and ``stage<i>_gpu_ms`` where the backend has timestamps, ``host_ms`` always)."""

    arrays: list[np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)


class Session(ABC):
    """An open device. Sessions are not shared between threads without the runtime's lock.

    The base refuses a closed session (E_BACKEND_CLOSED) the same way on every backend; a backend
    implements ``_execute`` and a ``close`` that sets ``closed``."""

    backend: str
    device: DeviceInfo
    closed: bool = False

    def execute(self, plan: Plan) -> Execution:
        """Run every stage of ``plan`` and return its outputs; raise HLXError subclasses only."""
        if self.closed:
            raise BackendError("E_BACKEND_CLOSED", f"this {self.backend} session is closed; open a new one")
        return self._execute(plan)

    @abstractmethod
    def _execute(self, plan: Plan) -> Execution:
        """The backend's run of ``plan`` on an open session."""

    @abstractmethod
    def close(self) -> None:
        """Release every device object and set ``closed``; idempotent."""


class Backend(ABC):
    """A compute backend. ``name`` is what users pass as ``backend=``."""

    name: str = ""

    @abstractmethod
    def probe(self) -> Availability:
        """Check (cheaply, once) whether this backend works here and list its devices."""

    @abstractmethod
    def open(self, device: int | str | None = None) -> Session:
        """Open a session on a device chosen by index, name substring, or the backend's default."""
