"""Which buffers a run clears: the planner marks a stage ``writes_all_outputs`` only when it runs a library
shader exactly as the kernel's builder makes it, so library kernels pay for no fill, and every other stage
(a user shader, a library shader dispatched otherwise) has its outputs cleared."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.device.layout import buffer_layout
from hlx_core.device.poison import cleared_slots, fill_word
from hlx_core.kernels.helpers import shader_handle
from hlx_core.kernels.library import LIBRARY
from hlx_core.planner import plan

SHADERS = Path(__file__).resolve().parents[1] / "shaders"


def _output_slots(p) -> list[int]:
    layout = buffer_layout(p)
    return [slot.index for slot in layout.slots if not slot.is_input]


def _hand_written(contract: dict) -> dict:
    """A helper's 901 as someone might write it by hand: push constants only, no params or layout."""
    body = {k: v for k, v in contract["901"].items() if k not in ("params", "push_constants_layout")}
    return {"901": body}


def test_every_library_kernel_declares_it():
    assert all(spec.writes_all_outputs for spec in LIBRARY)


def test_library_pipelines_clear_nothing(rng):
    x = rng.standard_normal((9, 70)).astype(np.float32)
    w = rng.standard_normal((70, 5)).astype(np.float32)
    for contract in (K.add(x, x), K.pipeline([K.gemm(x, w), K.relu(K.stage(0)), K.reduce_sum(K.stage(1))]),
                     _hand_written(K.softmax(x))):
        p = plan(contract)
        assert all(stage.writes_all_outputs for stage in p.stages)
        layout = buffer_layout(p)
        assert cleared_slots(p, layout, poison=False) == []
        assert sorted(cleared_slots(p, layout, poison=True)) == _output_slots(p)  # poisoning checks them all


def test_user_shader_is_cleared(rng):
    """A copy of the add shader with one debug name changed is a user shader, whatever its kernel_name."""
    spirv = (SHADERS / "add.spv").read_bytes()
    assert spirv.count(b"stride\0") == 1
    user = spirv.replace(b"stride\0", b"strid3\0")
    x = rng.standard_normal(300).astype(np.float32)
    body = dict(_hand_written(K.add(x, x))["901"], kernel_name="renamed_add",
                shader_handle=hlx.collapse(hlx.shader_contract(user)))
    p = plan({"901": body})
    assert not p.stages[0].writes_all_outputs
    assert cleared_slots(p, buffer_layout(p), poison=False) == _output_slots(p)


def test_library_shader_off_its_builder_dispatch_is_cleared(rng):
    """gemm() builds the 64-tile shader for a small product, so a stage running the 128-tile shader on it
    has no dispatch rule to meet: nothing proves it covers its output, and it is cleared."""
    a, b = rng.standard_normal((200, 3)).astype(np.float32), rng.standard_normal((3, 190)).astype(np.float32)
    body = dict(_hand_written(K.gemm(a, b))["901"], kernel_name="gemm128", shader_handle=shader_handle("gemm128"),
                dispatch=[1, 1, 1])
    p = plan({"901": body})
    assert not p.stages[0].writes_all_outputs
    assert cleared_slots(p, buffer_layout(p), poison=False) == _output_slots(p)


@pytest.mark.parametrize("poison, word", [(False, 0), (True, 0xFFFFFFFF)])
def test_fill_word(poison, word):
    assert fill_word(poison) == word
