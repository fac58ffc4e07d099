"""What a warm ``hlx.run`` keeps between runs goes stale exactly when what it was worked out from changes:
the route to a backend's session (the registry, the session closed or broken, the device argument's type),
the memo default kept with the plan (the backend's declaration), and the Result made in one step."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from plugin_fakes import FakeBackend, FakePlugin, plugins  # noqa: F401 (fixture)

import hlx
from hlx_core import registry, runtime
from hlx_core.contracts import tensors
from hlx_core.kernels.library import BY_NAME


def _add(rng):
    x, y = rng.random(64, dtype=np.float32), rng.random(64, dtype=np.float32)
    return hlx.kernels.add(x, y), x.astype(np.float64) + y


def _check(result, want):
    np.testing.assert_allclose(np.asarray(result), want, rtol=1e-6)


def test_route_follows_the_registry(plugins, rng):
    first = FakeBackend("fakegpu")
    registry.register_plugin(FakePlugin(first), name="first")
    contract, want = _add(rng)
    for _ in range(2):
        _check(hlx.run(contract, backend="fakegpu", memo=False), want)
    assert first.executions == 2 and len(first.sessions) == 1
    registry.unregister_plugin("first")
    with pytest.raises(hlx.BackendError) as err:  # not run on the session the last run found
        hlx.run(contract, backend="fakegpu", memo=False)
    assert err.value.code == "E_BACKEND_UNKNOWN" and first.executions == 2


def test_auto_route_follows_a_better_backend(plugins, rng):
    plugins("cpu")
    contract, want = _add(rng)
    assert hlx.run(contract, memo=False).backend == "cpu"
    gpu = FakeBackend("fakegpu")  # a backend on a GPU outranks the CPU reference
    registry.register_plugin(FakePlugin(gpu), name="gpu")
    result = hlx.run(contract, memo=False)
    assert result.backend == "fakegpu" and gpu.executions == 1
    _check(result, want)


def test_route_follows_closed_and_broken_sessions(plugins, rng):
    fake = FakeBackend("fakegpu")
    registry.register_plugin(FakePlugin(fake), name="fake")
    contract, want = _add(rng)
    _check(hlx.run(contract, backend="fakegpu", memo=False), want)
    runtime.close_sessions()
    _check(hlx.run(contract, backend="fakegpu", memo=False), want)
    assert len(fake.sessions) == 2 and fake.sessions[0].closed and not fake.sessions[1].closed
    fake.sessions[1].broken = True  # as a timed-out run leaves it: the next run opens a new session
    _check(hlx.run(contract, backend="fakegpu", memo=False), want)
    assert len(fake.sessions) == 3 and fake.executions == 3


def test_device_false_does_not_take_the_route_of_device_0(rng):
    contract, want = _add(rng)
    _check(hlx.run(contract, backend="cpu", device=0, memo=False), want)
    with pytest.raises(hlx.BackendError) as err:
        hlx.run(contract, backend="cpu", device=False, memo=False)
    assert err.value.code == "E_DEVICE_UNKNOWN"


def test_memo_default_follows_the_declaration(plugins, rng):
    fake = FakeBackend("fakegpu")  # declares no kernel deterministic: the default leaves memo off
    registry.register_plugin(FakePlugin(fake), name="fake")
    contract, want = _add(rng)
    for _ in range(2):
        result = hlx.run(contract, backend="fakegpu")
        assert result.exec_key is None and not result.memo_hit
    fake.deterministic_kernels = frozenset(BY_NAME)
    recorded = hlx.run(contract, backend="fakegpu")
    assert recorded.exec_key is not None and not recorded.memo_hit
    hit = hlx.run(contract, backend="fakegpu")
    assert hit.memo_hit and hit.outputs == recorded.outputs and fake.executions == 3
    _check(hit, want)


def test_result_made_in_one_step_is_the_dataclass(rng):
    contract, want = _add(rng)
    result = hlx.run(contract, backend="cpu", memo=False)
    assert set(vars(result)) == {f.name for f in dataclasses.fields(hlx.Result)}
    again = hlx.Result(**{f.name: getattr(result, f.name) for f in dataclasses.fields(hlx.Result)})
    assert again == result and vars(again) == vars(result)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.backend = "other"  # type: ignore[misc]
    _check(result, want)


def test_new_inputs_are_bound_from_copies_kept_when_collapsed(rng):
    """A helper keeps a copy of each small array it collapses, so the planner binds it without reading the
    object back: a copy the caller cannot change, gone with the object."""
    store = hlx.MemoryStore()
    x, y = rng.random(64, dtype=np.float32), rng.random(64, dtype=np.float32)
    want = x.astype(np.float64) + y
    contract = hlx.kernels.add(x, y, store=store)
    handle = contract["901"]["bindings"][0]
    kept = tensors._kept.get(store, handle)
    assert kept is not None and not kept.flags.writeable and np.array_equal(kept, x)
    x[:] = -1  # after the contract was built: its input is what was collapsed then
    _check(hlx.run(contract, backend="cpu", store=store, memo=False), want)
    store.discard(handle)
    assert tensors._kept.get(store, handle) is None
    with pytest.raises(hlx.HLXError) as err:
        hlx.run(hlx.kernels.add(handle, y, store=store), backend="cpu", store=store, memo=False)
    assert err.value.code == "E_HANDLE_NOT_FOUND"
