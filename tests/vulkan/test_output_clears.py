"""The clear of a stage's outputs is recorded once into the plan's command buffer: one fill per buffer and
run on the device, none on the host, and none at all for a stage that writes every element."""
from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
from vkplan import inp, open_session, out, plan, stage

from hlx_core.device.poison import ENV_POISON

from hlx_vulkan_raw.commands import Recorder


@pytest.fixture
def fills(monkeypatch) -> list[tuple[int, int]]:
    """(size, word) of every vkCmdFillBuffer recorded."""
    seen: list[tuple[int, int]] = []
    record = Recorder.fill

    def fill(self, dst, size, word):
        seen.append((size, word))
        record(self, dst, size, word)

    monkeypatch.setattr(Recorder, "fill", fill)
    return seen


@pytest.mark.parametrize("poison, word", [("0", 0), ("1", 0xFFFFFFFF)])
def test_fills_are_recorded_once(spirv, rng, fills, monkeypatch, poison, word):
    monkeypatch.setenv(ENV_POISON, poison)
    with open_session() as session:
        for writes_all in (False, True):
            n = int(rng.integers(100, 3000))
            a, b = (rng.integers(0, 2**32, n, dtype=np.uint32) for _ in range(2))
            st = stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (-(-n // 64), 1, 1),
                       struct.pack("<I", n))
            st = dataclasses.replace(st, writes_all_outputs=writes_all)  # as the planner marks library stages
            del fills[:]
            for _ in range(3):  # recorded on the first run, resubmitted as it is
                np.testing.assert_array_equal(session.execute(plan(st)).arrays[0], a + b)
            assert fills == ([] if writes_all and poison == "0" else [(4 * n, word)])
