"""Where memo records are found: execution key -> the handle of its record.

A DiskStore keeps its index beside its objects, under ``<store>/memo/`` (``$HLX_HOME/memo/`` for the
default store): one small file per key, ``<2 hex>/<62 hex>``, holding the record's handle, written to a
temp file and renamed into place, so a reader sees the old entry or the new one, never a torn one. Records
kept as evidence of a nondeterministic run (``hlx.run(memo="verify")``) are listed under
``memo/evidence/<key>``. Any other store keeps its index in this process's memory.

The index holds no data: an entry is only a pointer, checked before it is trusted (hlx_core/memo/records.py),
so losing one (a crash before its rename, a removed folder) costs a recomputation, nothing else.
"""
from __future__ import annotations

import logging
import os
import threading
import weakref
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator

from hlx_core.cas.disk import DiskStore
from hlx_core.cas.store import Store
from hlx_core.codec.handle import Handle, is_handle
from hlx_core.device.lru import LRU

log = logging.getLogger("hlx.memo")

FOLDER = "memo"
EVIDENCE = "evidence"
_TEMP_PREFIX = ".tmp-"


class MemoIndex(ABC):
    """Execution keys (64 hex digits) to record handles (as text; the reader checks them)."""

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The record handle the entry of ``key`` holds, or None."""

    @abstractmethod
    def put(self, key: str, record: str) -> None:
        """Point ``key`` at ``record``, replacing what was there."""

    @abstractmethod
    def drop(self, key: str, record: str) -> None:
        """Remove the entry of ``key`` if it still points at ``record`` (a writer may have replaced it)."""

    @abstractmethod
    def entries(self) -> Iterator[tuple[str, str]]:
        """Every (key, record) pair."""

    @abstractmethod
    def add_evidence(self, key: str, records: list[str]) -> None:
        """Keep ``records`` (the runs of ``key`` that disagreed) as evidence, beside what is kept already."""

    @abstractmethod
    def evidence(self) -> Iterator[tuple[str, list[str]]]:
        """Every (key, records kept as evidence) pair."""

    @abstractmethod
    def clear(self) -> int:
        """Remove every entry and every piece of evidence; returns how many entries there were."""


class MemoryIndex(MemoIndex):
    """The index of a store that is not a DiskStore: it lives as long as the store object."""

    def __init__(self) -> None:
        self._entries: dict[str, str] = {}
        self._evidence: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        return self._entries.get(key)

    def put(self, key: str, record: str) -> None:
        with self._lock:
            self._entries[key] = record

    def drop(self, key: str, record: str) -> None:
        with self._lock:
            if self._entries.get(key) == record:
                del self._entries[key]

    def entries(self) -> Iterator[tuple[str, str]]:
        with self._lock:
            return iter(list(self._entries.items()))

    def add_evidence(self, key: str, records: list[str]) -> None:
        with self._lock:
            kept = self._evidence.setdefault(key, [])
            kept.extend(r for r in records if r not in kept)

    def evidence(self) -> Iterator[tuple[str, list[str]]]:
        with self._lock:
            return iter([(k, list(v)) for k, v in self._evidence.items()])

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self._evidence.clear()
            return count


class DiskIndex(MemoIndex):
    """One file per key under ``folder``; safe for concurrent processes without locks (atomic renames)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._prefix = os.path.join(folder, "")  # every run looks its key up: no pathlib on that path
        # key -> record this process read or wrote: a warm hit reads no file. An entry another process
        # replaced or dropped since is still a record of the same key, and every hit checks its record.
        self._seen: LRU[str, str] = LRU(4096, locked=True)

    def _path(self, key: str) -> str:
        return f"{self._prefix}{key[:2]}{os.sep}{key[2:]}"

    def get(self, key: str) -> str | None:
        seen = self._seen.get(key)
        if seen is not None:
            return seen
        record = self._read(key)
        if record is not None:
            if is_handle(record):  # kept as a Handle: the reader checks a str each time
                record = Handle(record)
            self._seen.put(key, record)
        return record

    def _read(self, key: str) -> str | None:
        try:
            with open(self._path(key), encoding="ascii", errors="replace") as f:
                return f.read(200)
        except OSError:
            return None

    def put(self, key: str, record: str) -> None:
        _write_atomically(Path(self._path(key)), record)
        self._seen.put(key, record)

    def drop(self, key: str, record: str) -> None:
        if self._seen.get(key) == record:
            self._seen.pop(key)
        if self._read(key) == record:
            try:
                os.unlink(self._path(key))
            except OSError:
                pass  # gone already, or not ours to remove: the next reader checks it again

    def entries(self) -> Iterator[tuple[str, str]]:
        for sub in _folders(self.folder):
            if sub.name == EVIDENCE:
                continue
            for path in _files(sub):
                key = sub.name + path.name
                record = self._read(key)
                if record is not None:
                    yield key, record

    def add_evidence(self, key: str, records: list[str]) -> None:
        path = self.folder / EVIDENCE / key
        try:
            kept = path.read_text(encoding="ascii", errors="replace").split()
        except OSError:
            kept = []
        kept.extend(r for r in records if r not in kept)
        _write_atomically(path, "\n".join(kept) + "\n")

    def evidence(self) -> Iterator[tuple[str, list[str]]]:
        for path in _files(self.folder / EVIDENCE):
            try:
                yield path.name, path.read_text(encoding="ascii", errors="replace").split()
            except OSError:
                continue

    def clear(self) -> int:
        count = sum(1 for _ in self.entries())
        import shutil  # here: only a clear needs it (~2 ms to import)
        shutil.rmtree(self.folder, ignore_errors=True)
        self._seen.clear()
        return count


def _folders(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _files(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder)
                if e.is_file(follow_symlinks=False) and not e.name.startswith(_TEMP_PREFIX)]
    except OSError:
        return []


def _write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temp file renamed into place. An index that cannot be written (a
    read-only or full disk) is logged, never raised: a missing entry only means a recomputation."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import tempfile  # here: a warm process that records nothing new never needs it (~4 ms)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=_TEMP_PREFIX)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError as exc:
        log.warning("memo index entry %s not written: %s", path, exc)


_memory_indexes: weakref.WeakKeyDictionary[Store, MemoryIndex] = weakref.WeakKeyDictionary()
_disk_indexes: dict[Path, DiskIndex] = {}  # by store folder (a few per process)
_lock = threading.Lock()


_last: tuple[weakref.ref, MemoIndex] | None = None  # the store asked about last and its index: every run asks


def index_for(store: Store) -> MemoIndex:
    """The memo index of ``store``: beside a DiskStore's objects, else in memory for that store object."""
    global _last
    last = _last
    if last is not None and last[0]() is store:
        return last[1]
    index = _index_for(store)
    _last = (weakref.ref(store), index)
    return index


def _index_for(store: Store) -> MemoIndex:
    if isinstance(store, DiskStore):
        with _lock:  # one per folder: it remembers the entries this process has read
            found = _disk_indexes.get(store.path)
            if found is None:
                found = _disk_indexes[store.path] = DiskIndex(store.path / FOLDER)
            return found
    with _lock:
        found = _memory_indexes.get(store)
        if found is None:
            found = _memory_indexes[store] = MemoryIndex()
        return found
