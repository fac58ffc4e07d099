"""Two devices on one machine: a second lavapipe appears when VK_DRIVER_FILES lists the system's lavapipe
manifest and a copy of it pointing at a copy of libvulkan_lvp.so. The local executor spreads contracts
over both with identical handles, and ``hlx worker`` starts a Dask worker pinned to each."""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hlx

pytestmark = pytest.mark.skipif("vulkan" not in hlx.backends(), reason="no Vulkan")


@pytest.fixture(scope="module")
def two_lavapipes(tmp_path_factory) -> dict[str, str]:
    """The environment of a process that sees two lavapipe devices."""
    manifests = sorted(glob.glob("/usr/share/vulkan/icd.d/lvp_icd*.json"))
    if not manifests:
        pytest.skip("no system lavapipe manifest")
    manifest = json.loads(Path(manifests[0]).read_text())
    library = manifest["ICD"]["library_path"]
    if not os.path.isabs(library) or not os.path.exists(library):
        pytest.skip(f"lavapipe's library {library!r} is not an absolute path that exists")
    folder = tmp_path_factory.mktemp("lvp2")
    shutil.copy(library, folder / "libvulkan_lvp.so")
    manifest["ICD"]["library_path"] = str(folder / "libvulkan_lvp.so")
    (folder / "lvp2.json").write_text(json.dumps(manifest))
    return {**os.environ, "VK_DRIVER_FILES": f"{manifests[0]}:{folder / 'lvp2.json'}"}


LOCAL = textwrap.dedent("""
    import numpy as np, hlx
    from hlx_core import runtime
    from hlx_core.scale.local import LocalExecutor
    rng = np.random.default_rng()
    contracts = [hlx.kernels.pipeline([hlx.kernels.gemm(rng.standard_normal((33, 17)).astype(np.float32),
                                                        rng.standard_normal((17, 9)).astype(np.float32)),
                                       hlx.kernels.relu(hlx.kernels.stage(0))]) for _ in range(8)]
    ex = LocalExecutor()
    devices = ex.devices("vulkan")
    assert len(devices) == 2 and devices[0].info.uuid == devices[1].info.uuid, devices
    assert devices[0].ident != devices[1].ident
    results = ex.run_many(contracts, "vulkan", memo=False)
    ex.close()
    for c, r in zip(contracts, results):
        on = [hlx.run(c, backend="vulkan", device=i, memo=False).outputs for i in (0, 1)]
        assert on[0] == on[1] == r.outputs
    used = [sum(runtime.session("vulkan", i)[1].holds(c["902"]["stages"][0]["901"]["bindings"][0])
                for c in contracts) for i in (0, 1)]
    assert all(used), used  # both devices took contracts
    print("ok", used)
""")


def test_the_local_executor_spreads_over_two_devices_with_identical_handles(two_lavapipes):
    done = subprocess.run([sys.executable, "-c", LOCAL], env=two_lavapipes, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_hlx_worker_starts_a_pinned_worker_per_device(two_lavapipes, tmp_path, rng):
    distributed = pytest.importorskip("distributed")
    import numpy as np

    cluster = distributed.LocalCluster(n_workers=0, dashboard_address=None)
    worker_pids: list[int] = []
    launcher = subprocess.Popen([sys.executable, "-m", "hlx_core.cli", "worker", cluster.scheduler_address,
                                 "--backend", "vulkan", "--home", str(tmp_path / "workers")],
                                env=two_lavapipes, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        client = distributed.Client(cluster, set_as_default=False)
        client.wait_for_workers(2, timeout=60)
        pins = client.run(lambda: (os.environ["HLX_VULKAN_DEVICE"], os.environ["HLX_HOME"]))
        assert sorted(p for p, _ in pins.values()) == ["0", "1"]  # one UUID for two devices: pinned by index
        assert len({home for _, home in pins.values()}) == 2
        worker_pids += client.run(os.getpid).values()
        resources = [w["resources"] for w in client.scheduler_info()["workers"].values()]
        assert all(r.get("hlx-vulkan") == 1 and any(k.startswith("hlx-class-") for k in r) for r in resources)
        contracts = [hlx.kernels.mul(rng.standard_normal(300).astype(np.float32),
                                     rng.standard_normal(300).astype(np.float32)) for _ in range(6)]
        with hlx.executor(f"dask://{cluster.scheduler_address.removeprefix('tcp://')}") as ex:
            results = ex.run_many(contracts, "vulkan", memo=False)
        for c, r in zip(contracts, results):
            assert r.outputs == hlx.run(c, backend="vulkan", memo=False).outputs
        client.close()
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            launcher.wait(timeout=60)
        finally:
            cluster.close()
    deadline = time.monotonic() + 30  # the launcher ended its workers on the way out
    while any(_alive(pid) for pid in worker_pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in worker_pids)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
