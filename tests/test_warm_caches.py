"""What a warm ``hlx.run`` keeps between runs so that a hit or a run costs little, and the change that must
take each kept thing away: the execution key kept per route (the backend's byte settings, read on every
run, and the salt), the record a hit checked before (still asked whether the store holds it and each
output), the memo index of the store asked last, an index entry read from its file, the session caches'
recency, and an input's array once loaded."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest
from plugin_fakes import plugins  # noqa: F401 (fixture)

import hlx
from hlx_core import registry
from hlx_core.codec.handle import Handle
from hlx_core.device.lru import LRU
from hlx_core.device.poison import ENV_POISON
from hlx_core.memo.index import DiskIndex, index_for
from hlx_core.memo.key import derive_key, key_fields, platform, settings
from hlx_core.plan import InputRef
from hlx_core.planner import plan as make_plan

SETTING = "HLX_TEST_BYTES_SETTING"
OTHER = "HLX_TEST_OTHER_BYTES_SETTING"


def _relu(rng):
    a = rng.standard_normal(48).astype(np.float32)
    return hlx.kernels.relu(a), np.maximum(a.astype(np.float64), 0)


def _fresh_key(contract, names: tuple[str, ...], salt: str = "") -> str:
    """The execution key of a cpu run of ``contract``, derived from scratch (no cache)."""
    entry = registry.backend_entries()["cpu"]
    device = hlx.run(contract, backend="cpu", memo=False).device
    info = next(d for d in entry.availability().devices if d.name == device)
    return derive_key(key_fields(make_plan(contract).key, platform("cpu", entry.version, info), settings(names),
                                 salt))


def test_the_key_kept_per_route_follows_the_settings_and_the_salt(plugins, rng, monkeypatch):
    plugins("cpu")
    backend = registry.backend_entries()["cpu"].backend
    names = backend.byte_settings
    monkeypatch.delenv(SETTING, raising=False)
    monkeypatch.delenv(OTHER, raising=False)
    contract, want = _relu(rng)
    plain = hlx.run(contract, backend="cpu")
    assert plain.exec_key == _fresh_key(contract, names)
    monkeypatch.setattr(type(backend), "byte_settings", (SETTING,))  # the names are part of the key
    named = hlx.run(contract, backend="cpu")
    assert named.exec_key == _fresh_key(contract, (SETTING,)) != plain.exec_key and not named.memo_hit
    monkeypatch.setattr(type(backend), "byte_settings", (OTHER,))  # as unset, but another name
    other = hlx.run(contract, backend="cpu")
    assert other.exec_key == _fresh_key(contract, (OTHER,)) not in (plain.exec_key, named.exec_key)
    monkeypatch.setattr(type(backend), "byte_settings", (SETTING,))
    monkeypatch.setenv(SETTING, "1")  # read on every run: a changed value is a new key at once
    changed = hlx.run(contract, backend="cpu")
    assert changed.exec_key == _fresh_key(contract, (SETTING,)) not in (plain.exec_key, named.exec_key)
    assert not changed.memo_hit
    monkeypatch.setenv(SETTING, " 1 ")  # as settings() spells it: stripped
    assert hlx.run(contract, backend="cpu").exec_key == changed.exec_key
    poison = os.environ.get(ENV_POISON)
    monkeypatch.setenv(ENV_POISON, "0" if poison == "1" else "1")  # every backend's
    poisoned = hlx.run(contract, backend="cpu")
    assert poisoned.exec_key == _fresh_key(contract, (SETTING,)) != changed.exec_key
    salted = hlx.run(contract, backend="cpu", memo_salt="s")
    assert salted.exec_key == _fresh_key(contract, (SETTING,), "s") != poisoned.exec_key
    monkeypatch.setattr(type(backend), "byte_settings", names)
    monkeypatch.delenv(SETTING)
    if poison is None:
        monkeypatch.delenv(ENV_POISON)
    else:
        monkeypatch.setenv(ENV_POISON, poison)
    back = hlx.run(contract, backend="cpu")
    assert back.exec_key == plain.exec_key and back.memo_hit
    np.testing.assert_allclose(np.asarray(back), want, rtol=0)


def test_a_warm_hit_still_asks_whether_the_store_holds_the_record_and_each_output(plugins, rng):
    """Once a record's outputs were read back and verified, a hit only asks whether the store still holds
    the record and each output: a file removed behind its back (another process's gc) is a miss."""
    plugins("cpu")
    store = hlx.get_default_store()
    for removed in ("output", "record"):
        contract, want = _relu(rng)
        first = hlx.run(contract, backend="cpu")
        hlx.flush()
        assert [hlx.run(contract, backend="cpu").memo_hit for _ in range(3)] == [True] * 3
        record = index_for(store).get(first.exec_key)
        os.unlink(store.object_path(first.outputs[0] if removed == "output" else Handle(record)))
        again = hlx.run(contract, backend="cpu")
        assert not again.memo_hit and again.outputs == first.outputs
        np.testing.assert_array_equal(again.arrays()[0], want.astype(np.float32))


def test_each_store_gets_its_own_memo_index():
    a, b = hlx.MemoryStore(), hlx.MemoryStore()
    ia, ib = index_for(a), index_for(b)
    assert ia is not ib and index_for(a) is ia and index_for(b) is ib and index_for(a) is ia
    ia.put("k" * 64, "r")
    del a, ia
    gc.collect()
    c = hlx.MemoryStore()  # (may take the dead store's id)
    assert index_for(c).get("k" * 64) is None and index_for(b) is ib


def test_an_index_entry_read_from_its_file_is_checked_as_before(tmp_path, rng):
    index = DiskIndex(tmp_path / "memo")
    handle = hlx.collapse(rng.standard_normal(3).astype(np.float32), store=hlx.MemoryStore())
    index.put("a" * 64, handle)
    index.put("b" * 64, "not a handle")
    again = DiskIndex(tmp_path / "memo")  # another process: reads the files
    assert type(again.get("a" * 64)) is Handle and again.get("a" * 64) == handle
    assert again.get("b" * 64) == "not a handle" and type(again.get("b" * 64)) is str


@pytest.mark.parametrize("locked", [False, True])
def test_a_cache_hit_makes_the_entry_most_recently_used(locked):
    evicted = []
    lru: LRU[str, int] = LRU(2, lambda k, v: evicted.append(k), locked=locked)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1 and lru.get("missing") is None
    lru.put("c", 3)
    assert evicted == ["b"] and lru.get("a") == 1 and lru.get("b") is None


def test_an_input_loaded_on_first_use_stays_loaded_and_immutable(rng):
    array = rng.standard_normal(5).astype(np.float32)
    loads = []
    ref = InputRef(Handle("&h_tensor_" + "0" * 64), dtype=np.float32, shape=(5,),
                   load=lambda: loads.append(1) or array)
    assert ref.loaded is None
    assert ref.array is array and ref.loaded is array and ref.array is array and loads == [1]
    with pytest.raises(AttributeError):
        ref.loaded = None  # type: ignore[misc]
    assert InputRef(ref.handle, array).loaded is array
