"""What an exiting process skips: the garbage collection of objects the operating system frees anyway.

At exit Python clears every module and runs its cyclic garbage collector over every object still there (a
process that ran one GEMM on Vulkan holds ~27,000), only to free memory the operating system takes back an
instant later; on lavapipe that was 25–40 ms of each HLX process's exit. HLX's own exit work is done by
then (``hlx.flush()`` of the stores, sessions and devices closed, by exit hooks registered after this one,
so they run before it), and ``gc.freeze()`` then takes the objects left out of the collector's sight.
Objects still referenced are released as before while modules are cleared (their ``__del__`` runs);
only garbage in reference cycles is left to the operating system, whose finalizers Python never promises
to run at exit. ``HLX_EXIT_GC=1`` keeps Python's collection.
"""
from __future__ import annotations

import atexit
import gc

from hlx_core.settings import env_flag

ENV_EXIT_GC = "HLX_EXIT_GC"


def _skip_collection() -> None:
    if not env_flag(ENV_EXIT_GC, False):
        gc.freeze()


atexit.register(_skip_collection)  # first of HLX's exit hooks, so it runs after all of them
