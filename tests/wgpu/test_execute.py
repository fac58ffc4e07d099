"""Running plans through the wgpu session: results against NumPy, push constants both ways, override
constants, spec-constant workgroup sizes, multi-stage plans, caching and timings."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from wgpu_plans import inp, make_plan, make_shader, make_stage, out, poison

from hlx_core.plan import StageRef


def _axpby_plan(spirv, a, b, alpha, scale, wg):
    n = a.size
    stage = make_stage("axpby", make_shader(spirv["axpby"]), (-(-n // wg), 1, 1),
                       [inp(a), inp(b), out("float32", n)], struct.pack("<If", n, alpha),
                       spec={0: wg, 1: scale}, workgroup=(wg, 1, 1))
    return make_plan(stage)


@pytest.mark.parametrize("which", ["session", "uniform_session"])
@pytest.mark.parametrize("wg", [32, 128])
def test_axpby_matches_numpy(request, spirv, rng, which, wg):
    session = request.getfixturevalue(which)
    n = int(rng.integers(1000, 5000))
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    alpha, scale = float(rng.uniform(0.5, 2)), float(rng.uniform(2, 4))
    poison(session, spirv, 4 * n)
    got = session.execute(_axpby_plan(spirv, a, b, alpha, scale, wg)).arrays[0]
    want = scale * a.astype(np.float64) + np.float32(alpha) * b.astype(np.float64)
    assert got.dtype == np.float32 and got.shape == (n,)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    path = session.shader_paths["axpby"]
    assert path.path == "spirv" and "workgroup-size" in path.patches
    assert path.push_mode == ("immediates" if which == "session" else "uniform")
    assert ("push-constants-to-uniform" in path.patches) == (which == "uniform_session")


def test_push_modes_agree_bitwise(session, uniform_session, spirv, rng):
    a, b = rng.standard_normal(777).astype(np.float32), rng.standard_normal(777).astype(np.float32)
    plan = _axpby_plan(spirv, a, b, 0.75, 3.0, 64)
    x, y = session.execute(plan).arrays[0], uniform_session.execute(plan).arrays[0]
    assert x.tobytes() == y.tobytes()


def test_integer_add_exact(session, spirv, rng):
    n = 1000
    a = rng.integers(-2**31, 2**31 - 1, n, dtype=np.int64).astype(np.int32)
    b = rng.integers(-2**31, 2**31 - 1, n, dtype=np.int64).astype(np.int32)
    poison(session, spirv, 4 * n)
    stage = make_stage("iadd", make_shader(spirv["iadd"]), (-(-n // 64), 1, 1), [inp(a), inp(b), out("int32", n)])
    got = session.execute(make_plan(stage)).arrays[0]
    np.testing.assert_array_equal(got, (a.astype(np.int64) + b).astype(np.int32))  # wraps like int32


def test_two_stage_plan_reads_intermediate_on_device(session, spirv, rng):
    n = 2048
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    axpby = make_shader(spirv["axpby"])
    first = make_stage("axpby", axpby, (n // 64, 1, 1), [inp(a), inp(b), out("float32", n)],
                       struct.pack("<If", n, 2.0), spec={0: 64, 1: 1.0}, workgroup=(64, 1, 1))
    second = make_stage("axpby", axpby, (n // 64, 1, 1), [StageRef(0, 0), inp(a), out("float32", n)],
                        struct.pack("<If", n, -1.0), spec={0: 64, 1: 3.0}, workgroup=(64, 1, 1))
    ex = session.execute(make_plan(first, second, outputs=[(0, 0), (1, 0)]))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    mid = a64 + 2 * b64
    np.testing.assert_allclose(ex.arrays[0], mid, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ex.arrays[1], 3 * ex.arrays[0].astype(np.float64) - a64, rtol=1e-6, atol=1e-5)
    for key in ("gpu_ms", "stage0_gpu_ms", "stage1_gpu_ms", "host_ms"):
        assert ex.timings[key] >= 0, key
    assert ex.timings["gpu_ms"] >= ex.timings["stage0_gpu_ms"]


def test_second_run_allocates_and_uploads_nothing(session, spirv, rng):
    a, b = rng.standard_normal(3000).astype(np.float32), rng.standard_normal(3000).astype(np.float32)
    plan = _axpby_plan(spirv, a, b, 1.5, 2.0, 64)
    first = session.execute(plan).arrays[0]
    st = session.core

    def counts():
        return (len(st.shaders), len(st.pipelines), st.pipelines.bind_groups_created, st.storage.created,
                st.readback.created, st.upload.created)

    before, hits = counts(), st.resident.hits
    np.testing.assert_array_equal(session.execute(plan).arrays[0], first)
    assert counts() == before and st.resident.hits == hits + 2  # both inputs were still on the device
    c = rng.standard_normal(3000).astype(np.float32)  # new data, same shapes: one more buffer at most
    second = session.execute(_axpby_plan(spirv, a, c, 1.5, 2.0, 64)).arrays[0]
    after = counts()
    assert after[:2] == before[:2] and after[2] <= before[2] + 1 and after[3] <= before[3] + 1
    assert after[4:] == before[4:]  # the staging buffers are reused, not made per run
    np.testing.assert_allclose(second - first, 1.5 * (c.astype(np.float64) - b), rtol=1e-5, atol=1e-5)


def test_empty_tiny_and_odd_sizes(session, spirv, rng):
    for n in (0, 1, 3, 65):
        a = rng.integers(-1000, 1000, n).astype(np.int32)
        b = rng.integers(-1000, 1000, n).astype(np.int32)
        stage = make_stage("iadd", make_shader(spirv["iadd"]), (-(-n // 64), 1, 1),
                           [inp(a), inp(b), out("int32", n)])
        np.testing.assert_array_equal(session.execute(make_plan(stage)).arrays[0], a + b)


def test_wgsl_variant_runs_where_naga_refuses_the_spirv(session, uniform_session, spirv, rng):
    from wgpu_plans import SHADERS

    wgsl = (SHADERS / "shared_twice.wgsl").read_text()
    n = 1000
    x = rng.standard_normal(n).astype(np.float32)
    stage = make_stage("shared_twice", make_shader(spirv["shared_twice"], wgsl), (-(-n // 64), 1, 1),
                       [inp(x), out("float32", n)], struct.pack("<I", n))
    for s in (session, uniform_session):
        got = s.execute(make_plan(stage)).arrays[0]
        np.testing.assert_array_equal(got, 2 * x)
        compiled = s.shader_paths["shared_twice"]
        assert compiled.path == "wgsl" and "SpecConstantOp" in compiled.refusal


def test_input_the_shader_writes_is_uploaded_every_run(session, spirv, rng):
    """``bump`` adds 1 to its input in place: a buffer kept under the input's handle would hold other data
    on the next run, so such inputs never stay resident and every run gives the same result."""
    x = rng.integers(-1000, 1000, 300).astype(np.int32)
    stage = make_stage("bump", make_shader(spirv["bump"]), (-(-x.size // 64), 1, 1), [inp(x), out("int32", x.size)])
    plan = make_plan(stage)
    hits = session.core.resident.hits
    for _ in range(3):
        np.testing.assert_array_equal(session.execute(plan).arrays[0], x)
    assert session.core.resident.hits == hits
    assert session.core.prepared.get(plan.key).written == {0, 1}  # slots of x (in place) and y


def test_odd_byte_inputs_are_zero_padded_to_words(session, spirv, rng):
    """Inputs whose size is not a whole number of words reach the device zero-padded (the upload buffer
    holds earlier data there): ``iadd`` reads the bytes as int32 words."""
    poison(session, spirv, 256)  # dirty pooled buffers of the size class the inputs land in
    a = rng.integers(0, 256, 7).astype(np.uint8)
    b = rng.integers(0, 256, 7).astype(np.uint8)
    stage = make_stage("iadd", make_shader(spirv["iadd"]), (1, 1, 1), [inp(a), inp(b), out("int32", 2)])
    got = session.execute(make_plan(stage)).arrays[0]
    words = lambda v: np.frombuffer(np.concatenate([v, np.zeros(1, np.uint8)]).tobytes(), "<i4")  # noqa: E731
    np.testing.assert_array_equal(got, words(a) + words(b))


def test_outputs_are_copies_not_views_of_the_staging_buffer(session, spirv, rng):
    a = rng.standard_normal(2000).astype(np.float32)
    first = session.execute(_axpby_plan(spirv, a, a, 1.0, 2.0, 64)).arrays[0]
    kept = first.copy()
    assert first.flags.writeable and first.flags.owndata
    session.execute(_axpby_plan(spirv, a, -a, 1.0, 2.0, 64))  # the same staging range, other data
    np.testing.assert_array_equal(first, kept)
