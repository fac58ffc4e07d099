"""First runs of new contracts: what the planner caches, and that nothing it caches changes a result.

A contract exactly as a kernel helper built it is planned without validating it again or replaying the
builders (``hlx_core.kernels.built``); tensors are resolved once per store (``hlx_core.contracts.tensors``);
contract keys are exact (``hlx_core.contracts.key``). Plans, handles and results must be the same as when
every contract is checked in full.
"""
from __future__ import annotations

import copy
import gc
import weakref

import msgpack
import numpy as np
import pytest
from plugin_fakes import plugins  # noqa: F401 (fixture)

import hlx
from hlx.kernels import add, conv2d, gemm, mul, pipeline, reduce_sum, relu, saxpy, softmax, stage, transpose
from hlx_core import planner
from hlx_core.contracts import tensors
from hlx_core.contracts.key import raw_key
from hlx_core.kernels import built, helpers
from hlx_core.kernels.shaders import library_shader


def _f32(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _plain(value):
    """``value`` with every Handle turned into the plain string that spells it (as JSON would give it)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


def _forget_plans() -> None:
    planner._plans.clear()
    planner._shaders.clear()
    tensors.clear()


def _helper_contracts(rng, store=None) -> list[dict]:
    x, w = _f32(rng, 5, 7), _f32(rng, 7, 3)
    a, b = _f32(rng, 300), _f32(rng, 300)
    ints = [rng.integers(-9, 9, 40, dtype=np.int32) for _ in range(2)]
    return [
        add(a, b, store=store), mul(*ints, store=store), saxpy(-1.5, a, b, store=store), relu(a, store=store),
        reduce_sum(_f32(rng, 3000), store=store), softmax(x, store=store), transpose(x, store=store),
        gemm(x, w, store=store), gemm(_f32(rng, 1801, 2), _f32(rng, 2, 1799), store=store),
        conv2d(_f32(rng, 1, 2, 6, 5), _f32(rng, 3, 2, 3, 3), stride=2, padding=1, store=store),
        pipeline([gemm(x, w, store=store), relu(stage(0), store=store),
                  gemm(stage(1), _f32(rng, 3, 4), store=store)], store=store),
        pipeline([add(a, b, store=store), reduce_sum(stage(0), store=store), relu(stage(1), store=store)],
                 outputs=[stage(0), stage(2)], pipeline_id="mine", store=store),
        pipeline([pipeline([relu(a, store=store), relu(stage(0), store=store)], store=store),
                  relu(stage(0), store=store)], store=store),
    ]


def test_helper_contracts_validate_unchanged_and_are_recorded(rng):
    """What lets the planner skip validation: a helper's contract is exactly its own normalised form."""
    for contract in _helper_contracts(rng):
        raw = raw_key(contract)
        assert raw is not None and built.was_built(raw)
        normalised = hlx.validate(contract)  # (its own key order: equal, and encoded alike)
        assert normalised == contract and hlx.collapse(normalised) == hlx.collapse(contract)


def test_trusted_plans_equal_fully_checked_plans(plugins, rng):
    """Planned as recorded, or checked in full with no record and no cache: the same plan, key and result."""
    plugins("cpu")
    store = hlx.MemoryStore()
    for contract in _helper_contracts(rng, store):
        _forget_plans()
        trusted = planner.plan(contract, store)
        _forget_plans()
        built._built.clear()
        checked = planner.plan(contract, store)
        assert trusted.key == checked.key == hlx.collapse(hlx.validate(contract), store=store)
        assert trusted == checked and [s.params for s in trusted.stages] == [s.params for s in checked.stages]
        first = hlx.run(contract, backend="cpu", store=store, memo=False)
        _forget_plans()
        built.record(contract)
        again = hlx.run(contract, backend="cpu", store=store, memo=False)
        assert (first.contract, first.outputs) == (again.contract, again.outputs)


def test_a_changed_helper_contract_is_checked_in_full(plugins, rng):
    """Changing a helper's contract after it returned makes other bytes: validation and the conformance
    check refuse it as they would any contract written by hand."""
    plugins("cpu")
    x = _f32(rng, 10_000)  # relu builds dispatch [3, 1, 1]: a workgroup per 4096 elements
    contract = relu(x)
    contract["901"]["dispatch"] = [1, 1, 1]
    with pytest.raises(hlx.ContractError) as err:
        planner.plan(contract)
    assert (err.value.code, err.value.path) == ("E_CONTRACT_STRUCTURE", "901.dispatch")
    contract = relu(x)
    contract["901"]["dispatch"] = (3, 1, 1)  # a tuple: no exact key, checked in full (and accepted)
    assert planner.plan(contract).stages[0].dispatch == (3, 1, 1)
    mlp = pipeline([relu(x), relu(stage(0))])
    mlp["902"]["stages"][1]["901"]["push_constants"] = np.uint32(10_001).tobytes()
    del mlp["902"]["stages"][1]["901"]["params"]
    with pytest.raises(hlx.ContractError) as err:
        planner.plan(mlp)
    assert err.value.path == "902.stages[1].901.push_constants"


def test_pipelines_vouch_only_for_helper_steps(rng):
    """A 902 is recorded only when every step is a helper's call or result as it stands."""
    x = _f32(rng, 64)
    stored = hlx.collapse(relu(x))
    changed = relu(x)
    changed["901"]["kernel_name"] = "relu2"
    by_hand = helpers.Deferred("relu", helpers.BY_NAME["relu"].build, (stage(0),), {}, None)
    for steps in ([stored, relu(stage(0))], [changed, relu(stage(0))], [relu(x), by_hand]):
        contract = pipeline(steps)
        assert not built.was_built(raw_key(contract))
        planner.plan(contract)  # valid all the same: checked in full
    assert built.was_built(raw_key(pipeline([relu(x), relu(stage(0))])))
    with pytest.raises(hlx.ContractError) as err:
        planner.plan(pipeline([relu(x)], pipeline_id=7))
    assert err.value.code == "E_CONTRACT_FIELD_TYPE" and err.value.path == "902.pipeline_id"


def test_contract_keys_are_exact(rng):
    """A Handle and the plain string that spells it are different contracts; no value passes for a Handle."""
    contract = add(_f32(rng, 8), _f32(rng, 8))
    plain = _plain(contract)
    assert raw_key(plain) != raw_key(contract)
    handle = contract["901"]["shader_handle"]
    forged = copy.deepcopy(contract)
    for code in range(128):
        forged["901"]["shader_handle"] = msgpack.ExtType(code, handle.encode())
        assert raw_key(forged) != raw_key(contract)
    for other in ({"901": {**contract["901"], "dispatch": (1, 1, 1)}},
                  {"901": {**contract["901"], "dispatch": [np.int64(1), 1, 1]}}):
        assert raw_key(other) is None


def test_contract_handles_do_not_depend_on_what_was_planned_before(plugins, rng):
    """The same contract spelt with Handles or with plain strings: each keeps its own contract handle in
    whichever order they are planned (the plan cache once served one the other's)."""
    plugins("cpu")
    contract = add(_f32(rng, 8), _f32(rng, 8))
    plain = _plain(contract)
    want = {id(c): hlx.collapse(hlx.validate(c)) for c in (contract, plain)}
    assert len(set(want.values())) == 2
    for order in ((contract, plain), (plain, contract)):
        _forget_plans()
        for c in order:
            assert planner.plan(c).key == want[id(c)]
            assert hlx.run(c, backend="cpu").contract == want[id(c)]


class CountingStore(hlx.MemoryStore):
    """A MemoryStore that counts reads by handle."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[str, int] = {}

    def get(self, handle):
        self.reads[handle] = self.reads.get(handle, 0) + 1
        return super().get(handle)


def test_new_contracts_do_not_read_their_weights_again(plugins, rng):
    """The variable-batch case: each tensor is read from the store once, however many contracts bind it."""
    plugins("cpu")
    store = CountingStore()
    weights = [_f32(rng, 16, 32), _f32(rng, 32, 8)]
    w1, w2 = (hlx.collapse(w, store=store) for w in weights)
    xs = []
    for batch in (1, 2, 4, 8):
        x = _f32(rng, batch, 16)
        xs.append(hlx.collapse(x, store=store))
        mlp = pipeline([gemm(xs[-1], w1, store=store), relu(stage(0), store=store),
                        gemm(stage(1), w2, store=store)], store=store)
        got = hlx.run(mlp, backend="cpu", store=store).arrays()[0]
        want = np.maximum(x.astype(np.float64) @ weights[0], 0) @ weights[1]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert [store.reads[h] for h in (w1, w2, *xs)] == [1] * 6


def test_kept_tensors_never_outlive_their_store(plugins, rng):
    """A tensor gone from its store, or asked of another store, fails as E_HANDLE_NOT_FOUND at its path; a
    store that is gone is not kept alive by what was read from it."""
    plugins("cpu")
    store = hlx.MemoryStore()
    ha, hb = (hlx.collapse(_f32(rng, 8), store=store) for _ in range(2))
    hlx.run(add(ha, hb, store=store), backend="cpu", store=store)
    later = mul(ha, hb, store=store)
    store.discard(ha)
    with pytest.raises(hlx.HandleError) as err:
        hlx.run(later, backend="cpu", store=store)
    assert (err.value.code, err.value.path) == ("E_HANDLE_NOT_FOUND", "901.bindings[0]")
    other = hlx.MemoryStore()
    hlx.collapse(hlx.resolve(later["901"]["shader_handle"], store), store=other)
    with pytest.raises(hlx.HandleError) as err:
        hlx.run(later, backend="cpu", store=other)
    assert (err.value.code, err.value.path) == ("E_HANDLE_NOT_FOUND", "901.bindings[0]")
    gone = hlx.MemoryStore()
    hlx.run(add(_f32(rng, 8), _f32(rng, 8), store=gone), backend="cpu", store=gone)
    _forget_plans()
    ref = weakref.ref(gone)
    del gone
    gc.collect()
    assert ref() is None


def test_kept_tensors_are_bounded(monkeypatch, rng):
    store = hlx.MemoryStore()
    monkeypatch.setattr(tensors._kept, "max_entries", 4)
    handles = [hlx.collapse(_f32(rng, 16), store=store) for _ in range(6)]
    for h in handles:
        tensors.resolve_tensor(h, store)
    assert len(tensors._kept) <= 4
    monkeypatch.setattr(tensors._kept, "max_bytes", 100)
    tensors.resolve_tensor(hlx.collapse(_f32(rng, 64), store=store), store)  # 256 bytes: kept alone, then dropped
    assert tensors._kept.held_bytes <= 100
    monkeypatch.setattr(tensors._kept, "max_value_bytes", 8)
    tensors.clear()
    tensors.resolve_tensor(handles[0], store)
    assert not tensors._kept


def test_library_shaders_are_stored_in_every_store(rng):
    """shader_handle stores the 900 on every call, as collapsing it did, without encoding it again."""
    want = hlx.collapse(library_shader("add"))
    for _ in range(2):
        store = hlx.MemoryStore()
        assert helpers.shader_handle("add", store) == want and hlx.exists(want, store=store)
    with pytest.raises(hlx.HandleError) as err:
        helpers.shader_handle("add", object())
    assert err.value.code == "E_STORE"
