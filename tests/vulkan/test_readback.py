"""Large outputs read back into reused, imported host memory (readback.py), and the warm run path.

Lavapipe reads outputs through their mappings (zero-copy); with HLX_VULKAN_ZERO_COPY=0 it takes the
discrete GPUs' path: outputs copied to host memory, the large ones straight into blocks of the session's
HostPool, which become the result arrays. A block is written again only once nothing refers to it."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from vkplan import inp, open_session, out, plan, stage

from hlx_core.errors import HLXError
from hlx_core.plan import StageRef

from hlx_vulkan_raw.readback import POOL_MIN_BYTES

N = POOL_MIN_BYTES // 4  # uint32 elements of an output just large enough to be pooled


def _add(spirv, a, b, n=None):
    n = a.size if n is None else n
    return stage("add", spirv["add_u32"], [inp(a), inp(b), out(np.uint32, (n,))], (-(-n // 64), 1, 1),
                 struct.pack("<I", n))


def _pair(rng, n=N):
    return rng.integers(0, 2**32, n, dtype=np.uint32), rng.integers(0, 2**32, n, dtype=np.uint32)


@pytest.fixture(autouse=True)
def _read_back(monkeypatch):
    """Outputs hashed on the device stay there (tests/test_resident_outputs.py): these read every one back."""
    monkeypatch.setenv("HLX_VULKAN_DEVICE_HASH_BYTES", "0")


@pytest.fixture
def staged(monkeypatch):
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    with open_session() as s:
        assert s.host_pool is not None, "lavapipe has VK_EXT_external_memory_host"
        yield s


def test_large_output_is_the_pooled_block_and_the_block_is_reused(staged, spirv, rng):
    a, b = _pair(rng)
    p = plan(_add(spirv, a, b))
    res = staged.execute(p).arrays[0]
    np.testing.assert_array_equal(res, a + b)
    assert not res.flags.owndata and staged.host_pool.created == 1  # a view of the block: no host copy
    del res  # nothing refers to the block now: the next run writes into it again
    submits = staged.core.submitter.submits
    for _ in range(3):
        np.testing.assert_array_equal(staged.execute(p).arrays[0], a + b)
    assert staged.host_pool.created == 1 and staged.core.submitter.submits == submits + 3  # one submit a run
    assert staged.get_memory_info()["host_pool"]["blocks"] == 1


def test_a_result_still_referred_to_is_never_overwritten(staged, spirv, rng):
    a, b = _pair(rng)
    c, d = _pair(rng)
    pa, pc = plan(_add(spirv, a, b)), plan(_add(spirv, c, d))
    kept = staged.execute(pa).arrays[0]
    view = kept[::7]  # a view keeps the block as busy as the array
    del kept
    np.testing.assert_array_equal(staged.execute(pc).arrays[0], c + d)  # same size: another block
    np.testing.assert_array_equal(staged.execute(pa).arrays[0], a + b)
    np.testing.assert_array_equal(view, (a + b)[::7])
    assert staged.host_pool.created == 2


def test_borrowed_bytes_keep_the_block(staged, spirv, rng):
    """A MemoryStore borrows a large tensor's buffer: the block stays the stored object's bytes."""
    import hlx

    a, b = _pair(rng)
    p = plan(_add(spirv, a, b))
    store = hlx.MemoryStore()
    handle = hlx.collapse(staged.execute(p).arrays[0], store=store)
    c, d = _pair(rng)
    np.testing.assert_array_equal(staged.execute(plan(_add(spirv, c, d))).arrays[0], c + d)
    np.testing.assert_array_equal(hlx.resolve(handle, store=store), a + b)  # verified against its handle


def test_results_outlive_the_session(spirv, rng, monkeypatch):
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    a, b = _pair(rng)
    with open_session() as s:
        res = s.execute(plan(_add(spirv, a, b))).arrays[0]
    np.testing.assert_array_equal(res, a + b)  # the device is gone; the memory was never the device's


def test_pool_budget_lets_go_of_blocks_results_hold(staged, spirv, rng):
    staged.host_pool.budget = 2 * POOL_MIN_BYTES
    kept = []
    for _ in range(4):
        a, b = _pair(rng)
        kept.append((staged.execute(plan(_add(spirv, a, b))).arrays[0], a + b))
        assert staged.host_pool.bytes <= staged.host_pool.budget
    for res, want in kept:
        np.testing.assert_array_equal(res, want)
    del kept
    a, b = _pair(rng)
    np.testing.assert_array_equal(staged.execute(plan(_add(spirv, a, b))).arrays[0], a + b)
    assert staged.host_pool.stats()["blocks"] <= 2


def test_small_and_large_outputs_and_an_output_asked_twice(staged, spirv, rng):
    """Stage 0 writes a large output, stage 1 a small one from it; the large one is returned twice: two
    arrays of their own (not views of one block), and the small one is copied out of the readback buffer."""
    a, b = _pair(rng)
    small = 256
    s0 = _add(spirv, a, b)
    s1 = stage("add", spirv["add_u32"], [StageRef(0, 0), inp(b[:small]), out(np.uint32, (small,))],
               (small // 64, 1, 1), struct.pack("<I", small))
    res = staged.execute(plan(s0, s1, outputs=((0, 0), (1, 0), (0, 0)))).arrays
    np.testing.assert_array_equal(res[0], a + b)
    np.testing.assert_array_equal(res[1], (a + b)[:small] + b[:small])
    np.testing.assert_array_equal(res[2], a + b)
    assert res[1].flags.owndata and not np.shares_memory(res[0], res[2])
    res[0][:] = 0
    np.testing.assert_array_equal(res[2], a + b)


def test_host_import_off_reads_back_with_one_copy(spirv, rng, monkeypatch):
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    monkeypatch.setenv("HLX_VULKAN_HOST_IMPORT", "0")
    a, b = _pair(rng)
    with open_session() as s:
        assert s.host_pool is None and "VK_EXT_external_memory_host" not in s.core.extensions
        res = s.execute(plan(_add(spirv, a, b))).arrays[0]
        np.testing.assert_array_equal(res, a + b)
        assert res.flags.owndata


def test_timeout_with_a_pooled_output_recovers(spirv, rng, monkeypatch):
    """The wait gives up (E_TIMEOUT) with the copy into a block still queued: the next run waits for it
    before anything (the block included) is used again."""
    monkeypatch.setenv("HLX_VULKAN_ZERO_COPY", "0")
    monkeypatch.setenv("HLX_VULKAN_TIMEOUT_S", "0")
    a, b = _pair(rng, 1 << 21)
    with open_session() as s:
        p = plan(_add(spirv, a, b))
        with pytest.raises(HLXError) as err:
            s.execute(p)
        assert err.value.code == "E_TIMEOUT"
        s.core.submitter.timeout_ns = 120 * 10**9
        np.testing.assert_array_equal(s.execute(p).arrays[0], a + b)


def test_warm_runs_start_from_the_hot_plan_and_fall_back_when_inputs_go(session, spirv, rng):
    a, b = _pair(rng, 1024)
    p = plan(_add(spirv, a, b))
    np.testing.assert_array_equal(session.execute(p).arrays[0], a + b)
    rec = session._hot[p.key]
    hits, misses = session.residency.hits, session.residency.misses
    for _ in range(3):
        np.testing.assert_array_equal(session.execute(p).arrays[0], a + b)
    assert session.residency.hits == hits + 6 and session.residency.misses == misses  # both inputs, 3 runs
    assert session._hot[p.key] is rec
    session.residency.clear()  # frees the inputs and, with them, the recorded plan
    assert p.key not in session._hot
    np.testing.assert_array_equal(session.execute(p).arrays[0], a + b)
    assert session.residency.misses == misses + 2 and session._hot[p.key] is not rec
    assert all(r.key in session.recorded for r in session._hot.values())


def test_a_plan_writing_an_input_is_never_hot(session, spirv, rng):
    x = rng.integers(0, 2**31, 300, dtype=np.uint32)
    st = stage("bump", spirv["bump_inplace"], [inp(x), out(np.uint32, x.shape)], (5, 1, 1), struct.pack("<I", x.size))
    p = plan(st)
    for _ in range(3):
        np.testing.assert_array_equal(session.execute(p).arrays[0], x + 1)
    assert p.key not in session._hot


def test_small_final_outputs_live_in_host_memory_on_discrete_gpus(staged, spirv, rng):
    """What a discrete GPU gets (host_output_limit): a small output no other stage touches is written by its
    stage into host memory and read in place; one a later stage reads stays on the device and is copied.
    Poisoning (on in the suite) refills the host buffer every run, so a correct result is a rewritten one."""
    from hlx_vulkan_raw.session import HOST_OUTPUT_MAX_BYTES

    staged.host_output_max = HOST_OUTPUT_MAX_BYTES
    n = 1024
    a, b = _pair(rng, n)
    p = plan(_add(spirv, a, b))
    for _ in range(3):
        np.testing.assert_array_equal(staged.execute(p).arrays[0], a + b)
    rec = staged._hot[p.key]
    assert rec.readback is None and all(buf.host_visible for buf in rec.outputs.values())
    push = struct.pack("<I", n)
    s1 = stage("add", spirv["add_u32"], [StageRef(0, 0), inp(b), out(np.uint32, (n,))], (n // 64, 1, 1), push)
    big_a, big_b = _pair(rng)
    s2 = _add(spirv, big_a, big_b)  # pooled, in the same plan
    p2 = plan(_add(spirv, a, b), s1, s2, outputs=((1, 0), (0, 0), (2, 0)))
    for _ in range(2):
        res = staged.execute(p2).arrays
        np.testing.assert_array_equal(res[0], a + b + b)
        np.testing.assert_array_equal(res[1], a + b)
        np.testing.assert_array_equal(res[2], big_a + big_b)
    rec2 = staged._hot[p2.key]
    # Slots: stage 0 writes 2 (read by stage 1: copied), stage 1 writes 3 (host), stage 2 writes 6 (pooled).
    assert list(rec2.readback_offsets) == [2] and [k for k, _, _ in rec2.pooled] == [2]
    assert [i for i, buf in rec2.outputs.items() if buf.host_visible] == [3]


def test_a_driver_refusing_the_import_leaves_outputs_to_the_copy(staged, spirv, rng, monkeypatch):
    from hlx_vulkan_raw.errors import VulkanError
    from hlx_vulkan_raw.readback import HostImport

    def refuse(self, nbytes):
        raise VulkanError("E_VK_ERROR", "vkAllocateMemory importing host memory failed: VK_ERROR_UNKNOWN")

    monkeypatch.setattr(HostImport, "block", refuse)
    a, b = _pair(rng)
    for _ in range(2):
        res = staged.execute(plan(_add(spirv, a, b))).arrays[0]
        np.testing.assert_array_equal(res, a + b)
        assert res.flags.owndata
    assert not staged.host_pool.usable() and staged.host_pool.created == 0


def test_a_resident_output_downloads_into_a_pooled_block(staged, spirv, rng, monkeypatch):
    """An output left on the device (hashed there) is read, when asked for, into a block of the pool: the
    array is a view of it (no host copy), a second download while the first is held takes another block,
    and both hold the output's values; a small one still comes through a one-off copy."""
    monkeypatch.setattr(staged, "hash_min_bytes", 1)
    monkeypatch.setattr(staged, "on_device", True)  # as hlx.run's sessions: hashed outputs stay there
    a, b = _pair(rng)
    got = staged.execute(plan(_add(spirv, a, b))).arrays[0]
    assert got.__class__.__name__ == "VulkanOutput"
    first = got.download()
    np.testing.assert_array_equal(first, a + b)
    assert not first.flags.owndata and not first.flags.writeable and staged.host_pool.created == 1
    second = got.download()
    np.testing.assert_array_equal(second, a + b)
    assert staged.host_pool.created == 2  # the first block is still referred to
    del first, second
    np.testing.assert_array_equal(got.download(), a + b)
    assert staged.host_pool.created == 2  # an idle block was written again
    x, y = _pair(rng, 1000)
    small = staged.execute(plan(_add(spirv, x, y))).arrays[0].download()
    np.testing.assert_array_equal(small, x + y)
    assert small.flags.owndata and staged.host_pool.created == 2
