"""Memoized execution: the execution key, memo records and their index, hlx.run(memo=...), gc of records."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from memo_fakes import DeclaringBackend, DriftingBackend
from plugin_fakes import FakeBackend, FakePlugin, plugins  # noqa: F401 (fixture)

import hlx
from hlx_core import registry
from hlx_core.backend import DeviceInfo
from hlx_core.cli import main
from hlx_core.kernels.library import BY_NAME
from hlx_core.memo import records
from hlx_core.memo.index import DiskIndex, index_for
from hlx_core.memo.key import derive_key, key_fields, platform, settings
from hlx_core.memo.policy import declared_deterministic
from hlx_core.planner import plan

HEX64 = set("0123456789abcdef")


def _register(*backends: FakeBackend) -> None:
    registry.register_plugin(FakePlugin(*backends), name="fakes", distribution="fake-dist")


def _f32(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _entry(store, key: str) -> str | None:
    return index_for(store).get(key)


# -- hlx.run(memo=...) ---------------------------------------------------------------------------------

def test_a_library_kernel_is_memoized_by_default(plugins, rng, _isolated_home):
    plugins("cpu")
    a, b = _f32(rng, 9, 4), _f32(rng, 4, 3)
    first = hlx.run(hlx.kernels.gemm(a, b), backend="cpu")
    again = hlx.run(hlx.kernels.gemm(a, b), backend="cpu")
    assert not first.memo_hit and again.memo_hit and "memo_hit=True" in repr(again)
    assert first.exec_key == again.exec_key and set(first.exec_key) <= HEX64 and len(first.exec_key) == 64
    assert again.outputs == first.outputs and again.contract == first.contract
    (got,), (want,) = again.arrays(), first.arrays()
    assert np.array_equal(got, want) and not got.flags.writeable
    assert set(again.timings) == {"memo_ms", "total_ms"} and "host_ms" in first.timings
    # The index lives under $HLX_HOME/memo/, one file per key holding the record's handle.
    entry = _isolated_home / "memo" / first.exec_key[:2] / first.exec_key[2:]
    record = hlx.resolve(entry.read_text())
    assert record["outputs"] == first.outputs and derive_key(record["key"]) == first.exec_key
    assert record["key"]["contract"] == first.contract and record["provenance"]["host"]
    assert not [p for p in (_isolated_home / "memo").rglob(".tmp-*")]


def test_memo_false_neither_reads_nor_writes(plugins, rng, _isolated_home):
    plugins("cpu")
    contract = hlx.kernels.relu(_f32(rng, 100))
    hlx.run(contract, backend="cpu")
    off = hlx.run(contract, backend="cpu", memo=False)
    assert not off.memo_hit and off.exec_key is None and "host_ms" in off.timings
    other = hlx.run(hlx.kernels.relu(_f32(rng, 100)), backend="cpu", memo=False)
    assert other.exec_key is None and len(list(index_for(hlx.get_default_store()).entries())) == 1


def test_the_default_is_off_for_kernels_the_backend_does_not_declare(plugins, rng):
    quiet = FakeBackend("quiet")
    declaring = DeclaringBackend("declaring")
    _register(quiet, declaring)
    x = _f32(rng, 64)
    for _ in range(2):
        assert not hlx.run(hlx.kernels.relu(x), backend="quiet").memo_hit
    assert quiet.executions == 2
    results = [hlx.run(hlx.kernels.relu(x), backend="declaring") for _ in range(2)]
    assert [r.memo_hit for r in results] == [False, True] and declaring.executions == 1
    # softmax is not among what "declaring" declares: off by default, on when asked.
    y = _f32(rng, 4, 8)
    assert not any(hlx.run(hlx.kernels.softmax(y), backend="declaring").memo_hit for _ in range(2))
    assert [hlx.run(hlx.kernels.softmax(y), backend="quiet", memo=True).memo_hit for _ in range(2)] == [False, True]


def test_only_the_librarys_own_shader_counts_as_a_library_kernel(plugins, rng):
    plugins("cpu")
    cpu = registry.backend_entries()["cpu"].backend
    assert cpu.deterministic_kernels == frozenset(BY_NAME)
    planned = plan(hlx.kernels.add(_f32(rng, 8), _f32(rng, 8)))
    assert declared_deterministic(cpu, planned)
    stage = planned.stages[0]
    other_spirv = dataclasses.replace(stage.shader, spirv=stage.shader.spirv + b"\0\0\0\0")  # a user's "add"
    borrowed = dataclasses.replace(stage, shader=other_spirv)
    assert not declared_deterministic(cpu, dataclasses.replace(planned, stages=(borrowed,)))
    renamed = dataclasses.replace(stage, kernel_name="mul")
    assert not declared_deterministic(cpu, dataclasses.replace(planned, stages=(renamed,)))
    assert not declared_deterministic(FakeBackend("quiet"), planned)


def test_bad_memo_arguments_are_config_errors(plugins, rng):
    plugins("cpu")
    contract = hlx.kernels.relu(_f32(rng, 4))
    for bad in ("yes", 1, "VERIFY", [True]):
        with pytest.raises(hlx.HLXError) as err:
            hlx.run(contract, backend="cpu", memo=bad)
        assert err.value.code == "E_CONFIG" and "memo=" in err.value.message
    with pytest.raises(hlx.HLXError) as err:
        hlx.run(contract, backend="cpu", memo_salt=b"x")
    assert err.value.code == "E_CONFIG"


def test_a_salt_keeps_results_apart(plugins, rng):
    plugins("cpu")
    contract = hlx.kernels.relu(_f32(rng, 16))
    plain = hlx.run(contract, backend="cpu")
    salted = hlx.run(contract, backend="cpu", memo_salt="experiment 2")
    assert not salted.memo_hit and salted.exec_key != plain.exec_key and salted.outputs == plain.outputs
    assert hlx.run(contract, backend="cpu", memo_salt="experiment 2").memo_hit


def test_refresh_recomputes_and_replaces_the_record(plugins, rng):
    plugins("cpu")
    store = hlx.get_default_store()
    contract = hlx.kernels.relu(_f32(rng, 16))
    first = hlx.run(contract, backend="cpu")
    old = _entry(store, first.exec_key)
    fresh = hlx.run(contract, backend="cpu", memo="refresh")
    assert not fresh.memo_hit and fresh.exec_key == first.exec_key and fresh.outputs == first.outputs
    assert _entry(store, first.exec_key) not in (None, old)
    assert hlx.run(contract, backend="cpu").memo_hit


def test_verify_on_a_deterministic_backend_recomputes_and_agrees(plugins, rng):
    plugins("cpu")
    store = hlx.get_default_store()
    contract = hlx.kernels.softmax(_f32(rng, 5, 7))
    first = hlx.run(contract, backend="cpu")
    checked = hlx.run(contract, backend="cpu", memo="verify")
    assert not checked.memo_hit and "host_ms" in checked.timings and checked.outputs == first.outputs
    assert list(index_for(store).evidence()) == []
    # With no record yet, "verify" records the run.
    other = hlx.run(hlx.kernels.softmax(_f32(rng, 5, 7)), backend="cpu", memo="verify")
    assert _entry(store, other.exec_key) is not None


def test_verify_catches_a_nondeterministic_backend_and_keeps_both_records(plugins, rng):
    drifting = DriftingBackend("drifting")
    _register(drifting)
    store = hlx.get_default_store()
    contract = hlx.kernels.add(_f32(rng, 32), _f32(rng, 32))
    first = hlx.run(contract, backend="drifting")
    assert hlx.run(contract, backend="drifting").memo_hit and drifting.executions == 1  # the default trusts it
    with pytest.raises(hlx.BackendError) as err:
        hlx.run(contract, backend="drifting", memo="verify")
    assert err.value.code == "E_NONDETERMINISTIC" and first.exec_key in err.value.message
    assert drifting.executions == 2
    (key, kept), = index_for(store).evidence()
    assert key == first.exec_key and len(kept) == 2 and kept[0] == _entry(store, key)
    both = [hlx.resolve(h) for h in kept]
    assert both[0]["outputs"] == first.outputs and both[1]["outputs"] != first.outputs
    assert all(derive_key(r["key"]) == key for r in both) and all(h in err.value.message for h in kept)
    hlx.flush()
    assert all(hlx.exists(h) for r in both for h in r["outputs"])  # the evidence is in the store
    # The original record still answers (verify changes nothing but the evidence).
    assert hlx.run(contract, backend="drifting").outputs == first.outputs


# -- a hit counts only when everything checks ---------------------------------------------------------

def test_a_hit_whose_output_was_removed_recomputes(plugins, rng):
    plugins("cpu")
    store = hlx.get_default_store()
    a = _f32(rng, 50)
    first = hlx.run(hlx.kernels.relu(a), backend="cpu")
    old = _entry(store, first.exec_key)
    hlx.flush()
    assert store.discard(first.outputs[0])
    again = hlx.run(hlx.kernels.relu(a), backend="cpu")
    assert not again.memo_hit and again.outputs == first.outputs
    assert np.array_equal(again.arrays()[0], np.maximum(a, 0))
    assert _entry(store, first.exec_key) not in (None, old)  # the entry was dropped and written anew
    assert hlx.run(hlx.kernels.relu(a), backend="cpu").memo_hit


def test_a_warm_hit_hands_over_the_arrays_it_checked(plugins, rng, monkeypatch):
    """A hit whose outputs this process has read before carries their arrays: its arrays() asks the store
    nothing more (the check just asked whether it still holds each output); the values are the run's."""
    plugins("cpu")
    a = _f32(rng, 64)
    first = hlx.run(hlx.kernels.relu(a), backend="cpu")
    hlx.flush()
    assert hlx.run(hlx.kernels.relu(a), backend="cpu").memo_hit  # reads and verifies the output once
    hit = hlx.run(hlx.kernels.relu(a), backend="cpu")
    assert hit.memo_hit
    store = hlx.get_default_store()
    asked = []
    real = type(store).contains
    monkeypatch.setattr(type(store), "contains", lambda self, h: asked.append(h) or real(self, h))
    (got,) = hit.arrays()
    assert asked == [] and not got.flags.writeable
    np.testing.assert_array_equal(got, np.maximum(a, 0))
    assert hit.outputs == first.outputs


def test_a_corrupt_output_is_a_miss_not_an_error(plugins, rng):
    plugins("cpu")
    store = hlx.get_default_store()
    a = _f32(rng, 50)
    first = hlx.run(hlx.kernels.relu(a), backend="cpu", persist=True)
    path = store.object_path(first.outputs[0])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    os.chmod(path, 0o644)
    path.write_bytes(bytes(data))
    again = hlx.run(hlx.kernels.relu(a), backend="cpu")
    assert not again.memo_hit and np.array_equal(again.arrays()[0], np.maximum(a, 0))


def test_a_forged_record_whose_key_does_not_rederive_is_a_miss(plugins, rng):
    plugins("cpu")
    store = hlx.get_default_store()
    a = _f32(rng, 20)
    first = hlx.run(hlx.kernels.relu(a), backend="cpu")
    record = hlx.resolve(_entry(store, first.exec_key))
    # A record of other fields (another salt) and other outputs, put under this key.
    wrong = hlx.collapse(np.zeros(20, np.float32))
    forged_fields = dict(record["key"], salt="forged")
    forged = hlx.collapse(dict(record, key=forged_fields, outputs=[wrong]))
    index_for(store).put(first.exec_key, forged)
    again = hlx.run(hlx.kernels.relu(a), backend="cpu")
    assert not again.memo_hit and again.outputs == first.outputs and again.outputs != [wrong]
    assert _entry(store, first.exec_key) not in (None, forged)


@pytest.mark.parametrize("damage", ["not a handle", "missing record", "not a record", "wrong shape", "a list"])
def test_every_other_damaged_entry_is_a_miss(plugins, rng, damage):
    plugins("cpu")
    store = hlx.get_default_store()
    a = _f32(rng, 20)
    first = hlx.run(hlx.kernels.relu(a), backend="cpu")
    record = hlx.resolve(_entry(store, first.exec_key))
    entry = {
        "not a handle": "garbage\n",
        "missing record": "&h_map_" + "0" * 64,
        "not a record": hlx.collapse("a string"),
        "wrong shape": hlx.collapse(dict(record, outputs=[hlx.collapse(np.zeros(21, np.float32))])),
        "a list": hlx.collapse([record]),
    }[damage]
    index_for(store).put(first.exec_key, entry)
    again = hlx.run(hlx.kernels.relu(a), backend="cpu")
    assert not again.memo_hit and again.outputs == first.outputs
    assert hlx.run(hlx.kernels.relu(a), backend="cpu").memo_hit


def test_a_memory_store_keeps_its_index_in_memory(plugins, rng, _isolated_home):
    plugins("cpu")
    store = hlx.MemoryStore()
    x = _f32(rng, 8)
    contract = hlx.kernels.relu(x, store=store)
    assert [hlx.run(contract, backend="cpu", store=store).memo_hit for _ in range(2)] == [False, True]
    assert not (_isolated_home / "memo").exists()
    other = hlx.MemoryStore()  # another store, another index
    assert not hlx.run(hlx.kernels.relu(x, store=other), backend="cpu", store=other).memo_hit


# -- the key -------------------------------------------------------------------------------------------

def _device(uuid: str = "gpu-0", **facts) -> DeviceInfo:
    device_class = {"vendor_id": 0x10DE, "device_id": 0x2335, "driver_version": 1, "driver_uuid": "d" * 32,
                    "api_version": "1.4.0", **facts}
    return DeviceInfo(0, "H200", "gpu-discrete", uuid=uuid, device_class=device_class)


def _key(device: DeviceInfo, salt: str = "", backend_version: str = "1.0", names: tuple[str, ...] = ()) -> str:
    contract = hlx.Handle("&h_contract_" + "a" * 64)
    return derive_key(key_fields(contract, platform("vulkan", backend_version, device), settings(names), salt))


def test_the_key_names_the_device_class_not_the_device(monkeypatch):
    monkeypatch.delenv("HLX_POISON_OUTPUTS", raising=False)
    base = _key(_device())
    assert _key(_device(uuid="gpu-7")) == base  # an identical GPU reuses the result
    assert _key(_device(driver_version=2)) != base
    assert _key(_device(driver_uuid="e" * 32)) != base
    assert _key(_device(isa="x86_64: AVX2")) != base
    assert _key(_device(), salt="s") != base
    assert _key(_device(), backend_version="1.1") != base
    monkeypatch.setenv("HLX_POISON_OUTPUTS", "1")
    assert _key(_device()) != base
    monkeypatch.setenv("HLX_VULKAN_ROBUST", "1")
    assert _key(_device(), names=("HLX_VULKAN_ROBUST",)) != _key(_device())
    # A device without a class is named by its UUID: its results are reused on that device only.
    bare = DeviceInfo(0, "Thing", "gpu-discrete", uuid="u1")
    assert _key(bare) != _key(dataclasses.replace(bare, uuid="u2"))


def test_the_built_in_backends_give_a_device_class_without_the_device_uuid(plugins):
    plugins(None)
    for name, entry in registry.backend_entries().items():
        if name not in ("cpu", "vulkan", "wgpu") or not entry.availability().available:
            continue
        assert entry.backend.deterministic_kernels == frozenset(BY_NAME)
        for device in entry.availability().devices:
            facts = device.device_class
            assert facts and "uuid" not in facts, (name, facts)
            if device.uuid:
                assert device.uuid not in facts.values()
            if device.kind == "cpu":
                assert facts["isa"].startswith(os.uname().machine)
            if name == "vulkan":
                assert {"vendor_id", "device_id", "driver_version", "driver_uuid", "api_version"} <= set(facts)
            hlx.encode(key_fields(hlx.Handle("&h_contract_" + "0" * 64), platform(name, "v", device), {}, ""))


# -- gc ------------------------------------------------------------------------------------------------

def test_gc_keeps_what_records_name_or_drops_the_records(plugins, rng):
    plugins("cpu")
    store = hlx.get_default_store()
    x = _f32(rng, 64)
    first = hlx.run(hlx.kernels.relu(x), backend="cpu")
    hlx.flush()
    named = records.named_objects(store)
    assert {hlx.Handle(_entry(store, first.exec_key)), *first.outputs, first.contract} <= named
    removed, dropped = records.gc(store, 0, keep_memo=True, grace_seconds=0)
    assert removed and not set(removed) & named and dropped == 0  # the input and the shader went
    assert hlx.run(hlx.kernels.relu(x), backend="cpu").memo_hit  # (the helper stores them again)
    removed, dropped = records.gc(store, 0, keep_memo=False, grace_seconds=0)
    assert set(first.outputs) <= set(removed) and dropped == 1
    assert list(index_for(store).entries()) == []


def test_gc_always_keeps_evidence(plugins, rng):
    drifting = DriftingBackend("drifting")
    _register(drifting)
    store = hlx.get_default_store()
    contract = hlx.kernels.add(_f32(rng, 8), _f32(rng, 8))
    hlx.run(contract, backend="drifting")
    with pytest.raises(hlx.BackendError):
        hlx.run(contract, backend="drifting", memo="verify")
    (_, kept), = index_for(store).evidence()
    records.gc(store, 0, keep_memo=False, grace_seconds=0)
    assert all(hlx.exists(h) for h in kept)
    assert all(hlx.exists(o) for h in kept for o in hlx.resolve(h)["outputs"])


def test_cache_gc_and_clear_on_the_command_line(plugins, rng, capsys):
    plugins("cpu")
    store = hlx.get_default_store()
    x = _f32(rng, 64)
    first = hlx.run(hlx.kernels.relu(x), backend="cpu")
    hlx.flush()
    assert main(["cache", "gc", "--max-bytes", "0", "--grace-seconds", "0", "--keep-memo"]) == 0
    assert "what memo records name is kept" in capsys.readouterr().out
    assert hlx.run(hlx.kernels.relu(x), backend="cpu").memo_hit
    hlx.flush()
    assert main(["cache", "gc", "--max-bytes", "0", "--grace-seconds", "0"]) == 0
    assert "1 memo record(s) dropped" in capsys.readouterr().out
    hlx.run(hlx.kernels.relu(x), backend="cpu")
    hlx.flush()
    assert main(["cache", "clear"]) == 0
    assert "1 memo record(s)" in capsys.readouterr().out and _entry(store, first.exec_key) is None


def test_the_disk_index_writes_whole_entries(tmp_path):
    index = DiskIndex(tmp_path / "memo")
    key, other = "ab" + "1" * 62, "cd" + "2" * 62
    index.put(key, "&h_map_" + "3" * 64)
    index.put(key, "&h_map_" + "4" * 64)
    index.put(other, "&h_map_" + "5" * 64)
    assert index.get(key) == "&h_map_" + "4" * 64 and dict(index.entries())[other] == "&h_map_" + "5" * 64
    index.drop(key, "&h_map_" + "3" * 64)  # no longer what the entry holds: kept
    assert index.get(key) is not None
    index.drop(key, "&h_map_" + "4" * 64)
    assert index.get(key) is None and [p.name for p in (tmp_path / "memo").rglob("*") if p.is_file()] == ["2" * 62]
    assert index.clear() == 1 and not (tmp_path / "memo").exists()
