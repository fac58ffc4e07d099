"""A run's commands go straight to wgpu-native under one error capture (hlx_wgpu/commands.py): an error any
of them reports is raised once, before the submit, as wgpu-py's wrapper would raise it, and the capture
stack stays balanced."""
from __future__ import annotations

import numpy as np
import pytest
from wgpu_plans import inp, make_plan, make_shader, make_stage, out


def test_an_error_is_raised_at_end_and_the_session_keeps_working(session, spirv, rng):
    import wgpu
    from wgpu.backends.wgpu_native import _api

    core = session.core
    small = core.storage.acquire(16)
    large = core.storage.acquire(4 * small.size)
    commands = core.commands
    try:
        commands.begin()
        try:
            commands.copy(large.buffer, 0, small.buffer, 0, large.size)  # more than the destination holds
            with pytest.raises(wgpu.GPUValidationError) as err:
                commands.submit()  # raised before the queue sees the command buffer
        finally:
            commands.end()
        assert "overrunning" in str(err.value)
    finally:
        core.storage.release(small)
        core.storage.release(large)
    assert not _api.error_handler._get_proxy_stack()  # every capture released
    n = 300
    a, b = rng.integers(-1000, 1000, n).astype(np.int32), rng.integers(-1000, 1000, n).astype(np.int32)
    stage = make_stage("iadd", make_shader(spirv["iadd"]), (-(-n // 64), 1, 1), [inp(a), inp(b), out("int32", n)])
    np.testing.assert_array_equal(session.execute(make_plan(stage)).arrays[0], a + b)
