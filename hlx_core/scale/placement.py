"""Which device takes a contract: the least loaded, unless another device already has its inputs.

A contract is the unit (a 902 pipeline never splits: its stages share intermediates on one device). Among
the devices whose load is within ``SLACK`` of the least loaded, the one that already has the most of the
contract's input bytes wins: resident on its session (``Session.holds``), or a large input
(``LARGE_BYTES`` or more) given to that device by an earlier contract, so contracts sharing large inputs
group on one device instead of uploading them everywhere. Devices are named by UUID; two devices with the
same UUID (two copies of one driver) are told apart by their order.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hlx_core.backend import DeviceInfo
from hlx_core.codec.handle import Handle
from hlx_core.device.lru import LRU

#: Inputs at least this large pull later contracts that take them to the device that took the first.
LARGE_BYTES = 1 << 20
#: A device may be this many contracts busier than the least loaded one and still win by its inputs.
SLACK = 2


@dataclass
class Device:
    """One device a placement hands contracts to: ``ident`` (its UUID) names it; ``selector`` is what
    ``hlx.run(device=...)`` gets in this process; ``load`` counts contracts given and not yet done."""

    ident: str
    selector: Any
    info: DeviceInfo | None = None
    load: int = field(default=0, compare=False)


def identities(devices: Sequence[DeviceInfo]) -> list[str]:
    """A name per device: its UUID, with ``#k`` added from the second device that shares it on."""
    seen: dict[str, int] = {}
    names = []
    for d in devices:
        base = d.uuid or f"{d.name}@{d.index}"
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base if count == 0 else f"{base}#{count}")
    return names


Holds = Callable[[Device, Handle], bool]


class Placement:
    """Hands out devices; thread-safe. ``holds(device, handle)`` says whether a device has an input now."""

    def __init__(self, devices: Sequence[Device], holds: Holds | None = None) -> None:
        if not devices:
            raise ValueError("a placement needs at least one device")
        self.devices = list(devices)
        self._holds = holds
        self._given: LRU[Handle, Device] = LRU(4096, locked=False)  # large input -> the device it went to
        self._lock = threading.Lock()

    def place(self, inputs: Sequence[tuple[Handle, int]]) -> Device:
        """The device for a contract with ``inputs`` ((handle, bytes) pairs); its load goes up by one."""
        with self._lock:
            least = min(d.load for d in self.devices)
            candidates = [d for d in self.devices if d.load <= least + SLACK]
            # most input bytes already there, then least loaded, then first listed
            best = max(candidates, key=lambda d: (self._has(d, inputs), -d.load, -self.devices.index(d)))
            best.load += 1
            for handle, size in inputs:
                if size >= LARGE_BYTES and self._given.get(handle) is None:
                    self._given.put(handle, best)
            return best

    def done(self, device: Device) -> None:
        """A contract given to ``device`` has finished (or failed)."""
        with self._lock:
            device.load -= 1

    def _has(self, device: Device, inputs: Sequence[tuple[Handle, int]]) -> int:
        """The input bytes ``device`` has already: resident there, or large ones given to it before."""
        total = 0
        for handle, size in inputs:
            if self._given.get(handle) is device or (self._holds is not None and self._holds(device, handle)):
                total += size
        return total
