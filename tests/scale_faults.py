"""Faults for the Dask executor's tests, importable by the cluster's worker processes (spawned with this
process's sys.path): the first worker to start a contract's task dies on the spot, once; a worker's device
is lost."""
from __future__ import annotations

import os

from distributed import WorkerPlugin


class KillOnce(WorkerPlugin):
    """Ends the worker process (no cleanup, as a crash or an OOM kill would) when it starts executing a
    contract's task (not a bundle of objects), the first time only: ``marker`` records that it happened,
    across the restarted workers."""

    name = "hlx-test-kill-once"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish == "executing" and str(key).startswith("hlx-") and not str(key).startswith("hlx-objects-"):
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os._exit(17)


def lose_device_here() -> int:
    """Make every later run of this worker fail as a lost device does (E_DEVICE_LOST); its pid."""
    from hlx_core import runtime
    from hlx_core.errors import BackendError

    def lost(*args, **kwargs):
        raise BackendError("E_DEVICE_LOST", "the device was lost (a fault the test made)")

    runtime.run = lost
    return os.getpid()
