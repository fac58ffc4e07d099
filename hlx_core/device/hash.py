"""BLAKE3 on the GPU: the dispatches of ``shaders/blake3.comp`` that give a tensor's handle on the device.

A tensor's handle is the BLAKE3 of its LC-B encoding: a prefix (ext marker and tensor header, at most a few
hundred bytes, fixed by dtype and shape) followed by the raw little-endian C-order payload, which on a GPU
backend already lives in a device buffer. ``hash_passes`` lists the dispatches that hash such a message: the
chunk pass (128 chunks of 1024 bytes per workgroup, folded into one chaining value), then parent passes
(128 chaining values per workgroup) until one workgroup leaves the root. A backend can record them on its own
buffers (binding 0 the prefix words, 1 the payload or the previous pass's output, 2 this pass's output);
``hash_contract`` writes them as a 901 or 902 that ``hlx.run`` executes on any GPU backend, and
``digest_handle`` turns the last pass's 8 words into the handle. docs/GPU_HASH.md has the details.
"""
from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from hlx_core.cas.api import collapse, get_default_store
from hlx_core.codec import encode_chunks, tensor_prefix
from hlx_core.codec.handle import Handle, blake3_digest, is_handle
from hlx_core.contracts.ids import COMPUTE_KERNEL, PIPELINE_CONFIG
from hlx_core.contracts.shader import shader_contract
from hlx_core.contracts.tensors import resolve_tensor
from hlx_core.errors import ContractError
from hlx_core.plan import InputRef, OutputRef, Plan, Shader, Stage, StageRef
from hlx_core.settings import env_bytes
from hlx_core.spirv.reflect import reflect_entry
from hlx_shaders import FOLDER

#: The smallest output a GPU backend hashes on the device (and leaves there) unless its variable
#: (HLX_VULKAN_DEVICE_HASH_BYTES, HLX_WGPU_DEVICE_HASH_BYTES) says otherwise.
DEFAULT_MIN_BYTES = 1 << 20


def min_bytes(env: str) -> int:
    """The device-hash threshold the variable ``env`` sets (0: every output is hashed on the host and read
    back); read when a session opens, not per run."""
    return env_bytes(env, DEFAULT_MIN_BYTES)


KERNEL_NAME = "blake3"
SHADER = "blake3.spv"
CHUNK_BYTES = 1024
CHUNKS_PER_GROUP = 128  # one chunk per invocation of the shader's 128
VALUES_PER_GROUP = 128  # chaining values a parent-pass workgroup folds
DIGEST_WORDS = 8
MODE_CHUNKS = 0
MODE_PARENTS = 1
_PUSH = struct.Struct("<5I")  # mode, prefix_len, payload_len, count, root


@dataclass(frozen=True)
class HashPass:
    """One dispatch of the shader: ``push_constants`` (its 20-byte block), ``dispatch`` (workgroup counts),
    ``output_words`` (uint32 words it writes: 8 per workgroup); ``mode`` 0 reads the payload, 1 the
    previous pass's output; ``root`` marks the last pass, whose 8 words are the digest."""

    mode: int
    count: int
    root: bool
    push_constants: bytes
    dispatch: tuple[int, int, int]
    output_words: int


def prefix_words(prefix: bytes) -> np.ndarray:
    """``prefix`` as the little-endian uint32 words binding 0 holds (zero-padded to a whole word)."""
    padded = prefix + bytes(-len(prefix) % 4)
    return np.frombuffer(padded, dtype="<u4").astype(np.uint32)


def hash_passes(prefix_len: int, payload_len: int) -> tuple[HashPass, ...]:
    """The dispatches that hash ``prefix_len`` bytes of prefix followed by ``payload_len`` bytes of payload,
    in order; the last one's output is the digest. A payload under 4 GiB has at most 2^22 + 1 chunks, so
    every dispatch fits Vulkan's guaranteed 65535 workgroups along x."""
    if not 0 < prefix_len < CHUNK_BYTES or not 0 <= payload_len < 2**32:
        raise ContractError("E_SHAPE", f"a message of {prefix_len} prefix and {payload_len} payload bytes: the "
                            f"shader takes a prefix of 1..{CHUNK_BYTES - 1} bytes and a payload under 4 GiB")
    chunks = max(-(-(prefix_len + payload_len) // CHUNK_BYTES), 1)
    groups = -(-chunks // CHUNKS_PER_GROUP)
    passes = [HashPass(MODE_CHUNKS, chunks, groups == 1,
                       _PUSH.pack(MODE_CHUNKS, prefix_len, payload_len, chunks, int(groups == 1)),
                       (groups, 1, 1), DIGEST_WORDS * groups)]
    values = groups
    while values > 1:
        groups = -(-values // VALUES_PER_GROUP)
        passes.append(HashPass(MODE_PARENTS, values, groups == 1,
                               _PUSH.pack(MODE_PARENTS, 0, 0, values, int(groups == 1)),
                               (groups, 1, 1), DIGEST_WORDS * groups))
        values = groups
    return tuple(passes)


@functools.lru_cache(maxsize=1)
def shader() -> dict:
    """The validated 900 of the hash shader (the committed SPIR-V)."""
    return shader_contract(FOLDER.joinpath(SHADER).read_bytes(), "main")


def _tensor(tensor: Any, store: Any) -> tuple[Handle, np.ndarray]:
    """The handle and array of what is to be hashed: an array (collapsed into ``store``) or a tensor handle."""
    if isinstance(tensor, np.ndarray):
        array = np.asarray(tensor, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)
        return collapse(array, store), array
    if is_handle(tensor):
        handle = Handle(tensor)
        array = resolve_tensor(handle, store)
        if isinstance(array, np.ndarray):
            return handle, array
        raise ContractError("E_CONTRACT_FIELD_TYPE", f"{KERNEL_NAME}: {handle} holds a "
                            f"{type(array).__name__}, not a tensor")
    raise ContractError("E_CONTRACT_FIELD_TYPE", f"{KERNEL_NAME}: expected a NumPy array or a tensor handle, "
                        f"not {type(tensor).__name__}")


def hash_contract(tensor: Any, *, store: Any = None) -> dict:
    """A contract whose output (uint32[8]) is the BLAKE3 digest of ``tensor``'s LC-B encoding, computed on
    the device: a 901 for tensors of at most 128 chunks, else a 902 of one stage per pass. ``tensor``: a
    NumPy array (any LC-B dtype; collapsed into ``store``) or a tensor handle in ``store``. The tensor is
    bound as it is (the shader reads its raw bytes); the prefix is a small uint32 input tensor."""
    store = get_default_store() if store is None else store
    handle, array = _tensor(tensor, store)
    prefix = tensor_prefix(array.dtype, array.shape)
    prefix_handle = collapse(prefix_words(prefix), store)
    shader_handle = collapse(shader(), store)
    stages = []
    for i, step in enumerate(hash_passes(len(prefix), array.nbytes)):
        source = handle if i == 0 else {"stage": i - 1, "output": 0}
        stages.append({COMPUTE_KERNEL: {
            "kernel_name": KERNEL_NAME,
            "shader_handle": shader_handle,
            "dispatch": list(step.dispatch),
            "bindings": [prefix_handle, source, {"output": {"dtype": "uint32", "shape": [step.output_words]}}],
            "push_constants": step.push_constants,
        }})
    if len(stages) == 1:
        return stages[0]
    return {PIPELINE_CONFIG: {
        "pipeline_id": KERNEL_NAME,
        "stages": stages,
        "sync_barriers": [{"stage_idx": i, "memory_scope": "device"} for i in range(len(stages) - 1)],
        "outputs": [{"stage": len(stages) - 1, "output": 0}],
    }}


def digest_handle(words: Any) -> Handle:
    """The tensor handle whose digest the last pass wrote: ``words``, its 8 uint32 words (little-endian, as
    ``blake3(...).digest()``); e.g. ``digest_handle(hlx.run(hash_contract(a)).arrays()[0])``."""
    array = np.asarray(words)
    if array.dtype != np.uint32 or array.shape != (DIGEST_WORDS,):
        raise ContractError("E_SHAPE", f"a digest is uint32[{DIGEST_WORDS}], got {array.dtype}{list(array.shape)}")
    return Handle.from_digest("tensor", array.astype("<u4").tobytes())


@dataclass(frozen=True)
class HashedPlan:
    """A plan with the hash passes of its large outputs appended as stages, for a backend that runs plans
    as they are (wgpu) rather than recording the passes itself (Vulkan, which reuses the output buffers
    directly). ``plan.outputs`` are the original outputs, then one uint32[8] digest per hashed output;
    ``digests[k]`` is the index of output k's digest among them, None for an output left to the host."""

    plan: Plan
    digests: tuple[int | None, ...]

    def handles(self, words: list[np.ndarray]) -> list[Handle | None]:
        """Each original output's handle from the digests the run returned (``words``, all outputs)."""
        return [None if d is None else digest_handle(words[d]) for d in self.digests]


@functools.lru_cache(maxsize=1)
def _shader() -> Shader:
    contract = shader()
    body = next(iter(contract.values()))
    spirv = bytes(body["spirv_binary"])
    handle = Handle.from_digest("contract", blake3_digest(encode_chunks(contract)))
    return Shader(handle, spirv, body["entry_point"], reflect_entry(spirv, body["entry_point"]))


def _prefix_input(dtype: Any, shape: tuple[int, ...]) -> InputRef:
    """The prefix words as an input, under the handle of their own tensor (never stored: a device keeps it
    resident by that handle like any input)."""
    words = prefix_words(tensor_prefix(dtype, shape))
    words.flags.writeable = False
    return InputRef(Handle.from_digest("tensor", blake3_digest(encode_chunks(words))), words)


def hashed_plan(plan: Plan, min_bytes: int) -> HashedPlan | None:
    """``plan`` with the hash passes of every output of at least ``min_bytes`` (> 0) bytes, or None when
    there is none. Each pass is a stage of the hash shader reading the output (or the previous pass) by
    StageRef; the passes write every word of their outputs, so no fill precedes them."""
    hashed = [k for k, spec in enumerate(plan.output_specs) if 0 < min_bytes <= spec.nbytes]
    if not hashed:
        return None
    shader_ = _shader()
    stages = list(plan.stages)
    outputs = list(plan.outputs)
    digests: list[int | None] = [None] * len(plan.outputs)
    done: dict[tuple[int, int], int] = {}  # an output listed twice is hashed once
    for k in hashed:
        source = plan.outputs[k]
        if source in done:
            digests[k] = done[source]
            continue
        spec = plan.output_specs[k]
        prefix = _prefix_input(spec.dtype, spec.shape)
        read: StageRef = StageRef(*source)
        for step in hash_passes(len(tensor_prefix(spec.dtype, spec.shape)), spec.nbytes):
            stages.append(Stage(KERNEL_NAME, shader_, shader_.info.local_size, step.dispatch,
                                (prefix, read, OutputRef(np.dtype(np.uint32), (step.output_words,))),
                                step.push_constants, writes_all_outputs=True))
            read = StageRef(len(stages) - 1, 0)
        digests[k] = done[source] = len(outputs)
        outputs.append((read.stage, 0))
    key = Handle.from_digest("contract", blake3_digest([b"hlx-hashed-plan:", plan.key.encode()]))
    barriers = plan.barriers + tuple((s, "device") for s in range(len(plan.stages) - 1, len(stages) - 1))
    return HashedPlan(Plan(key, tuple(stages), tuple(outputs), barriers), tuple(digests))
