"""DiskStore: objects as files under ``<path>/objects/<2 hex>/<62 hex>.<tag>``.

Why it is safe for concurrent writers (threads and processes, no locks): an object is written to a unique
temp file in its final folder, fsynced, then ``os.replace``d into place and the folder fsynced. A reader
sees either no file or a complete one; two writers of the same object write the same bytes, so whichever
rename lands last changes nothing. Files are never modified in place (objects are read-only files), so a
memory map of an object stays valid even if ``gc`` unlinks it afterwards.

Reads re-hash the whole object (E_INTEGRITY naming the handle on mismatch; the corrupt file is removed so
the next ``collapse`` of that value writes it again). Objects of ``mmap_min_bytes`` or more are returned
memory-mapped, so large tensors decode zero-copy from the page cache.

``gc`` evicts least recently used first, where "used" is the file's mtime: set when written and refreshed
whenever the object is read or collapsed again (at most once per ``TOUCH_SECONDS`` per object and process:
a warm loop collapses the same outputs thousands of times a second, and the mtime only orders eviction).

The store is capped at ``max_bytes`` (``HLX_STORE_MAX_BYTES``, default 10 GiB, 0 for no cap): the writes
that bring it past the cap evict least recently used objects, sparing those used in the last minute.

``put_behind`` (what ``hlx.run`` uses for its outputs) writes on a ``BackgroundWriter`` thread; until the
file exists the object is served from the writer's pending map, and ``flush`` waits for the writes.
"""
from __future__ import annotations

import mmap
import os
import time
from pathlib import Path
from typing import Iterator, Sequence

from hlx_core.cas.store import Entry, ReadBuffer, Store
from hlx_core.cas.writer import BackgroundWriter, writes_behind
from hlx_core.codec.handle import TAGS, Buffer, Handle, blake3_digest
from hlx_core.errors import HandleError
from hlx_core.settings import env_bytes

TEMP_PREFIX = ".tmp-"
# A temp file this old belongs to a writer that died; gc and clear remove it.
STALE_TEMP_SECONDS = 3600.0
# An object this process stored or touched this recently is not touched again.
TOUCH_SECONDS = 1.0
_TOUCHED_MAX = 1 << 13
_PATHS_MAX = 1 << 12  # object paths kept per store (a few hundred KiB at most)
# The automatic cap (HLX_STORE_MAX_BYTES; 0 turns it off): past it, least recently used objects are evicted
# down to CAP_TARGET of it, sparing objects used within CAP_GRACE_SECONDS (another process's fresh outputs).
DEFAULT_MAX_STORE_BYTES = 10 << 30
CAP_TARGET = 0.9
CAP_GRACE_SECONDS = 60.0


class DiskStore(Store):
    """A content-addressed store in a folder (created on first write)."""

    def __init__(self, path: str | os.PathLike[str], *, mmap_min_bytes: int = 1 << 16,
                 max_bytes: int | None = None) -> None:
        super().__init__()
        if not isinstance(path, (str, os.PathLike)):
            raise HandleError("E_STORE", f"DiskStore needs a folder path (str or os.PathLike), "
                                         f"got {type(path).__name__}")
        if isinstance(mmap_min_bytes, bool) or not isinstance(mmap_min_bytes, int):
            raise HandleError("E_STORE", f"mmap_min_bytes must be an int, got {type(mmap_min_bytes).__name__}")
        self.path = Path(path).expanduser()
        self.objects = self.path / "objects"
        self._objects_dir = str(self.objects)
        self.mmap_min_bytes = max(1, mmap_min_bytes)
        if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0):
            raise HandleError("E_STORE", f"max_bytes must be an int >= 0 (0: no cap), got {max_bytes!r}")
        self.max_bytes = env_bytes("HLX_STORE_MAX_BYTES", DEFAULT_MAX_STORE_BYTES) if max_bytes is None else max_bytes
        self._written = 0  # bytes written since the cap was last checked
        self._writer: BackgroundWriter | None = None
        self._touched: dict[Handle, float] = {}  # handle -> time.monotonic() of this process's last put
        self._paths: dict[Handle, str] = {}  # handle -> its object's path: a warm run asks for a few each time

    def __repr__(self) -> str:
        return f"DiskStore({str(self.path)!r})"

    def __reduce__(self) -> tuple:
        # Lets a store be handed to another process (multiprocessing): the folder is the whole state.
        return (type(self), (self.path,), {"mmap_min_bytes": self.mmap_min_bytes, "max_bytes": self.max_bytes})

    def __setstate__(self, state: dict) -> None:
        self.mmap_min_bytes = state["mmap_min_bytes"]
        self.max_bytes = state.get("max_bytes", self.max_bytes)

    def object_path(self, handle: Handle) -> Path:
        """Where ``handle``'s object lives (whether or not it exists)."""
        return Path(self._file(handle))

    def _file(self, handle: Handle) -> str:
        # A plain string costs a fraction of pathlib's joins, and storing what is already there is the
        # common case (every warm hlx.run stores its outputs again); a memo hit asks for the record's and
        # each output's path, and Result.arrays() again, so the last _PATHS_MAX paths are kept.
        path = self._paths.get(handle)
        if path is None:
            if len(self._paths) >= _PATHS_MAX:
                self._paths.clear()
            hexdigest = handle.hex
            path = self._paths[handle] = os.path.join(self._objects_dir, hexdigest[:2],
                                                      f"{hexdigest[2:]}.{handle.tag}")
        return path

    # -- writing behind ---------------------------------------------------------------------------
    def put_behind(self, handle: Handle, chunks: Sequence[Buffer]) -> None:
        if self._recently_touched(handle):  # what a warm run's outputs are; ``put`` would do nothing either
            return
        if self._journals() or not writes_behind():  # a transaction records its writes; see writes_behind
            self.put(handle, chunks)
            return
        if self._writer is None:
            self._writer = BackgroundWriter(self._put)
        self._writer.submit(handle, chunks)

    def _flush_writes(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _pending(self, handle: Handle) -> Sequence[Buffer] | None:
        return None if self._writer is None else self._writer.pending(handle)

    def _recently_touched(self, handle: Handle) -> bool:
        return time.monotonic() - self._touched.get(handle, -TOUCH_SECONDS) < TOUCH_SECONDS

    def _mark_touched(self, handle: Handle) -> None:
        now = time.monotonic()
        if len(self._touched) >= _TOUCHED_MAX:  # entries older than TOUCH_SECONDS no longer matter
            self._touched = {h: t for h, t in list(self._touched.items()) if now - t < TOUCH_SECONDS}
        self._touched[handle] = now

    # -- Store primitives --------------------------------------------------------------------------
    def _put(self, handle: Handle, chunks: Sequence[Buffer]) -> bool:
        if self._recently_touched(handle):
            return False
        existing = self._file(handle)
        if _touch(existing):
            self._mark_touched(handle)
            return False
        final = Path(existing)
        folder = final.parent
        try:
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                _fsync_dir(folder.parent)
            import tempfile  # here: a warm process that writes nothing new never needs it (~4 ms)

            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
        except OSError as exc:
            raise _store_error("cannot create an object file in", folder, exc) from exc
        try:
            with open(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                os.fchmod(f.fileno(), 0o444)
                os.fsync(f.fileno())
            os.replace(tmp, final)
            _fsync_dir(folder)
        except BaseException as exc:
            _unlink(Path(tmp))
            if isinstance(exc, OSError):
                raise _store_error(f"cannot write {handle} to", final, exc) from exc
            raise
        self._mark_touched(handle)
        self._written += sum(memoryview(c).nbytes for c in chunks)
        if self.max_bytes and self._written >= max(self.max_bytes // 32, 1 << 20):
            self._written = 0
            self._enforce_cap()
        return True

    def _enforce_cap(self) -> None:
        """Evict least recently used objects when the store holds more than ``max_bytes``."""
        entries = self._entries()
        if sum(e.size for e in entries) > self.max_bytes:
            self._sweep()  # temp files only: the listing still holds
            self._evict(int(self.max_bytes * CAP_TARGET), frozenset(), CAP_GRACE_SECONDS, entries)

    def _get(self, handle: Handle) -> ReadBuffer | None:
        pending = self._pending(handle)
        if pending is not None:  # hashed by the collapse that queued it, and not written yet
            return b"".join(pending)
        path = self.object_path(handle)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size >= self.mmap_min_bytes:
                    buf: ReadBuffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                else:
                    buf = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _store_error(f"cannot read {handle} from", path, exc) from exc
        if blake3_digest([buf]) != handle.digest:
            if isinstance(buf, mmap.mmap):
                buf.close()
            self._touched.pop(handle, None)
            _unlink(path)
            raise HandleError("E_INTEGRITY", f"{handle}: the object at {path} does not match its hash "
                                             "(corrupt; removed so the value can be collapsed again)")
        _touch(path)
        return buf

    def _contains(self, handle: Handle) -> bool:
        # os.access asks the file system as os.path.isfile does, without building a stat result in Python
        # (~1 µs of the ~2.4 a memo hit pays per object it checks); an object path is a file or nothing.
        writer = self._writer
        return (writer is not None and writer.pending(handle) is not None) or os.access(self._file(handle), os.F_OK)

    def _discard(self, handle: Handle) -> bool:
        self._touched.pop(handle, None)
        return _unlink(self.object_path(handle))

    def _is_recent(self, entry: Entry, grace_seconds: float) -> bool:
        return entry.last_used > time.time() - grace_seconds

    def _entries(self) -> list[Entry]:
        entries: list[Entry] = []
        for item in self._files():
            handle = _handle_from_name(Path(item.path).parent.name, item.name)  # None for temp files
            if handle is None:
                continue
            try:
                st = item.stat()
            except FileNotFoundError:
                continue  # removed by another process since the listing
            entries.append(Entry(handle, st.st_size, st.st_mtime))
        return entries

    def stats(self) -> dict[str, int]:
        """``objects`` and ``bytes`` as every store reports them, and the ``temp_files``/``temp_bytes`` of
        writes in progress or left by a killed writer (gc and clear remove those older than an hour)."""
        stats = super().stats()
        temps = [item for item in self._files() if item.name.startswith(TEMP_PREFIX)]
        sizes = []
        for item in temps:
            try:
                sizes.append(item.stat().st_size)
            except FileNotFoundError:
                continue  # renamed into place meanwhile
        return {**stats, "temp_files": len(sizes), "temp_bytes": sum(sizes)}

    def _sweep(self) -> None:
        now = time.time()
        for item in self._files():
            if item.name.startswith(TEMP_PREFIX):
                _remove_if_stale(Path(item.path), now)

    def _files(self) -> Iterator[os.DirEntry]:
        for folder in _scandir(self.objects):
            if len(folder.name) == 2 and folder.is_dir():
                yield from _scandir(Path(folder.path))


def _handle_from_name(prefix: str, name: str) -> Handle | None:
    rest, _, tag = name.partition(".")
    if tag not in TAGS or len(rest) != 62:
        return None
    try:
        return Handle(f"&h_{tag}_{prefix}{rest}")
    except HandleError:
        return None


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise _store_error("cannot list", path, exc) from exc


def _touch(path: str | Path) -> bool:
    """Mark an object used now; False when it does not exist."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.isfile(path)  # e.g. a read-only file system: usable, just not LRU-tracked


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _store_error("cannot remove", path, exc) from exc


def _remove_if_stale(path: Path, now: float) -> None:
    try:
        if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _store_error("cannot remove stale temp file", path, exc) from exc


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _store_error(what: str, path: Path, exc: OSError) -> HandleError:
    return HandleError("E_STORE", f"{what} {path}: {exc.strerror or exc}")
