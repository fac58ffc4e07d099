"""The shared store (hlx_core/scale/shared_store.py): objects under an fsspec URL behind a local DiskStore,
every fetched object checked by its hash, a DiskStore's folder readable as one; S3 through moto's local
server when moto and s3fs are installed."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fsspec")

import hlx  # noqa: E402
from hlx_core.scale.shared_store import SharedStore, open_store  # noqa: E402


def _two(url: str, tmp_path, **options) -> tuple[SharedStore, SharedStore]:
    return (SharedStore(url, local=hlx.DiskStore(tmp_path / "a"), **options),
            SharedStore(url, local=hlx.DiskStore(tmp_path / "b"), **options))


def _roundtrip(a: SharedStore, b: SharedStore, rng: np.random.Generator) -> None:
    x = rng.standard_normal((7, 5)).astype(np.float32)
    h = hlx.collapse(x, store=a)
    assert b.contains(h) and not b.local.contains(h)
    assert np.array_equal(hlx.resolve(h, store=b), x)  # fetched, checked, kept locally
    assert b.local.contains(h)
    assert h in set(b.handles()) and b.stats()["objects"] == 1
    assert b.discard(h) and not b.contains(h)
    assert a.contains(h)  # a's local copy stays


def test_objects_travel_between_stores_through_a_file_url(tmp_path, rng):
    _roundtrip(*_two((tmp_path / "shared").as_uri(), tmp_path), rng)


def test_a_corrupt_shared_object_is_an_integrity_error_and_removed(tmp_path, rng):
    a, b = _two((tmp_path / "shared").as_uri(), tmp_path)
    h = hlx.collapse(rng.standard_normal(33).astype(np.float32), store=a)
    path = tmp_path / "shared" / "objects" / h.hex[:2] / f"{h.hex[2:]}.{h.tag}"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(hlx.HLXError) as err:
        hlx.resolve(h, store=b)
    assert err.value.code == "E_INTEGRITY" and h in err.value.message
    assert not path.exists() and not b.local.contains(h)
    assert hlx.collapse(hlx.resolve(h, store=a.local), store=a) == h  # storing it again restores it
    assert np.array_equal(hlx.resolve(h, store=b), hlx.resolve(h, store=a))


def test_a_disk_store_folder_is_a_shared_store(tmp_path, rng):
    disk = hlx.DiskStore(tmp_path / "disk")
    x = rng.integers(0, 2**31, 64, dtype=np.int32)
    h = hlx.collapse(x, store=disk)
    shared = SharedStore((tmp_path / "disk").as_uri(), local=hlx.DiskStore(tmp_path / "local"))
    assert np.array_equal(hlx.resolve(h, store=shared), x)


def test_bad_urls_and_specs(tmp_path):
    for bad in ("not a url", "nosuchprotocol-xyz://bucket/x"):
        with pytest.raises(hlx.HLXError) as err:
            SharedStore(bad)
        assert err.value.code == "E_STORE"
    with pytest.raises(hlx.HLXError) as err:
        open_store(3)
    assert err.value.code == "E_STORE"
    assert isinstance(open_store((tmp_path / "s").as_uri()), SharedStore)


def test_s3_through_moto(tmp_path, rng):
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing",
                   "client_kwargs": {"region_name": "us-east-1"}}
        boto3 = pytest.importorskip("boto3")
        boto3.client("s3", endpoint_url=options["endpoint_url"], region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket="hlx-test")
        _roundtrip(*_two("s3://hlx-test/store", tmp_path, **options), rng)
    finally:
        server.stop()
