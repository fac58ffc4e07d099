"""Handles, collapse/resolve/exists, the default store, MemoryStore, snapshots and transactions.

DiskStore specifics (layout, integrity, mmap, gc on files, concurrency) are in test_cas_disk.py.
"""
from __future__ import annotations

import random
import re
import threading

import blake3
import numpy as np
import pytest
from codec_values import DTYPES, same, shuffled, values
from hypothesis import HealthCheck, given, settings

import hlx
from hlx_core.codec.handle import blake3_digest, is_handle, tag_of

HANDLE_RE = re.compile(r"^&h_[a-z]+_[0-9a-f]{64}$")


@pytest.fixture(params=["memory", "disk", "disk-mmap"])
def store(request, tmp_path):
    """Every store kind; "disk-mmap" maps every object so the mmap decode path sees all value kinds."""
    if request.param == "memory":
        return hlx.MemoryStore()
    return hlx.DiskStore(tmp_path / "store", mmap_min_bytes=1 if request.param == "disk-mmap" else 1 << 16)


@pytest.fixture
def default_store_reset():
    yield
    hlx.set_default_store(None)


def sample_values(rng: np.random.Generator) -> dict:
    """One value of every kind, with fresh random contents."""
    t = rng.standard_normal((3, 4)).astype(np.float32)
    inner = hlx.Handle.from_digest("tensor", rng.bytes(32))
    return {
        "null": None, "bool": True, "int": int(rng.integers(-2**62, 2**62)), "bigint": 2**64 - 1,
        "float": float(rng.standard_normal()), "str": "caf\u00e9 \u65e5\u672c " + str(rng.integers(1e9)),
        "blob": rng.bytes(100), "list": [1, "two", 3.0, None, [rng.bytes(3)]],
        "map": {"b": 1, "a": [t, {"x": inner}]},
        "contract": {"901": {"kernel_name": "add", "bindings": [inner, {"output": {"dtype": "float32"}}]}},
        "tensor": t, "tensor0d": np.array(rng.integers(100), dtype=np.int64),
        "tensor_empty": np.zeros((0, 3), np.float64),
        "tensor_strided": rng.standard_normal((6, 8))[::2, 1::3],
        "handle": inner,
    }


EXPECTED_TAGS = {"null": "null", "bool": "bool", "int": "int", "bigint": "int", "float": "float", "str": "str",
                 "blob": "blob", "list": "list", "map": "map", "contract": "contract", "tensor": "tensor",
                 "tensor0d": "tensor", "tensor_empty": "tensor", "tensor_strided": "tensor", "handle": "ref"}


def test_handle_format_and_tag(rng):
    s = hlx.MemoryStore()
    for name, value in sample_values(rng).items():
        h = hlx.collapse(value, s)
        assert type(h) is hlx.Handle and isinstance(h, str) and HANDLE_RE.match(h)
        assert h.tag == EXPECTED_TAGS[name], name
        assert h.hex == blake3.blake3(hlx.encode(value)).hexdigest()
        assert h == f"&h_{h.tag}_{h.hex}" and h.digest == bytes.fromhex(h.hex)


def test_round_trip_every_kind(store, rng):
    for name, value in sample_values(rng).items():
        h = hlx.collapse(value, store)
        assert hlx.exists(h, store)
        back = hlx.resolve(h, store)
        assert same(value, back), name
        assert same(value, hlx.resolve(str(h), store))  # plain str handles work too


def test_resolved_tensors_are_read_only(store, rng):
    t = rng.standard_normal((64, 64))
    back = hlx.resolve(hlx.collapse({"t": t, "l": [t[:3]]}, store), store)
    for arr in (back["t"], back["l"][0]):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1.0
    np.testing.assert_array_equal(back["t"], t)


def test_nested_handles_resolve_to_their_values(store, rng):
    a = rng.standard_normal(1000).astype(np.float32)
    ha = hlx.collapse(a, store)
    hb = hlx.collapse({"inputs": [ha, ha], "scale": 2.5}, store)
    outer = hlx.resolve(hb, store)
    assert outer["inputs"] == [ha, ha] and all(type(x) is hlx.Handle for x in outer["inputs"])
    np.testing.assert_array_equal(hlx.resolve(outer["inputs"][0], store), a)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_round_trip_generated(value):
    s = hlx.MemoryStore()
    h = hlx.collapse(value, s)
    assert h.hex == blake3.blake3(hlx.encode(value)).hexdigest()
    assert same(value, hlx.resolve(h, s))
    assert hlx.collapse(hlx.resolve(h, s), s) == h


def test_equal_values_equal_handles(rng):
    s = hlx.MemoryStore()
    value = sample_values(rng)
    h = hlx.collapse(value, s)
    for seed in range(5):
        assert hlx.collapse(shuffled(value, random.Random(seed)), s) == h  # key order never matters
    assert hlx.collapse((1, 2, 3), s) == hlx.collapse([1, 2, 3], s)
    assert hlx.collapse(-0.0, s) == hlx.collapse(0.0, s)
    t = rng.standard_normal((5, 7))
    assert hlx.collapse(np.asfortranarray(t), s) == hlx.collapse(t.copy(), s)
    # and unequal values get unequal handles
    distinct = [0, 1, 0.0, "0", b"0", [0], {"0": 0}, {"a": 0}, np.zeros(1, np.int64), np.zeros(1, np.int32),
                np.zeros((1, 1), np.int64), None, False]
    assert len({hlx.collapse(v, s) for v in distinct}) == len(distinct)
    t2 = t.copy()
    t2.flat[int(rng.integers(t.size))] += 1.0
    assert hlx.collapse(t2, s) != hlx.collapse(t, s)


@pytest.mark.parametrize("bad", [
    "", "hello", "&h_tensor_" + "0" * 63, "&h_tensor_" + "0" * 65, "&h_tensor_" + "A" * 64,
    "&h_nope_" + "0" * 64, "h_tensor_" + "0" * 64, " &h_tensor_" + "0" * 64, 42, None, b"&h_int_" + b"0" * 64,
])
def test_malformed_handles(store, bad):
    for call in (hlx.resolve, hlx.exists):
        with pytest.raises(hlx.HandleError) as err:
            call(bad, store)
        assert err.value.code == "E_HANDLE_INVALID"
    with pytest.raises(hlx.HandleError, match="E_HANDLE_INVALID"):
        store.put(bad, [b"\xc0"])


def test_absent_handle(store, rng):
    h = hlx.Handle.from_digest("tensor", rng.bytes(32))
    assert not hlx.exists(h, store) and not hlx.exists(str(h), store)
    with pytest.raises(hlx.HandleError) as err:
        hlx.resolve(str(h), store)
    assert err.value.code == "E_HANDLE_NOT_FOUND" and str(h) in str(err.value)
    # same digest, another tag: a different handle, so not found either
    stored = hlx.collapse(rng.bytes(10), store)
    with pytest.raises(hlx.HandleError, match="E_HANDLE_NOT_FOUND"):
        hlx.resolve(stored.replace("&h_blob_", "&h_str_"), store)


def test_bad_store_argument(default_store_reset):
    for call in (lambda: hlx.collapse(1, store="nope"), lambda: hlx.exists("x", store=3),
                 lambda: hlx.set_default_store({})):
        with pytest.raises(hlx.HandleError) as err:
            call()
        assert err.value.code == "E_STORE"


def test_bad_arguments_to_the_store_api(store, rng):
    h = hlx.Handle.from_digest("blob", rng.bytes(32))
    for chunks, match in [(None, "iterable of bytes-like chunks"), (b"\xc0", "iterable of bytes-like chunks"),
                          ("text", "iterable"), ([b"\xc4", 1], "chunk 1 is a int"),
                          ([np.zeros((4, 4), np.uint8)[:, ::2]], "chunk 0 is not a C-contiguous")]:
        with pytest.raises(hlx.HandleError, match=match) as err:
            store.put(h, chunks)
        assert err.value.code == "E_STORE"
    for kwargs, match in [({"keep": 5}, "collection of handles"), ({"keep": str(h)}, "collection"),
                          ({"max_bytes": True}, "int >= 0"), ({"max_bytes": -1}, "int >= 0")]:
        with pytest.raises(hlx.HandleError, match=match) as err:
            store.gc(**kwargs)
        assert err.value.code == "E_STORE"
    assert store.stats()["objects"] == 0


def test_from_digest_refuses_bad_parts(rng):
    assert hlx.Handle.from_digest("map", bytes(32)) == "&h_map_" + "0" * 64
    for tag, digest, match in [("nope", rng.bytes(32), "unknown handle tag 'nope'"), (None, rng.bytes(32), "tag"),
                               ("map", rng.bytes(31), "32 bytes, got 31 bytes"),
                               ("map", rng.bytes(32).hex(), "32 bytes, got a str"), ("map", None, "got a NoneType")]:
        with pytest.raises(hlx.HandleError, match=match) as err:
            hlx.Handle.from_digest(tag, digest)
        assert err.value.code == "E_HANDLE_INVALID"


def test_unencodable_values_are_not_collapsed(store):
    for value in ({1, 2}, [object()], {"k": 1j}):
        with pytest.raises(hlx.CodecError, match="cannot encode") as err:
            hlx.collapse(value, store)
        assert err.value.code == "E_TYPE"
    with pytest.raises(hlx.CodecError, match="cannot encode builtins.set"):
        tag_of({1})
    assert store.stats()["objects"] == 0


def test_default_store_follows_hlx_home(tmp_path, monkeypatch, default_store_reset):
    monkeypatch.setenv("HLX_HOME", str(tmp_path / "a"))
    first = hlx.get_default_store()
    assert isinstance(first, hlx.DiskStore) and first.path == tmp_path / "a"
    assert hlx.get_default_store() is first
    h = hlx.collapse([1, 2, 3])
    assert list((tmp_path / "a" / "objects").glob("*/*")) and hlx.exists(h)
    monkeypatch.setenv("HLX_HOME", str(tmp_path / "b"))
    assert hlx.get_default_store().path == tmp_path / "b" and not hlx.exists(h)
    mem = hlx.MemoryStore()
    hlx.set_default_store(mem)
    assert hlx.get_default_store() is mem
    assert hlx.collapse([1, 2, 3]) == h and hlx.exists(h, mem)
    hlx.set_default_store(None)
    assert hlx.get_default_store().path == tmp_path / "b"


def test_collapse_again_does_not_rewrite(store, rng):
    value = rng.standard_normal(1000)
    h = hlx.collapse(value, store)
    assert store.put(h, [hlx.encode(value)]) is False
    assert store.stats()["objects"] == 1


def test_stats(store, rng):
    def counts():  # every store reports these two; a DiskStore adds its temp files
        stats = store.stats()
        return {"objects": stats["objects"], "bytes": stats["bytes"]}

    assert counts() == {"objects": 0, "bytes": 0}
    vals = [rng.standard_normal(int(n)) for n in rng.integers(1, 500, 5)] + ["x", {"a": 1}]
    for v in vals + vals:
        hlx.collapse(v, store)
    assert counts() == {"objects": len(vals), "bytes": sum(len(hlx.encode(v)) for v in vals)}
    assert set(store.handles()) == {hlx.collapse(v, store) for v in vals}
    assert store.clear() == len(vals)
    assert counts() == {"objects": 0, "bytes": 0} and list(store.handles()) == []


def test_gc_keep_set(store, rng):
    hs = [hlx.collapse(rng.standard_normal(50), store) for _ in range(6)]
    assert store.gc() == []
    removed = store.gc(keep=[hs[1], str(hs[4])])
    assert sorted(removed) == sorted(hs[:1] + hs[2:4] + hs[5:])
    assert set(store.handles()) == {hs[1], hs[4]}
    with pytest.raises(hlx.HandleError, match="E_HANDLE_INVALID"):
        store.gc(keep=["junk"])
    with pytest.raises(hlx.HandleError, match="E_STORE"):
        store.gc(max_bytes=-1)


def test_memory_gc_evicts_least_recently_used(rng):
    s = hlx.MemoryStore()
    vals = [rng.standard_normal(100) for _ in range(4)]  # 4 objects of equal size
    hs = [hlx.collapse(v, s) for v in vals]
    size = s.stats()["bytes"] // 4
    hlx.resolve(hs[0], s)  # read: now most recently used
    hlx.collapse(vals[1], s)  # collapsed again: used too
    assert s.gc(max_bytes=2 * size) == [hs[2], hs[3]]
    assert s.gc(max_bytes=0, keep=[hs[0]]) == [hs[1]]
    assert list(s.handles()) == [hs[0]]


def test_memory_store_borrows_large_buffers(rng):
    t = rng.standard_normal(1 << 18)  # 2 MiB: borrowed
    s = hlx.MemoryStore()
    h = hlx.collapse(t, s)
    t[7] += 1.0  # mutated before the first resolve
    with pytest.raises(hlx.HandleError) as err:
        hlx.resolve(h, s)
    assert err.value.code == "E_INTEGRITY" and h in str(err.value)

    t = rng.standard_normal(1 << 18)
    h = hlx.collapse(t, s)
    expected = t.copy()
    np.testing.assert_array_equal(hlx.resolve(h, s), expected)  # first read takes an owned copy
    t[7] += 1.0
    np.testing.assert_array_equal(hlx.resolve(h, s), expected)

    s = hlx.MemoryStore(borrow=False)
    h = hlx.collapse(t, s)
    expected = t.copy()
    t[:] = 0.5
    np.testing.assert_array_equal(hlx.resolve(h, s), expected)


def test_blake3_digest_matches_plain_hash(rng):
    a = rng.standard_normal((600, 700)).astype(np.float32)  # 1.6 MiB: multithreaded path
    parts = [b"head", memoryview(a), a[:10], bytearray(b"tail")]
    joined = b"head" + a.tobytes() + a[:10].tobytes() + b"tail"
    assert blake3_digest(parts) == blake3.blake3(joined).digest()
    assert blake3_digest([b"abc"]) == blake3.blake3(b"abc").digest()


def test_snapshot(store, rng):
    before = hlx.snapshot(store)
    assert before.objects == 0 and len(before) == 0 and before.bytes == 0
    h1 = hlx.collapse(rng.bytes(64), store)
    h2 = hlx.collapse("text", store)
    after = hlx.snapshot(store)
    assert after.handles - before.handles == {h1, h2} and h1 in after and h1 not in before
    assert after.bytes == store.stats()["bytes"] and after.objects == 2
    with pytest.raises(AttributeError):
        after.bytes = 0  # type: ignore[misc]
    store.discard(h1)
    assert h1 in after  # a snapshot does not change with the store


def test_transaction_rolls_back_new_objects(store, rng):
    old = hlx.collapse(rng.bytes(40), store)
    old_value = hlx.resolve(old, store)
    with pytest.raises(KeyError):
        with hlx.transaction(store) as tx:
            new = hlx.collapse(rng.standard_normal(20), store)
            assert hlx.collapse(old_value, store) == old  # existed before: not recorded
            assert tx.created == [new] and tx.store is store
            raise KeyError("boom")
    assert not hlx.exists(new, store) and hlx.exists(old, store)
    assert hlx.resolve(old, store) == old_value

    with hlx.transaction(store) as tx:
        kept = hlx.collapse(rng.standard_normal(20), store)
    assert hlx.exists(kept, store) and tx.created == [kept]


def test_nested_transactions(store, rng):
    with pytest.raises(RuntimeError):
        with hlx.transaction(store):
            a = hlx.collapse(rng.bytes(10), store)
            with pytest.raises(ValueError):
                with hlx.transaction(store):
                    b = hlx.collapse(rng.bytes(10), store)
                    raise ValueError
            assert hlx.exists(a, store) and not hlx.exists(b, store)
            with hlx.transaction(store):
                c = hlx.collapse(rng.bytes(10), store)
            assert hlx.exists(c, store)
            raise RuntimeError
    assert not hlx.exists(a, store) and not hlx.exists(c, store)


def test_transaction_on_default_store(rng, default_store_reset):
    mem = hlx.MemoryStore()
    hlx.set_default_store(mem)
    with pytest.raises(ZeroDivisionError):
        with hlx.transaction():
            h = hlx.collapse(rng.bytes(8))
            raise ZeroDivisionError("the block fails after storing")
    assert not hlx.exists(h) and mem.stats()["objects"] == 0


def test_transaction_ignores_other_threads(store, rng):
    """Objects another thread stores during a transaction are not this transaction's to roll back."""
    blobs = [rng.bytes(30) for _ in range(20)]
    started, done = threading.Event(), threading.Event()
    theirs: list = []

    def other() -> None:
        started.wait()
        theirs.extend(hlx.collapse(b, store) for b in blobs)
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with pytest.raises(LookupError):
        with hlx.transaction(store):
            mine = hlx.collapse(rng.bytes(31), store)
            started.set()
            done.wait(10)
            raise LookupError
    thread.join()
    assert not hlx.exists(mine, store)
    assert all(hlx.exists(h, store) for h in theirs) and len(theirs) == len(blobs)


def test_threads_collapse_into_one_store(store, rng):
    vals = [rng.standard_normal(int(n)).astype(np.float32) for n in rng.integers(1, 3000, 12)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(6) as pool:
        handles = list(pool.map(lambda i: hlx.collapse(vals[i % len(vals)], store), range(60)))
    assert store.stats()["objects"] == len(vals)
    for i, h in enumerate(handles):
        np.testing.assert_array_equal(hlx.resolve(h, store), vals[i % len(vals)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_dtypes(store, rng, dtype):
    raw = rng.integers(0, 256, 24 * np.dtype(dtype).itemsize, dtype=np.uint8)
    t = raw.view(dtype).reshape(2, 3, 4) if dtype != "bool" else (raw[:24] & 1).astype(bool).reshape(2, 3, 4)
    back = hlx.resolve(hlx.collapse(t, store), store)
    assert back.dtype == t.dtype and back.shape == t.shape and back.tobytes() == t.tobytes()


def test_bytes_under_a_wrong_handle_are_never_handed_out(store, rng):
    wrong = hlx.Handle.from_digest("blob", rng.bytes(32))
    with pytest.raises(hlx.HandleError) as err:
        store.put(wrong, [hlx.encode(rng.bytes(20))])  # stores trust the handle at put ...
        store.get(wrong)  # ... and check it when reading
    assert err.value.code == "E_INTEGRITY" and wrong in str(err.value)
    assert not store.contains(wrong)


def test_a_handle_with_a_trailing_newline_is_refused():
    h = hlx.collapse(b"abc")
    for bad in (h + "\n", " " + h, h + " ", h.upper()):
        with pytest.raises(hlx.HandleError) as err:
            hlx.resolve(bad)
        assert err.value.code == "E_HANDLE_INVALID" and not is_handle(bad)


def test_bytes_under_another_kinds_tag_do_not_resolve():
    """The tag is not part of the hash: a map's bytes put under a tensor handle must not come back."""
    store = hlx.MemoryStore()
    real = hlx.collapse({"a": 1}, store=store)
    forged = hlx.Handle(real.replace("&h_map_", "&h_tensor_"))
    store.put(forged, [hlx.encode({"a": 1})])
    with pytest.raises(hlx.HandleError) as err:
        hlx.resolve(forged, store=store)
    assert err.value.code == "E_INTEGRITY" and "map" in err.value.message
    assert hlx.resolve(real, store=store) == {"a": 1}


def test_the_default_store_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("HLX_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a"))
    assert hlx.get_default_store().path == tmp_path / "a" / "hlx"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert hlx.get_default_store().path == tmp_path / "b" / "hlx"
