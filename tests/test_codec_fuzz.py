"""Fuzz the strict decoder with mutated and truncated valid encodings.

Two properties over 100k+ inputs: the decoder raises nothing but CodecError, and every input it accepts
re-encodes to exactly itself (so no two byte strings decode to the same value).
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from codec_values import random_value

from hlx_core.codec import decode, encode
from hlx_core.codec.handle import Handle
from hlx_core.errors import CodecError

N_INPUTS = 400_000
# Bytes that change the meaning of what follows: every marker of the 0xc0-0xdf block and the fix-range edges.
INTERESTING = list(range(0xC0, 0xE0)) + [0x00, 0x01, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xE0, 0xFF,
                                         0x48, 0x54, 0x10, 0x20, 0x32, 0x33]


def _corpus(rng: np.random.Generator) -> list[bytes]:
    fixed = [None, True, 0, -1, 127, 128, -33, 2**64 - 1, -(2**63), 1.5, "", "x" * 31, "y" * 32, b"",
             [], {}, [[[]]], {"a": {"b": [1, 2]}}, np.zeros((2, 0), np.int16), np.array(7, np.uint8),
             np.arange(6, dtype=np.float32).reshape(2, 3), np.array([True, False]),
             Handle("&h_tensor_" + "ab" * 32),
             {"t": np.ones(3, np.float16), "h": Handle("&h_int_" + "0" * 64)}]
    corpus = [encode(v) for v in fixed]
    while len(corpus) < 400:
        data = encode(random_value(rng))
        if len(data) <= 600:
            corpus.append(data)
    return corpus


def _mutate(data: bytes, corpus: list[bytes], rnd: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.choice((1, 1, 1, 2, 3))):
        n = len(buf)
        op = rnd.randrange(10)
        i = rnd.randrange(n) if n else 0
        if op == 0 and n:
            buf[i] ^= 1 << rnd.randrange(8)
        elif op == 1 and n:
            buf[i] = rnd.randrange(256)
        elif op == 2 and n:
            buf[i] = rnd.choice(INTERESTING)
        elif op == 3:
            del buf[rnd.randrange(n + 1):]
        elif op == 4:
            buf.insert(i, rnd.choice(INTERESTING) if rnd.random() < 0.5 else rnd.randrange(256))
        elif op == 5 and n:
            del buf[i:i + rnd.randrange(1, 9)]
        elif op == 6 and n:
            j = rnd.randrange(i, n + 1)
            buf[i:i] = buf[i:j]
        elif op == 7:
            other = rnd.choice(corpus)
            buf = buf[:i] + other[rnd.randrange(len(other) + 1):]
        elif op == 8:
            buf += bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 4)))
        elif n:
            buf[i] = (buf[i] + rnd.choice((-1, 1))) & 0xFF
    return bytes(buf)


@pytest.mark.slow
def test_mutated_encodings_raise_only_codec_error_and_accepted_ones_reencode(rng):
    corpus = _corpus(rng)
    rnd = random.Random(int(rng.integers(2**63)))
    accepted = refused = 0
    for k in range(N_INPUTS):
        data = _mutate(corpus[k % len(corpus)], corpus, rnd)
        try:
            value = decode(data)
        except CodecError:
            refused += 1
            continue
        except Exception as exc:  # the property under test: nothing else may escape
            pytest.fail(f"{type(exc).__name__}: {exc} on input {data.hex()}")
        assert encode(value) == data, f"accepted input does not re-encode to itself: {data.hex()}"
        accepted += 1
    assert accepted + refused == N_INPUTS
    assert accepted > N_INPUTS // 100 and refused > N_INPUTS // 2
