"""Placement (hlx_core/scale/placement.py): least loaded first, inputs already on a device pull a contract
there, large shared inputs group contracts, devices named by UUID even when two share one."""
from __future__ import annotations

import numpy as np
import pytest

import hlx
from hlx_core.backend import DeviceInfo
from hlx_core.codec.handle import Handle
from hlx_core.scale.placement import LARGE_BYTES, SLACK, Device, Placement, identities


def _handle(rng: np.random.Generator) -> Handle:
    return hlx.collapse(rng.standard_normal(3).astype(np.float32))


def _devices(n: int) -> list[Device]:
    return [Device(f"uuid-{i}", i) for i in range(n)]


def test_the_least_loaded_device_takes_independent_contracts(rng):
    placement = Placement(_devices(3))
    given = [placement.place([(_handle(rng), 16)]).ident for _ in range(6)]
    assert given == ["uuid-0", "uuid-1", "uuid-2"] * 2
    placement.done(placement.devices[1])
    assert placement.place([]).ident == "uuid-1"


def test_a_device_holding_the_inputs_wins_within_the_slack(rng):
    a, b = _handle(rng), _handle(rng)
    resident = {("uuid-1", a)}
    placement = Placement(_devices(2), holds=lambda d, h: (d.ident, h) in resident)
    assert all(placement.place([(a, 100), (b, 10)]).ident == "uuid-1" for _ in range(SLACK + 1))
    # now uuid-1 is SLACK + 1 contracts busier than uuid-0: the idle device takes the next one
    assert placement.place([(a, 100)]).ident == "uuid-0"


def test_contracts_sharing_a_large_input_group_on_one_device(rng):
    big, small = _handle(rng), _handle(rng)
    placement = Placement(_devices(2))
    first = placement.place([(big, LARGE_BYTES)])
    placement.done(first)
    assert all(placement.place([(big, LARGE_BYTES)]) is first for _ in range(3))
    # a small input is no reason to group
    p2 = Placement(_devices(2))
    assert [p2.place([(small, LARGE_BYTES - 1)]).ident for _ in range(2)] == ["uuid-0", "uuid-1"]


def test_devices_sharing_a_uuid_are_told_apart_by_their_order():
    same = "6d657361-3232-2e33-2e36-000000000000"
    devices = [DeviceInfo(0, "llvmpipe", "cpu", uuid=same), DeviceInfo(1, "llvmpipe", "cpu", uuid=same),
               DeviceInfo(2, "gpu", "gpu-discrete", uuid="other"), DeviceInfo(3, "numpy", "cpu")]
    assert identities(devices) == [same, f"{same}#1", "other", "numpy@3"]


def test_a_placement_needs_a_device():
    with pytest.raises(ValueError):
        Placement([])
