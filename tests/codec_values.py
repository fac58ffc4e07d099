"""Value generators and a strict equality shared by the codec tests (hypothesis strategies, fuzz corpus)."""
from __future__ import annotations

import random
import unicodedata
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hlx_core.codec.handle import TAGS, Handle

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64"]

nfc_text = st.text(max_size=40).map(lambda s: unicodedata.normalize("NFC", s))
handles = st.builds(Handle.from_digest, st.sampled_from(TAGS), st.binary(min_size=32, max_size=32))
tensors = hnp.arrays(
    dtype=st.sampled_from(DTYPES).map(np.dtype),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
)
scalars = (st.none() | st.booleans()
           | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False)
           | nfc_text | st.binary(max_size=300) | handles | tensors)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(nfc_text, inner, max_size=6),
    max_leaves=30,
)


def same(a: Any, b: Any) -> bool:
    """Equality that also checks types: tensors by dtype, shape and bytes; Handle stays Handle; floats bit
    for bit (after -0.0 -> +0.0); tuples and lists alike."""
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, Handle):
        return type(b) is Handle and str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return type(b) is list and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return (type(b) is dict and sorted(a) == list(b)
                and all(same(a[k], b[k]) for k in a))
    if isinstance(a, float):
        return type(b) is float and (a + 0.0).hex() == b.hex()
    if isinstance(a, (bytes, bytearray, memoryview)):
        return type(b) is bytes and bytes(a) == b
    return type(a) is type(b) and a == b


def shuffled(v: Any, rnd: random.Random) -> Any:
    """The same value with every dict rebuilt in a random insertion order."""
    if isinstance(v, dict):
        keys = list(v)
        rnd.shuffle(keys)
        return {k: shuffled(v[k], rnd) for k in keys}
    if isinstance(v, list):
        return [shuffled(x, rnd) for x in v]
    return v


def random_value(rng: np.random.Generator, depth: int = 0) -> Any:
    """A varied random value (containers, every scalar kind, tensors, handles) for the fuzz corpus."""
    kind = int(rng.integers(0, 12 if depth < 3 else 10))
    if kind == 0:
        return [None, True, False][int(rng.integers(0, 3))]
    if kind == 1:
        bits = int(rng.integers(0, 64))
        return int(rng.integers(-(2**bits), 2**bits, dtype=np.int64)) if bits < 63 else 2**64 - 1
    if kind == 2:
        return float(rng.standard_normal() * 10.0 ** int(rng.integers(-5, 30)))
    if kind == 3:
        text = "".join(chr(int(c)) for c in rng.integers(32, 0x3000, int(rng.integers(0, 40))))
        return unicodedata.normalize("NFC", text)
    if kind == 4:
        return unicodedata.normalize("NFC", "caf\u00e9 \u00c5ngstr\u00f6m " * int(rng.integers(0, 12)))
    if kind == 5:
        return rng.bytes(int(rng.choice([0, 3, 31, 32, 255, 256, 300])))
    if kind in (6, 7):
        dtype = np.dtype(DTYPES[int(rng.integers(0, len(DTYPES)))])
        shape = tuple(int(s) for s in rng.integers(0, 4, int(rng.integers(0, 4))))
        raw = rng.bytes(int(np.prod(shape)) * dtype.itemsize)
        arr = np.frombuffer(raw, np.uint8).copy()
        if dtype.kind == "b":
            arr &= 1
        return arr.view(dtype).reshape(shape)
    if kind == 8:
        return Handle.from_digest(TAGS[int(rng.integers(0, len(TAGS)))], rng.bytes(32))
    if kind == 9:
        return int(rng.integers(-40, 200))
    if kind == 10:
        return [random_value(rng, depth + 1) for _ in range(int(rng.integers(0, 20)))]
    return {f"k{int(k)}": random_value(rng, depth + 1) for k in rng.integers(0, 40, int(rng.integers(0, 18)))}
