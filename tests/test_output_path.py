"""The fast paths a warm run's outputs take (cached tensor prefixes, ``Handle.hashed``, the plan-cache key's
handle packing, the disk store's existence check) give exactly what the general code gives.

Every handle here is compared with one computed independently: the general encoder (``_Encoder``, which a
tensor inside a container goes through), joined, hashed in one piece and spelled out by hand.
"""
from __future__ import annotations

import os

import blake3
import numpy as np
import pytest

import hlx
from hlx_core.cas.disk import DiskStore
from hlx_core.codec import encode
from hlx_core.codec.encoder import _Encoder
from hlx_core.codec.handle import HASH_THREADS_MIN_BYTES, Handle
from hlx_core.codec.tensor import bfloat16
from hlx_core.contracts.key import raw_key

DTYPES = ["<f2", "<f4", "<f8", "<i1", "<i2", "<i4", "<i8", "<u1", "<u2", "<u4", "<u8", "?",
          ">f4", ">i2", ">u8", ">f8", "bfloat16"]
SHAPES = [(), (0,), (1,), (7,), (3, 5), (3, 0, 2), (2, 3, 4), (4097,), (1, 1, 1, 1, 1)]


def general_bytes(value: object) -> bytes:
    """LC-B bytes from the general encoder alone (no top-level tensor path)."""
    enc = _Encoder()
    enc.value(value, 0)
    return b"".join(enc.finish())


def spelled(tag: str, data: bytes) -> str:
    return f"&h_{tag}_{blake3.blake3(data).hexdigest()}"


def random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    dt = bfloat16() if dtype == "bfloat16" else np.dtype(dtype)
    if dt.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        drawn = rng.integers(info.min, info.max, size=shape, dtype=dt.newbyteorder("="), endpoint=True)
        return np.asarray(drawn).astype(dt)
    return np.asarray(rng.standard_normal(shape) * 1000).astype(dt)


def layouts(a: np.ndarray) -> list[np.ndarray]:
    """The array, and the same values in other memory layouts: Fortran order, a strided view, a read-only one."""
    found = [a]
    if a.ndim >= 2:
        found.append(np.asfortranarray(a))
    if a.ndim >= 1 and a.shape[0] > 1:
        wide = np.repeat(a, 2, axis=0)
        found.append(wide[::2])  # not contiguous, equal to a
    ro = a.copy()
    ro.flags.writeable = False
    found.append(ro)
    return found


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_tensor_collapses_to_the_general_encoders_handle(dtype, rng):
    store = hlx.MemoryStore()
    for shape in SHAPES:
        a = random_array(rng, dtype, shape)
        expected_bytes = general_bytes([a])[1:]  # a one-element list's header is its only extra byte
        assert general_bytes(a) == expected_bytes
        expected = spelled("tensor", expected_bytes)
        for _ in range(2):  # the second round takes the cached prefixes
            for view in layouts(a):
                assert encode(view) == expected_bytes, (dtype, shape)
                handle = hlx.collapse(view, store)
                assert type(handle) is Handle and handle == expected, (dtype, shape)
                assert Handle(str(handle)) == handle and handle.digest == bytes.fromhex(expected[-64:])
        assert store.get(expected) == expected_bytes  # what was stored is those bytes


def test_random_tensors_and_values_hash_as_spelled_out(rng):
    """Many fresh random arrays (dtype, shape and values drawn anew), and non-tensor values beside them."""
    store = hlx.MemoryStore()
    for _ in range(300):
        dtype = DTYPES[rng.integers(len(DTYPES))]
        shape = tuple(int(d) for d in rng.integers(0, 5, size=rng.integers(0, 4)))
        a = random_array(rng, dtype, shape)
        assert hlx.collapse(a, store) == spelled("tensor", general_bytes(a))
    for value, tag in [(None, "null"), (True, "bool"), (-7, "int"), (2.5, "float"), ("x", "str"),
                       (b"\x00\x01", "blob"), ([1, "a"], "list"), ({"k": [1.5]}, "map"),
                       ({"901": {"a": 1}}, "contract"), (Handle(spelled("tensor", b"x")), "ref")]:
        assert hlx.collapse(value, store) == spelled(tag, general_bytes(value))


@pytest.mark.parametrize("sizes", [[0], [1], [1062], [HASH_THREADS_MIN_BYTES], [3, 5000, 0, 70000],
                                   [HASH_THREADS_MIN_BYTES - 1, 2]])
def test_hashed_equals_from_digest(sizes, rng):
    chunks = [rng.bytes(n) for n in sizes]
    joined = b"".join(chunks)
    expected = Handle.from_digest("blob", blake3.blake3(joined).digest())
    for pieces in (chunks, [memoryview(c) for c in chunks], [bytearray(c) for c in chunks]):
        got = Handle.hashed("blob", pieces)
        assert type(got) is Handle and got == expected and got.tag == "blob"


def test_a_big_endian_array_never_takes_a_little_endian_prefix(rng):
    """The prefix cache is keyed by the array's own dtype: '>f4' after '<f4' of one shape goes the general way
    (swapped), and a bool array never takes the raw path (its bytes are checked)."""
    a = rng.standard_normal((4, 3)).astype("<f4")
    assert hlx.encode(a) == hlx.encode(a.astype(">f4")) == general_bytes(a)
    flags = np.frombuffer(bytes([0, 1, 1, 0]), dtype=np.uint8).view(np.bool_)
    assert hlx.encode(flags) == general_bytes(flags)
    odd = np.frombuffer(bytes([0, 2, 1, 0]), dtype=np.uint8).view(np.bool_)  # a bool byte other than 0 or 1
    assert hlx.encode(odd) == hlx.encode(flags) == general_bytes(odd)


def test_raw_key_keeps_handles_apart_from_strings():
    text = spelled("tensor", b"x")

    class Text(str):
        pass

    class Sub(Handle):
        pass

    handle = Handle(text)
    keys = [raw_key({"901": {"bindings": [v]}}) for v in (handle, text, Text(text))]
    assert None not in keys[:2] and keys[0] != keys[1] and keys[2] is None
    assert raw_key({"901": {"bindings": [Sub(text)]}}) is None
    assert raw_key({"901": {"bindings": [Handle(text)]}}) == keys[0]  # another Handle of the same text
    for _ in range(3):  # cached packings stay exact-typed
        assert raw_key([text, handle]) != raw_key([handle, handle]) != raw_key([text, text])

    class BadHash:
        def __hash__(self) -> int:
            raise RuntimeError("no hash")

    class Items(list):
        pass

    assert raw_key([BadHash()]) is None and raw_key([Items()]) is None and raw_key([(1, 2)]) is None


def test_disk_contains_asks_the_file_system_every_time(tmp_path, rng):
    """A removed object is not contained, however recently it was stored or asked about."""
    store = DiskStore(tmp_path)
    h = hlx.collapse(rng.standard_normal(16), store)
    assert store.contains(h) and store.contains(str(h))
    os.chmod(store.object_path(h), 0o644)
    os.remove(store.object_path(h))
    assert not store.contains(h)
    fresh = rng.standard_normal(16)
    g = hlx.collapse(fresh, store, behind=True)
    assert store.contains(g)  # pending or written
    store.flush()
    assert store.contains(g) and np.array_equal(hlx.resolve(g, store), fresh)


def test_hashed_refuses_an_unknown_tag():
    with pytest.raises(hlx.HLXError) as err:
        Handle.hashed("tensors", [b"x"])
    assert err.value.code == "E_HANDLE_INVALID"
