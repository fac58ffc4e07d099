"""The Dask executor over one LocalCluster of two worker processes (started once for the module): every
library kernel and pipeline on cpu and Vulkan with ``hlx.run``'s handles, duplicate submissions merged
by their execution key, memo hits across workers and places, a worker killed mid-task, a shared
``file://`` store (a corrupt object is E_INTEGRITY), and no process left behind."""
from __future__ import annotations

import os
import time

import numpy as np
import psutil
import pytest

distributed = pytest.importorskip("distributed")

import hlx  # noqa: E402
from hlx_core.conformance.cases import CASES, check_expected  # noqa: E402
from hlx_core.scale.dask_executor import DaskExecutor  # noqa: E402

BACKENDS = [b for b in ("cpu", "vulkan") if b in hlx.backends()]


def _children() -> list[psutil.Process]:
    """This process's descendants, less multiprocessing's resource tracker (one per interpreter, started by
    the first spawn, gone with it)."""
    return [p for p in psutil.Process().children(recursive=True)
            if "resource_tracker" not in " ".join(p.cmdline())]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with a store each; the module's tests share them (a start costs ~1 s)."""
    before = {p.pid for p in _children()}
    made = DaskExecutor.local(2)
    yield made
    made.close()
    left = [p for p in _children() if p.pid not in before]
    gone, alive = psutil.wait_procs(left, timeout=10)
    assert not alive, f"processes left behind: {alive}"


@pytest.fixture
def ex(cluster):
    """An executor on the module's cluster storing into this test's default store."""
    with hlx.executor(cluster.client) as made:
        yield made


def _pair(rng: np.random.Generator, n: int = 100) -> dict:
    return hlx.kernels.add(rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_case_gives_the_handles_of_hlx_run(ex, backend, rng):
    cases = [make(rng) for make in CASES.values()]
    results = ex.run_many([c.contract for c in cases], backend=backend, memo=False)
    for name, case, result in zip(CASES, cases, results):
        alone = hlx.run(case.contract, backend=backend, memo=False)
        assert result.outputs == alone.outputs, name
        assert result.backend == backend and not result.memo_hit
        check_expected(case, result.arrays(), f"{name} on {backend} (Dask)")  # read back from this store


def test_memo_keys_and_records_do_not_depend_on_where_a_contract_ran(ex, rng):
    contract = _pair(rng)
    remote = ex.submit(contract, "cpu", memo=True).result()
    assert not remote.memo_hit and remote.exec_key is not None
    local = hlx.run(contract, backend="cpu", memo=True)  # the cluster's run recorded here answers it
    assert local.memo_hit and local.exec_key == remote.exec_key and local.outputs == remote.outputs
    other = _pair(rng)
    first = hlx.run(other, backend="cpu", memo=True)  # and a local record answers the cluster's submit
    hit = ex.submit(other, "cpu", memo=True).result()
    assert hit.memo_hit and hit.exec_key == first.exec_key and hit.outputs == first.outputs


def test_memo_hits_across_workers(cluster, rng, tmp_path):
    """A client with a store of its own sends the contract again, to whichever worker: the execution key
    and the handles are the first run's, and from then on both clients answer it from their records."""
    contract = _pair(rng)
    with hlx.executor(cluster.client) as ex:
        first = ex.submit(contract, "cpu", memo=True).result()
    fresh = hlx.DiskStore(tmp_path / "other-client")
    body = contract["901"]
    for h in (*body["bindings"][:2], body["shader_handle"]):
        fresh.put(h, [hlx.get_default_store().get(h)])
    with hlx.executor(cluster.client, store=fresh) as elsewhere:
        second = elsewhere.submit(contract, "cpu", memo=True).result()
        third = elsewhere.submit(contract, "cpu", memo=True).result()
    assert second.exec_key == first.exec_key and second.outputs == first.outputs
    assert third.memo_hit and third.outputs == first.outputs
    with hlx.executor(cluster.client) as ex:
        assert ex.submit(contract, "cpu", memo=True).result().memo_hit


def test_duplicate_submissions_merge_into_one_task(ex, rng):
    contract = _pair(rng, 5000)
    futures = [ex.submit(contract, "cpu", memo=True) for _ in range(3)]
    results = [f.result() for f in futures]
    assert len({tuple(r.outputs) for r in results}) == 1
    # one task ran: every answer carries that task's timings
    assert len({r.timings["host_ms"] for r in results if "host_ms" in r.timings}) <= 1


def test_a_worker_killed_mid_task_is_retried_with_the_same_handles(cluster, rng, tmp_path):
    from scale_faults import KillOnce

    marker = tmp_path / "killed"
    contract = _pair(rng)
    expected = hlx.run(contract, backend="cpu", memo=False).outputs
    cluster.client.register_plugin(KillOnce(str(marker)))
    try:
        with hlx.executor(cluster.client) as ex:
            result = ex.submit(contract, "cpu", memo=False).result(timeout=120)
    finally:
        cluster.client.unregister_worker_plugin(KillOnce.name)
    assert marker.exists(), "no worker was killed"
    assert result.outputs == expected
    cluster.client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker


def test_a_shared_store_carries_inputs_and_outputs(cluster, rng, tmp_path):
    url = (tmp_path / "shared").as_uri()
    contract = _pair(rng)
    expected = hlx.run(contract, backend="cpu", memo=False).outputs
    with hlx.executor(cluster.client, store=url) as ex:
        result = ex.submit(contract, "cpu", memo=False).result()
        assert result.outputs == expected
        shared = ex.store
        assert all(shared.fs.exists(shared._remote(h)) for h in result.outputs)  # written by the worker
        assert np.array_equal(result.arrays()[0], hlx.run(contract, backend="cpu", memo=False).arrays()[0])


def test_a_corrupt_object_in_the_shared_store_is_an_integrity_error(cluster, rng, tmp_path):
    from hlx_core.scale.shared_store import SharedStore

    url = (tmp_path / "shared").as_uri()
    x = rng.standard_normal(40).astype(np.float32)
    store = SharedStore(url, local=hlx.DiskStore(tmp_path / "client"))
    contract = hlx.kernels.relu(x, store=store)
    handle = contract["901"]["bindings"][0]
    path = tmp_path / "shared" / "objects" / handle.hex[:2] / f"{handle.hex[2:]}.{handle.tag}"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with hlx.executor(cluster.client, store=store) as ex:  # the workers fetch it from the shared side
        with pytest.raises(hlx.HLXError) as err:
            ex.submit(contract, "cpu", memo=False).result()
    assert err.value.code == "E_INTEGRITY" and handle in err.value.message
    assert not path.exists()  # removed, so the next writer restores it


def test_an_object_removed_from_the_shared_store_is_published_again(cluster, rng, tmp_path):
    """The client published an input, another process removed it from the shared side: the worker does not
    find it, the client publishes the contract's objects again and the task runs once more."""
    from hlx_core.scale.shared_store import SharedStore

    store = SharedStore((tmp_path / "shared").as_uri(), local=hlx.DiskStore(tmp_path / "client"))
    x = rng.standard_normal(40).astype(np.float32)
    contract = hlx.kernels.relu(x, store=store)
    handle = contract["901"]["bindings"][0]
    path = tmp_path / "shared" / "objects" / handle.hex[:2] / f"{handle.hex[2:]}.{handle.tag}"
    path.unlink()  # a collection elsewhere
    with hlx.executor(cluster.client, store=store) as ex:
        result = ex.submit(contract, "cpu", memo=False).result()
    np.testing.assert_array_equal(result.arrays()[0], np.maximum(x, 0))
    assert path.exists()


def test_a_backend_no_worker_runs_and_a_bad_contract(ex, rng):
    with pytest.raises(hlx.HLXError) as err:
        ex.submit(_pair(rng), "no-such-backend").result()
    assert err.value.code == "E_EXECUTOR" and "E_BACKEND_UNKNOWN" in err.value.message
    with pytest.raises(hlx.HLXError) as err:
        ex.submit({"901": {}}, "cpu").result()
    assert err.value.code.startswith("E_CONTRACT")


def test_workers_are_spawned_processes_with_stores_of_their_own(cluster):
    homes = cluster.client.run(lambda: (os.getpid(), os.environ.get("HLX_HOME")))
    pids = {pid for pid, _ in homes.values()}
    assert len(homes) == 2 and os.getpid() not in pids
    assert len({home for _, home in homes.values()}) == 2


def test_a_lost_device_takes_its_worker_out(cluster, rng):
    """Last in the module: it leaves the cluster one worker short."""
    from scale_faults import lose_device_here

    cluster.client.wait_for_workers(2, timeout=60)
    broken = sorted(cluster.client.scheduler_info()["workers"])[0]
    cluster.client.run(lose_device_here, workers=[broken])
    contracts = [_pair(rng) for _ in range(6)]
    with hlx.executor(cluster.client) as ex:
        results = ex.run_many(contracts, "cpu", memo=False)
    for c, r in zip(contracts, results):
        assert r.outputs == hlx.run(c, backend="cpu", memo=False).outputs
    deadline = time.monotonic() + 30
    while broken in cluster.client.scheduler_info()["workers"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert broken not in cluster.client.scheduler_info()["workers"]
