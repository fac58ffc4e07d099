"""DiskStore: layout, atomic writes, integrity, memory-mapped resolve, gc on files, processes."""
from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
import resource
import time

import numpy as np
import pytest

import hlx
from hlx_core.cas import disk


def temp_files(store: hlx.DiskStore) -> list:
    return [p for p in store.objects.glob("*/*") if p.name.startswith(disk.TEMP_PREFIX)]


def test_layout_fanned_out_by_hash_prefix(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    assert not (tmp_path / "objects").exists()  # nothing is created before the first write
    h = hlx.collapse(rng.standard_normal(10), store)
    path = tmp_path / "objects" / h.hex[:2] / f"{h.hex[2:]}.tensor"
    assert store.object_path(h) == path and path.is_file()
    assert path.read_bytes() == hlx.encode(hlx.resolve(h, store))
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # objects are read-only files
    assert temp_files(store) == []
    # files that are not objects are ignored by listings
    (path.parent / "README").write_text("not an object")
    (tmp_path / "objects" / "zz").write_text("stray file")
    assert list(store.handles()) == [h]


@pytest.mark.parametrize("size", [200, 300_000])  # read path and mmap path
def test_corrupt_object_raises_integrity_error(tmp_path, rng, size, monkeypatch):
    maps: list = []

    class TrackedMap(mmap.mmap):
        def __new__(cls, *args, **kwargs):
            maps.append(super().__new__(cls, *args, **kwargs))
            return maps[-1]

    monkeypatch.setattr(mmap, "mmap", TrackedMap)
    store = hlx.DiskStore(tmp_path)
    value = rng.integers(0, 255, size, dtype=np.uint8)
    h = hlx.collapse(value, store)
    path = store.object_path(h)
    data = bytearray(path.read_bytes())
    data[-1 - int(rng.integers(size))] ^= 0x40
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    with pytest.raises(hlx.HandleError) as err:
        hlx.resolve(h, store)
    assert err.value.code == "E_INTEGRITY" and h in str(err.value)
    assert len(maps) == (size >= store.mmap_min_bytes) and all(m.closed for m in maps)  # no mapping leaks
    # the corrupt file is gone, so collapsing the value again repairs the store
    assert not hlx.exists(h, store)
    assert hlx.collapse(value, store) == h
    np.testing.assert_array_equal(hlx.resolve(h, store), value)


def test_large_tensor_resolves_memory_mapped(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    t = rng.standard_normal((512, 256)).astype(np.float32)  # 512 KiB
    h = hlx.collapse(t, store)
    assert isinstance(store.get(h), mmap.mmap)
    back = hlx.resolve(h, store)
    np.testing.assert_array_equal(back, t)
    assert not back.flags.writeable
    with pytest.raises(ValueError):
        back[0, 0] = 0.0
    base = back
    while isinstance(getattr(base, "base", None), np.ndarray):
        base = base.base
    assert isinstance(base.base, (mmap.mmap, memoryview))
    # the mapping stays valid after gc removes the file
    assert store.gc(keep=[]) == [h] and not store.object_path(h).exists()
    np.testing.assert_array_equal(back, t)
    assert isinstance(store.get(hlx.collapse(b"small", store)), bytes)


def test_gc_evicts_least_recently_used_by_mtime(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    hs = [hlx.collapse(rng.integers(0, 9, 100, dtype=np.int64), store) for _ in range(4)]
    size = store.stats()["bytes"] // 4
    now = time.time()
    for age, h in zip((400, 300, 200, 100), hs):  # hs[0] oldest
        os.utime(store.object_path(h), (now - age, now - age))
    hlx.resolve(hs[0], store)  # reading marks it used
    hlx.collapse(hlx.resolve(hs[1], store).copy(), store)  # so does collapsing it again
    assert store.gc(max_bytes=2 * size + 1) == [hs[2], hs[3]]
    assert store.gc(max_bytes=size, keep=[hs[0]]) == [hs[1]]
    assert list(store.handles()) == [hs[0]]
    assert store.gc(max_bytes=0, keep=[hs[0]]) == [] and store.stats()["objects"] == 1


def test_gc_and_clear_remove_only_stale_temp_files(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    h = hlx.collapse(rng.bytes(50), store)
    folder = store.object_path(h).parent
    stale, fresh = folder / f"{disk.TEMP_PREFIX}dead", folder / f"{disk.TEMP_PREFIX}busy"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    old = time.time() - disk.STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    assert store.stats() == {"objects": 1, "bytes": len(hlx.encode(hlx.resolve(h, store))),
                             "temp_files": 2, "temp_bytes": 2}
    assert store.gc() == []
    assert not stale.exists() and fresh.exists()  # a fresh temp file may be a write in progress
    assert store.clear() == 1 and fresh.exists()


def test_store_errors_are_hlx_errors(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    store = hlx.DiskStore(tmp_path / "file")
    with pytest.raises(hlx.HandleError) as err:
        hlx.collapse([1, 2], store)
    assert err.value.code == "E_STORE" and "file" in str(err.value)
    assert not hlx.exists(hlx.collapse([1, 2], hlx.MemoryStore()), store)


def test_bad_constructor_arguments(tmp_path):
    for args, kwargs, match in [((None,), {}, "got NoneType"), ((3,), {}, "got int"), ((b"/tmp",), {}, "got bytes"),
                                ((tmp_path,), {"mmap_min_bytes": "64k"}, "mmap_min_bytes must be an int")]:
        with pytest.raises(hlx.HandleError, match=match) as err:
            hlx.DiskStore(*args, **kwargs)
        assert err.value.code == "E_STORE"
    assert hlx.DiskStore(str(tmp_path), mmap_min_bytes=0).mmap_min_bytes == 1


def test_failed_write_leaves_no_temp_file(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    h = hlx.collapse(b"ok", store)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # writes past 4 KiB fail with EFBIG
    try:
        with pytest.raises(hlx.HandleError) as err:
            hlx.collapse(rng.bytes(100_000), store)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert err.value.code == "E_STORE"
    assert temp_files(store) == [] and list(store.handles()) == [h]


def test_pickles_by_path(tmp_path):
    store = hlx.DiskStore(tmp_path, mmap_min_bytes=123)
    h = hlx.collapse("shared", store)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.path == store.path and copy.mmap_min_bytes == 123 and hlx.resolve(h, copy) == "shared"


def _worker_values(seed: int) -> list:
    """Values that overlap between workers (shared, and one large tensor) plus some of each worker's own."""
    rng = np.random.default_rng(seed)
    shared = [np.arange(i * 1000, dtype=np.float32) for i in range(1, 6)]
    own = [rng.standard_normal(500) for _ in range(3)]
    big = np.full(1 << 19, 3.25)  # 4 MiB: the multithreaded hash path, identical in every worker
    return shared + own + [big, {"k": shared[0]}]


def _collapse_many(path: str, seed: int) -> list[str]:
    store = hlx.DiskStore(path)
    return [str(hlx.collapse(v, store)) for v in _worker_values(seed)]


def test_processes_collapse_into_one_store(tmp_path, rng):
    # Hash something large first so blake3's thread pool exists when the workers are forked.
    hlx.collapse(np.ones(1 << 19), hlx.MemoryStore())
    store = hlx.DiskStore(tmp_path)
    seeds = [int(s) for s in rng.integers(0, 2**31, 4)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.starmap_async(_collapse_many, [(str(tmp_path), s) for s in seeds]).get(timeout=60)
    for seed, handles in zip(seeds, results):
        values = _worker_values(seed)
        assert handles == [hlx.collapse(v, hlx.MemoryStore()) for v in values]
        for h, value in zip(handles, values):
            back = hlx.resolve(h, store)
            if isinstance(value, dict):
                np.testing.assert_array_equal(back["k"], value["k"])
            else:
                np.testing.assert_array_equal(back, value)
    assert len({h for r in results for h in r}) == store.stats()["objects"] == 5 + 3 * 4 + 2
    assert temp_files(store) == []


def _age(store, handle, seconds):
    path = store.object_path(handle)
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_the_store_caps_itself_sparing_fresh_objects(tmp_path, rng):
    store = hlx.DiskStore(tmp_path, max_bytes=4 << 20)
    old = [hlx.collapse(rng.standard_normal(1 << 16), store=store) for _ in range(6)]  # 6 x 512 KiB
    for h in old:
        _age(store, h, 3600)
    store._touched.clear()  # as a later process would see them
    fresh = [hlx.collapse(rng.standard_normal(1 << 16), store=store) for _ in range(6)]
    stats = store.stats()
    assert stats["bytes"] <= 4 << 20, stats
    assert all(store.contains(h) for h in fresh)  # used moments ago: spared
    assert not all(store.contains(h) for h in old)


def test_gc_grace_keeps_recent_objects(tmp_path, rng):
    store = hlx.DiskStore(tmp_path, max_bytes=0)
    a, b = (hlx.collapse(rng.standard_normal(100), store=store) for _ in range(2))
    _age(store, a, 120)
    assert store.gc(max_bytes=0, grace_seconds=60) == [a]
    assert store.contains(b)
    with pytest.raises(hlx.HandleError):
        store.gc(max_bytes=0, grace_seconds=-1)


def test_store_cap_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HLX_STORE_MAX_BYTES", "512M")
    assert hlx.DiskStore(tmp_path).max_bytes == 512 << 20
    monkeypatch.setenv("HLX_STORE_MAX_BYTES", "lots")
    with pytest.raises(hlx.HLXError) as err:
        hlx.DiskStore(tmp_path)
    assert err.value.code == "E_CONFIG" and "HLX_STORE_MAX_BYTES" in err.value.message


def test_stats_count_temp_files(tmp_path, rng):
    store = hlx.DiskStore(tmp_path)
    h = hlx.collapse(rng.standard_normal(10), store=store)
    temp = store.object_path(h).parent / ".tmp-left-by-a-killed-writer"
    temp.write_bytes(b"x" * 100)
    assert store.stats()["temp_files"] == 1 and store.stats()["temp_bytes"] == 100
    past = time.time() - 7200
    os.utime(temp, (past, past))
    store.gc(max_bytes=1 << 30)
    assert store.stats()["temp_files"] == 0
