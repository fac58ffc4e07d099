"""GPU time per stage from timestamp queries (adapter feature "timestamp-query").

Each stage is its own compute pass with a timestamp at its beginning and end; the query results are
resolved into a small buffer and copied into the readback staging buffer with the outputs, so timings cost
no extra map. Raw values are in device ticks; wgpu-native's queue timestamp period converts them to ns.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from hlx_core.device.layout import align

from hlx_wgpu.errors import wgpu_call
from hlx_wgpu.native import timestamp_period_ns


class Timestamps:
    """A query set with two timestamps per stage, grown as plans with more stages arrive."""

    def __init__(self, device: Any, wgpu: Any) -> None:
        self._device = device
        self._usage = wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC
        self.query_set: Any = None  # stage i's compute pass writes 2i (beginning) and 2i + 1 (end)
        self._resolve: Any = None
        self._count = 0
        # stage count -> the results' reader and the timing names
        self._readers: dict[int, tuple[Callable[[Any], tuple[int, ...]], tuple[str, ...]]] = {}
        self.period_ns = timestamp_period_ns(device.queue)

    def prepare(self, stages: int) -> None:
        if 2 * stages <= self._count:
            return
        count = max(2 * stages, 2 * self._count, 16)
        self.close()
        with wgpu_call("creating a timestamp query set"):
            self.query_set = self._device.create_query_set(type="timestamp", count=count)
            self._resolve = self._device.create_buffer(size=align(8 * count, 256), usage=self._usage,
                                                       label="hlx-timestamps")
        self._count = count

    def commands(self, stages: int, staging: Any, offset: int
                 ) -> tuple[tuple[Any, int, int, Any, int], tuple[Any, int, Any, int, int]]:
        """The native resolve of a run's queries and the copy of the results into ``staging`` at ``offset``
        (16 bytes per stage), in ``Script``'s forms."""
        return ((self.query_set._internal, 0, 2 * stages, self._resolve._internal, 0),
                (self._resolve._internal, 0, staging._internal, offset, 16 * stages))

    def timings(self, raw: bytes | memoryview, stages: int) -> dict[str, float]:
        """``stage<i>_gpu_ms`` per stage and ``gpu_ms`` from the first begin to the last end."""
        reader = self._readers.get(stages)
        if reader is None:
            reader = self._readers[stages] = (struct.Struct(f"<{2 * stages}Q").unpack_from,
                                              tuple(f"stage{i}_gpu_ms" for i in range(stages)))
        unpack, names = reader
        ticks = unpack(raw)
        ms = self.period_ns * 1e-6
        out = {name: (ticks[2 * i + 1] - ticks[2 * i]) * ms for i, name in enumerate(names)}
        out["gpu_ms"] = (ticks[-1] - ticks[0]) * ms
        return out

    def close(self) -> None:
        for obj in (self.query_set, self._resolve):
            if obj is not None:
                obj.destroy()
        self.query_set = self._resolve = None
        self._count = 0
