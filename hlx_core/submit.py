"""``hlx.submit``: ``hlx.run`` on a per-process thread pool, returning a ``concurrent.futures.Future``.

Several runs in flight overlap their host work (planning, hashing, storing) with each other's device work.
Runs on one device are serialised by the runtime's session lock, so they never interleave on it; waits
release the GIL (Vulkan's fence wait is a cffi call, which releases it; wgpu's poll is native code), so the
caller's threads keep running. ``hlx.run`` itself is safe to call from many threads at once.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hlx_core import runtime
from hlx_core.memo.policy import Memo

_lock = threading.Lock()
_pool: list[ThreadPoolExecutor] = []  # the process's executor, made on the first submit


def _executor() -> ThreadPoolExecutor:
    with _lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 2),
                                            thread_name_prefix="hlx-submit"))
        return _pool[0]


def submit(contract: Any, backend: str = runtime.AUTO, device: int | str | None = None, store: Any = None, *,
           persist: bool = False, memo: Memo = None, memo_salt: str = "") -> Future[runtime.Result]:
    """Start ``hlx.run(contract, ...)`` (same arguments) and return its Future at once: ``.result()`` is
    the Result, or raises what ``hlx.run`` would have raised."""
    return _executor().submit(runtime.run, contract, backend, device, store, persist=persist, memo=memo,
                              memo_salt=memo_salt)


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's pool threads: forget the pool, so its first submit makes one."""
    global _lock
    _pool.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
