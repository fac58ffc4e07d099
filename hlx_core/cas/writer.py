"""Store writes behind the caller: one daemon thread per store writing objects oldest first.

A run knows its outputs' handles as soon as they are hashed; writing them (a file, an fsync, a rename, an
fsync of the folder) is what a disk store adds on top, and it needs nothing from the caller. So ``hlx.run``
hands its outputs to a ``BackgroundWriter`` and returns; until an object is written, the store serves it
from the writer's pending map, so a handle the caller was given always resolves in this process.

What a crash can lose: objects still pending (never a partial object: each write is atomic), which a
deterministic contract recomputes. ``flush()`` waits until everything pending is written (``hlx.flush()``;
also run at interpreter exit), and raises the first write error since the last flush (E_STORE).
"""
from __future__ import annotations

import atexit
import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence

from hlx_core.codec.handle import Buffer, Handle
from hlx_core.errors import HandleError

#: Pending bytes above which ``submit`` waits for the writer (memory held by results not yet written), and
#: pending objects likewise: a run makes objects faster than a disk fsyncs them, and a small object's
#: bookkeeping outweighs its bytes.
MAX_PENDING_BYTES = 1 << 30
MAX_PENDING_OBJECTS = 1024

_writers: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()
_worker: bool | None = None  # whether this process is a multiprocessing child (worked out once)


def writes_behind() -> bool:
    """Whether stores may write behind the caller here. Not in a multiprocessing child (a pool worker, forked
    or spawned): its parent ends it with a signal, so exit hooks never flush, and what it computed would
    be lost; there every write goes through."""
    global _worker
    if _worker is None:
        # A multiprocessing child has the module loaded before any of its code runs (spawn), or from its
        # parent (fork, which asks again: ``_after_fork_in_child``); without it this is no such child, and
        # the import (~6 ms) is saved.
        process = sys.modules.get("multiprocessing.process")
        _worker = process is not None and process.parent_process() is not None
    return not _worker


class BackgroundWriter:
    """Objects queued for ``write(handle, chunks)``, written in order by one daemon thread."""

    def __init__(self, write: Callable[[Handle, Sequence[Buffer]], bool],
                 max_pending_bytes: int = MAX_PENDING_BYTES, max_pending_objects: int = MAX_PENDING_OBJECTS) -> None:
        self._write = write
        self.max_pending_bytes = max_pending_bytes
        self.max_pending_objects = max_pending_objects
        self._pending: OrderedDict[Handle, tuple[Sequence[Buffer], int]] = OrderedDict()
        self._bytes = 0
        self._busy = False  # the thread holds an object it took off the queue
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._error: HandleError | None = None
        _writers.add(self)

    def submit(self, handle: Handle, chunks: Sequence[Buffer]) -> None:
        """Queue one object (a no-op when it is already pending); waits while too many bytes or objects are
        pending."""
        nbytes = sum(memoryview(c).nbytes for c in chunks)
        with self._cond:
            self._raise_error()
            if handle in self._pending:
                return
            while self._pending and (self._bytes + nbytes > self.max_pending_bytes
                                     or len(self._pending) >= self.max_pending_objects):
                self._cond.wait()
            self._pending[handle] = (chunks, nbytes)
            self._bytes += nbytes
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hlx-store-writer", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def pending(self, handle: Handle) -> Sequence[Buffer] | None:
        """The chunks of an object not written yet, or None. Without the lock: one dict lookup is atomic, and
        the thread removes an object only after its file is in place, so a store that finds it neither
        pending nor on disk truly lacks it (a memo hit asks for each output; the lock cost ~0.5 µs)."""
        item = self._pending.get(handle)
        return None if item is None else item[0]

    def flush(self) -> None:
        """Wait until every pending object is written; raise the first error since the last flush."""
        with self._cond:
            while self._pending and self._thread is not None and self._error is None:
                self._cond.wait()
            self._raise_error()

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                handle, (chunks, nbytes) = next(iter(self._pending.items()))
            try:
                self._write(handle, chunks)
            except HandleError as exc:
                failure: HandleError | None = exc
            except Exception as exc:  # an OSError the store did not translate: still a store error
                failure = HandleError("E_STORE", f"writing {handle} failed: {type(exc).__name__}: {exc}")
            else:
                failure = None
            with self._cond:
                if failure is None:
                    self._pending.pop(handle, None)
                    self._bytes -= nbytes
                else:
                    # Kept pending (it still resolves in this process); reported by the next submit or flush.
                    self._error = self._error or failure
                    self._pending.move_to_end(handle)
                    self._cond.notify_all()
                    self._cond.wait(0.5)  # a full disk: do not spin on it
                self._cond.notify_all()

    def _after_fork(self) -> None:
        """In a forked child: no thread runs; the objects still pending are written by the child's own."""
        self._cond = threading.Condition()
        self._thread = None


def flush_all() -> None:
    """Flush every writer of this process (``hlx.flush()`` and interpreter exit)."""
    errors = []
    for writer in list(_writers):
        try:
            writer.flush()
        except HandleError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _after_fork_in_child() -> None:
    global _worker
    _worker = None  # a forked child may be a pool worker: ask again
    for writer in list(_writers):
        writer._after_fork()
        if writer._pending:
            writer._thread = threading.Thread(target=writer._run, name="hlx-store-writer", daemon=True)
            writer._thread.start()


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
