"""A store shared by a cluster through fsspec (``file://`` on a shared mount, ``s3://…``), with a local
DiskStore in front.

Objects keep a DiskStore's layout under the URL (``objects/<2 hex>/<62 hex>.<tag>``), so a DiskStore's
folder on a shared mount is such a store as it is. Reads come from the local store when it has the object;
otherwise the object is fetched, checked against its hash (E_INTEGRITY on a mismatch, the damaged remote
object removed so the next writer restores it) and kept locally. Writes go to both, the remote one written
under a temporary name and moved into place, so no reader sees half an object. Needs ``fsspec`` (the
``hlx[dist]`` extra); ``s3://`` also needs ``s3fs``.
"""
from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from hlx_core.cas.disk import DiskStore
from hlx_core.cas.store import Entry, Store
from hlx_core.codec.handle import Handle, blake3_digest, is_handle
from hlx_core.errors import HandleError, HLXError

Buffer = Any


def _filesystem(url: str, options: dict[str, Any]) -> tuple[Any, str]:
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise HLXError("E_DEPENDENCY", "a shared store needs fsspec: pip install 'hlx[dist]'") from exc
    try:
        return url_to_fs(url, **options)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its package (s3fs) is missing
        raise HandleError("E_STORE", f"cannot open the shared store {url!r}: {exc}") from exc


class SharedStore(Store):
    """Objects under an fsspec URL, cached in ``local`` (a DiskStore; default: one under ``$HLX_HOME``);
    ``options`` go to the fsspec filesystem (an S3 ``endpoint_url``, credentials)."""

    def __init__(self, url: str, local: DiskStore | None = None, **options: Any) -> None:
        super().__init__()
        if not isinstance(url, str) or "://" not in url:
            raise HandleError("E_STORE", f"a shared store needs an fsspec URL such as file:///mnt/hlx or "
                                         f"s3://bucket/hlx, got {url!r}")
        self.url = url
        self.options = options
        self.fs, root = _filesystem(url, options)
        self.root = root.rstrip("/")
        if local is None:
            from hlx_core.settings import hlx_home
            local = DiskStore(hlx_home())
        self.local = local
        self._published: set[Handle] = set()  # objects this process knows the shared side has

    def __repr__(self) -> str:
        return f"SharedStore({self.url!r}, local={self.local!r})"

    def __reduce__(self) -> tuple:
        return (partial(type(self), **self.options), (self.url, self.local))

    def _remote(self, handle: Handle) -> str:
        return f"{self.root}/objects/{handle.hex[:2]}/{handle.hex[2:]}.{handle.tag}"

    def _io(self, what: str, handle: Handle, exc: Exception) -> HandleError:
        return HandleError("E_STORE", f"shared store {self.url}: cannot {what} {handle}: {type(exc).__name__}: {exc}")

    def publish(self, handle: Handle) -> None:
        """Make sure the shared side has ``handle``, which may so far be in the local store only (a kernel
        helper collapses its inputs into the default store, this store's local one)."""
        if handle not in self._published:
            self._write_remote(Handle(handle), [self.local.get(handle)] if self.local.contains(handle) else None)
            self._published.add(Handle(handle))

    def forget_published(self, handles: Iterable[Handle]) -> None:
        """Publish ``handles`` again when next asked: the shared side lost them (another process removed
        them after this one published them)."""
        for h in handles:
            self._published.discard(Handle(h))

    def _write_remote(self, handle: Handle, chunks: Sequence[Buffer] | None) -> bool:
        """Write the object under a temporary name and move it into place unless it is there already;
        True when this call wrote it. ``chunks`` None: nothing to write (a missing object stays missing)."""
        path = self._remote(handle)
        try:
            if chunks is None or self.fs.exists(path):
                return False
            temp = f"{path}.tmp-{uuid.uuid4().hex}"
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            self.fs.pipe_file(temp, b"".join(bytes(c) for c in chunks))
            self.fs.mv(temp, path)
        except OSError as exc:
            raise self._io("write", handle, exc) from exc
        return True

    # -- the primitives --------------------------------------------------------------------------------
    def _put(self, handle: Handle, chunks: Sequence[Buffer]) -> bool:
        self.local.put(handle, chunks)
        created = self._write_remote(handle, chunks)
        self._published.add(handle)
        return created

    def _get(self, handle: Handle) -> Buffer | None:
        if self.local.contains(handle):
            try:
                return self.local.get(handle)
            except HandleError:
                pass  # the local copy was damaged (and removed): fetch it again
        path = self._remote(handle)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._io("read", handle, exc) from exc
        if blake3_digest([data]) != handle.digest:
            self._published.discard(handle)
            try:
                self.fs.rm_file(path)
            except OSError:
                pass  # another reader removed it first
            raise HandleError("E_INTEGRITY", f"{handle}: the object at {self.url} does not match its hash "
                                             "(corrupt; removed so the value can be stored again)")
        self.local.put(handle, [data])
        return data

    def _contains(self, handle: Handle) -> bool:
        if self.local.contains(handle):
            return True
        try:
            return bool(self.fs.exists(self._remote(handle)))
        except OSError as exc:
            raise self._io("look up", handle, exc) from exc

    def _discard(self, handle: Handle) -> bool:
        self.local.discard(handle)
        self._published.discard(handle)
        path = self._remote(handle)
        try:
            if not self.fs.exists(path):
                return False
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._io("remove", handle, exc) from exc
        return True

    def _entries(self) -> list[Entry]:
        try:
            found = self.fs.find(f"{self.root}/objects", detail=True)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise HandleError("E_STORE", f"shared store {self.url}: cannot list its objects: {exc}") from exc
        entries = []
        for path, info in found.items():
            folder, name = path.rsplit("/", 2)[-2:]
            stem, _, tag = name.partition(".")
            text = f"&h_{tag}_{folder}{stem}"
            if is_handle(text):
                entries.append(Entry(Handle(text), int(info.get("size") or 0), _modified(info)))
        return entries


def _modified(info: dict[str, Any]) -> float:
    """An fsspec listing's modification time as seconds (file: ``mtime``, S3: ``LastModified``)."""
    value = info.get("mtime", info.get("LastModified"))
    if isinstance(value, (int, float)):
        return float(value)
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else time.time()


def open_store(spec: Store | str | None) -> Store | None:
    """A Store from what an executor is given: a Store as is, an fsspec URL as a SharedStore, None as None."""
    if spec is None or isinstance(spec, Store):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return SharedStore(os.fspath(spec))
    raise HandleError("E_STORE", f"store must be a Store or an fsspec URL, got {type(spec).__name__}")
