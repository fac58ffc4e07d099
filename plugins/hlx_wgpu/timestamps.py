"""GPU time per stage from timestamp queries (adapter feature "timestamp-query").

Each stage is its own compute pass with a timestamp at its beginning and end; the query results are
resolved into a small buffer and copied into the readback staging buffer with the outputs, so timings cost
no extra map. Raw values are in device ticks; wgpu-native's queue timestamp period converts them to ns.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hlx_core.device.layout import align

from hlx_wgpu.commands import Commands
from hlx_wgpu.errors import wgpu_call
from hlx_wgpu.native import timestamp_period_ns


class Timestamps:
    """A query set with two timestamps per stage, grown as plans with more stages arrive."""

    def __init__(self, device: Any, wgpu: Any) -> None:
        self._device = device
        self._usage = wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC
        self._query_set: Any = None
        self._resolve: Any = None
        self._count = 0
        self.period_ns = timestamp_period_ns(device.queue)

    def prepare(self, stages: int) -> None:
        if 2 * stages <= self._count:
            return
        count = max(2 * stages, 2 * self._count, 16)
        self.close()
        with wgpu_call("creating a timestamp query set"):
            self._query_set = self._device.create_query_set(type="timestamp", count=count)
            self._resolve = self._device.create_buffer(size=align(8 * count, 256), usage=self._usage,
                                                       label="hlx-timestamps")
        self._count = count

    @property
    def query_set(self) -> Any:
        """The query set the compute pass of stage i writes at 2i (beginning) and 2i + 1 (end)."""
        return self._query_set

    def resolve(self, commands: Commands, stages: int, staging: Any, offset: int) -> int:
        """Record the resolve and the copy into ``staging`` at ``offset``; return the bytes copied."""
        nbytes = 16 * stages
        commands.resolve(self._query_set, 2 * stages, self._resolve, 0)
        commands.copy(self._resolve, 0, staging, offset, nbytes)
        return nbytes

    def timings(self, raw: bytes | memoryview, stages: int) -> dict[str, float]:
        """``stage<i>_gpu_ms`` per stage and ``gpu_ms`` from the first begin to the last end."""
        ticks = np.frombuffer(raw, dtype="<u8", count=2 * stages).astype(np.float64)
        ms = self.period_ns * 1e-6
        out = {f"stage{i}_gpu_ms": (ticks[2 * i + 1] - ticks[2 * i]) * ms for i in range(stages)}
        out["gpu_ms"] = (ticks[-1] - ticks[0]) * ms
        return out

    def close(self) -> None:
        for obj in (self._query_set, self._resolve):
            if obj is not None:
                obj.destroy()
        self._query_set = self._resolve = None
        self._count = 0
