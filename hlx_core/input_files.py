"""The files ``hlx run`` reads: a contract (LC-B or JSON) and the files a JSON contract names.

A contract file may come from anyone, so reading it must not be a way to exhaust the host or to read what
the user did not mean to hand over (a shader can copy any input into an output):

- only regular files are read (a device such as /dev/zero, a FIFO, a directory or a socket is E_IO, found
  from ``fstat`` after a non-blocking open, so a FIFO cannot block the open either);
- a file larger than the codec's size limit (``hlx_core.codec.set_limits``) is E_SIZE_EXCEEDED, checked
  from its size before a byte is read;
- a ``.npy`` is memory-mapped, never copied, after checking that the data its header claims fits the file;
- the files a JSON contract names (``$file``, ``$npy``) must lie, symlinks resolved, inside the contract's
  folder or a folder the user allows explicitly (``hlx run --allow-path DIR``); anything else is E_IO;
- a JSON integer outside LC-B's range (or of more digits than any in it) is E_TYPE, a non-finite number
  E_FLOAT_SPECIAL, a ``$tensor`` dtype LC-B has no code for E_CONTRACT_FIELD_TYPE.

JSON has no bytes and no tensors, so a few one-key maps stand for them:

- ``{"$bytes": "<base64>"}`` → bytes;  ``{"$file": "shader.spv"}`` → that file's bytes;
- ``{"$tensor": [[1, 2], [3, 4]], "dtype": "float32"}`` → the array (any LC-B dtype, "bfloat16"
  included), collapsed into the store; its handle;
- ``{"$npy": "x.npy"}`` → the array in that .npy file, collapsed into the store; its handle. NumPy has no
  bfloat16, so ``np.save`` writes an ml_dtypes bfloat16 array as raw 2-byte items (``<V2``), which say
  nothing of their type: ``{"$npy": "x.npy", "dtype": "bfloat16"}`` reads such a file as bfloat16 (a
  ``"dtype"`` naming anything else must be the file's own). float16 (``<f2``) needs nothing.
"""
from __future__ import annotations

import base64
import json
import math
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterator, Sequence

import numpy as np

from hlx_core.cas import api as cas
from hlx_core.codec import decode, max_bytes
from hlx_core.codec.handle import is_handle
from hlx_core.codec.tensor import bfloat16, dtype_code, tensor_dtype
from hlx_core.errors import CodecError, ContractError, HLXError

# LC-B's integer range (docs/LCB.md) and the most digits a JSON integer in it can have.
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1
_INT_DIGITS = len(str(_UINT_MAX))
_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO",
          stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket"}


@dataclass(frozen=True)
class Folders:
    """The folders a contract's ``$file``/``$npy`` names may resolve into: its own folder first, then the
    ``--allow-path`` ones (each resolved, symlinks included, when the contract is loaded)."""

    roots: tuple[Path, ...]

    @classmethod
    def of(cls, contract: Path, allowed: Sequence[str | os.PathLike[str]] = ()) -> Folders:
        """The folder of ``contract`` (of the file a link to it leads to) and the ``allowed`` ones."""
        return cls(tuple(Path(os.path.realpath(p)) for p in (Path(os.path.realpath(contract)).parent, *allowed)))

    def confine(self, name: str, where: str) -> Path:
        """``name`` (relative to the contract's folder, or absolute) resolved; E_IO when it leaves them all."""
        resolved = Path(os.path.realpath(self.roots[0] / name))
        if not any(resolved.is_relative_to(root) for root in self.roots):
            allowed = ", ".join(str(r) for r in self.roots)
            raise HLXError("E_IO", f"{name!r} resolves to {resolved}, outside the folders a contract may read "
                                   f"({allowed}); name its folder with --allow-path to allow it", path=where or None)
        return resolved


def read_file(file: Path, where: str = "") -> bytes:
    """A regular file's bytes, at most the codec's size limit (E_IO, E_SIZE_EXCEEDED otherwise)."""
    with _open_regular(file, where) as (f, size):
        data = f.read(size)
    if len(data) != size:
        raise HLXError("E_IO", f"{file} changed size while being read", path=where or None)
    return data


def read_text(file: Path) -> str:
    """A regular file's text (UTF-8), bounded as ``read_file``."""
    try:
        return read_file(file).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HLXError("E_IO", f"{file} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None


def load_npy(file: Path, where: str = "") -> np.ndarray:
    """The array of a ``.npy`` file, memory-mapped read-only; a header claiming more data than the file
    holds, or one numpy cannot read, is E_IO."""
    with _open_regular(file, where) as (f, size):
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        except ValueError as exc:
            raise HLXError("E_IO", f"{file} is not a .npy file numpy can read: {exc}", path=where or None) from None
        if dtype.hasobject:
            raise HLXError("E_IO", f"{file} holds Python objects ({dtype}), which are never unpickled",
                           path=where or None)
        offset = f.tell()
        claimed = math.prod(shape) * dtype.itemsize
        if any(n < 0 for n in shape) or claimed > size - offset:
            raise HLXError("E_IO", f"{file}: its header claims {dtype}{list(shape)} ({claimed} bytes) but the "
                                   f"file holds {size - offset} bytes of data", path=where or None)
        if claimed == 0:
            return np.zeros(shape, dtype)  # an empty map: nothing to map
        try:
            return np.memmap(f, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
        except (OSError, ValueError) as exc:
            raise HLXError("E_IO", f"cannot map {file}: {exc}", path=where or None) from None


@contextmanager
def _open_regular(file: Path, where: str) -> Iterator[tuple[IO[bytes], int]]:
    """``file`` opened for reading with its size, refused unless it is a regular file of at most
    ``max_bytes()`` bytes. The open does not block (a FIFO would wait for a writer), and the checks are on
    the opened file, so a file swapped in after them is never the one read."""
    at = where or None
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise HLXError("E_IO", f"cannot read {file}: {exc.strerror or exc}", path=at) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = _KINDS.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise HLXError("E_IO", f"cannot read {file}: it is {kind}; only regular files are read", path=at)
        limit = max_bytes()
        if st.st_size > limit:
            raise CodecError("E_SIZE_EXCEEDED", f"{file} holds {st.st_size} bytes, over the size limit of "
                                                f"{limit} (hlx_core.codec.set_limits)", path=at)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        yield f, st.st_size


# -- contracts ---------------------------------------------------------------------------------------

def load_contract(source: str, store: Any, allowed: Sequence[str | os.PathLike[str]] = ()) -> Any:
    """A contract from a file (LC-B, else JSON) or the handle of a stored contract; ``allowed`` folders
    may hold the files a JSON contract names, besides its own folder."""
    if is_handle(source) and not Path(source).exists():
        return source
    data = read_file(Path(source))
    try:
        return decode(data)
    except CodecError as lcb_error:
        try:
            parsed = json.loads(data.decode("utf-8"), parse_int=_json_int, parse_float=_json_float,
                                parse_constant=_json_constant)
        except UnicodeDecodeError:
            raise CodecError(lcb_error.code, f"{source} is neither LC-B ({lcb_error.message}) nor JSON") from None
        except json.JSONDecodeError as exc:
            raise CodecError(lcb_error.code, f"{source} is neither LC-B ({lcb_error.message}) nor JSON (line "
                                             f"{exc.lineno} column {exc.colno}: {exc.msg})") from None
        except RecursionError:
            raise CodecError("E_DEPTH_EXCEEDED", f"{source}: the JSON is nested too deeply") from None
    try:
        return _from_json(parsed, Folders.of(Path(source), allowed), store, "")
    except RecursionError:
        raise CodecError("E_DEPTH_EXCEEDED", f"{source}: the JSON is nested too deeply") from None


def _json_int(text: str) -> int:
    """A JSON integer LC-B can hold; checked by length first, so 5000 digits are never converted."""
    if len(text.lstrip("-")) > _INT_DIGITS or not _INT_MIN <= int(text) <= _UINT_MAX:
        raise CodecError("E_TYPE", f"the JSON integer {text:.30}{'…' if len(text) > 30 else ''} ({len(text)} "
                                   f"characters) is outside LC-B's range [-2**63, 2**64-1]")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise CodecError("E_FLOAT_SPECIAL", f"the JSON number {text:.30} is too large for a float64")
    return value


def _json_constant(text: str) -> float:
    raise CodecError("E_FLOAT_SPECIAL", f"the JSON constant {text} is not a finite number")


def _from_json(value: Any, folders: Folders, store: Any, path: str) -> Any:
    """Replace the JSON spellings of bytes and tensors (see the module docstring) throughout ``value``."""
    if isinstance(value, list):
        return [_from_json(v, folders, store, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if "$bytes" in value:
        try:
            return base64.b64decode(value["$bytes"], validate=True)
        except (ValueError, TypeError) as exc:
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"$bytes is not base64: {exc}", path=path) from None
    if "$file" in value:
        return read_file(folders.confine(_name(value, "$file", path), path), path)
    if "$tensor" in value:
        return cas.collapse(_tensor(value, path), store=store)
    if "$npy" in value:
        return cas.collapse(_npy(value, folders, path), store=store)
    return {k: _from_json(v, folders, store, f"{path}.{k}" if path else k) for k, v in value.items()}


def _name(value: dict, key: str, path: str) -> str:
    """The file name under ``key`` (relative to the JSON file's folder)."""
    name = value[key]
    if not isinstance(name, str) or not name:
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{key} must name a file, not {name!r:.60}", path=path or None)
    return name


def _dtype(value: dict, spelling: str, path: str) -> np.dtype:
    """The dtype ``value["dtype"]`` of a ``spelling`` ("$tensor", "$npy") names: a name numpy reads, such as
    "float32" or "bfloat16", of a dtype LC-B holds."""
    name = value.get("dtype", "float32")
    try:
        dtype = tensor_dtype(name) if isinstance(name, str) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype_code(dtype) is None:
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{spelling} dtype {name!r:.60} is not one LC-B holds (bool, "
                                                     "int8-64, uint8-64, float16-64, bfloat16)", path=path)
    return dtype


def _tensor(value: dict, path: str) -> np.ndarray:
    """A ``$tensor`` spelling as an array of one of LC-B's dtypes."""
    dtype = _dtype(value, "$tensor", path)
    try:
        return np.asarray(value["$tensor"], dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"$tensor: {exc}", path=path) from None


def _npy(value: dict, folders: Folders, path: str) -> np.ndarray:
    """A ``$npy`` spelling's array: the file's, raw 2-byte items read as bfloat16 when ``"dtype"`` says so
    (a view: the file stays mapped, not copied)."""
    array = load_npy(folders.confine(_name(value, "$npy", path), path), path)
    raw = array.dtype.kind == "V" and array.dtype.itemsize == 2 and array.dtype.names is None
    if "dtype" not in value:
        if raw:
            raise ContractError("E_CONTRACT_FIELD_TYPE", f"$npy {value['$npy']!r:.60} holds raw 2-byte items "
                                                         f"({array.dtype.str}), as np.save writes bfloat16: add "
                                                         '"dtype": "bfloat16" to read them so', path=path)
        return array
    dtype = _dtype(value, "$npy", path)
    if raw and dtype == bfloat16():
        return array.view(dtype)
    if dtype_code(dtype) != dtype_code(array.dtype):  # byte order aside (LC-B is little-endian)
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"$npy {value['$npy']!r:.60} holds {array.dtype}, not "
                                                     f"{dtype} (only raw 2-byte items are read as another "
                                                     "dtype: bfloat16)", path=path)
    return array
