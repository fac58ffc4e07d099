"""LC-B codec: axioms A1/A2, canonical forms checked against msgpack, every rejection code, zero-copy."""
from __future__ import annotations

import mmap
import struct

import msgpack
import numpy as np
import pytest
from codec_values import handles, nfc_text, same, shuffled, tensors, values
from hypothesis import given, settings
from hypothesis import strategies as st

import hlx
from hlx_core import codec
from hlx_core.codec import decode, encode, encode_chunks, pre_serialize, set_limits
from hlx_core.codec.handle import Handle
from hlx_core.errors import CodecError

SETTINGS = settings(max_examples=150, deadline=None)


def refused(code: str, fn, *args) -> CodecError:
    with pytest.raises(CodecError) as info:
        fn(*args)
    assert info.value.code == code, str(info.value)
    return info.value


# --- axioms ---------------------------------------------------------------------------------------
@SETTINGS
@given(values, st.randoms(use_true_random=False))
def test_a1_deterministic_and_key_order_free(v, rnd):
    data = encode(v)
    assert encode(v) == data
    assert encode(shuffled(v, rnd)) == data
    assert b"".join(encode_chunks(v)) == data


@SETTINGS
@given(values)
def test_a2_round_trip_and_reencode(v):
    data = encode(v)
    back = decode(data)
    assert same(v, back)
    assert encode(back) == data


@SETTINGS
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f + 0.0)
                    | nfc_text | st.binary(max_size=300),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(nfc_text, inner, max_size=5),
                    max_leaves=20))
def test_plain_values_match_msgpack_reference(v):
    """Without ext types, LC-B is msgpack with sorted keys: the reference packer gives the same bytes."""
    def sort(x):
        if isinstance(x, dict):
            return {k: sort(x[k]) for k in sorted(x)}
        return [sort(i) for i in x] if isinstance(x, list) else x
    data = encode(v)
    assert data == msgpack.packb(sort(v), use_bin_type=True)
    assert msgpack.unpackb(data, raw=False, strict_map_key=False) == v


@SETTINGS
@given(tensors)
def test_tensor_round_trip_is_read_only_view(arr):
    data = bytearray(encode(arr))
    back = decode(data)
    assert same(arr, back)
    assert not back.flags.writeable
    if back.nbytes:
        assert np.shares_memory(back, np.frombuffer(data, np.uint8))


@SETTINGS
@given(handles)
def test_handle_round_trip_differs_from_its_text(h):
    back = decode(encode(h))
    assert type(back) is Handle and back == h
    assert decode(encode(str(h))) == h and type(decode(encode(str(h)))) is str
    assert encode(str(h)) != encode(h)


# --- canonical forms at every length boundary -----------------------------------------------------
@pytest.mark.parametrize("n", [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
                               -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)])
def test_int_forms_are_shortest(n):
    data = encode(n)
    assert data == msgpack.packb(n)
    assert decode(data) == n


@pytest.mark.parametrize("n", [0, 15, 16, 31, 32, 255, 256, 65535, 65536])
def test_length_forms_are_shortest(n, rng):
    text = "x" * n
    blob = rng.bytes(n)
    items = list(range(min(n, 70000)))
    keyed = {f"{i:06d}": i for i in range(min(n, 70000))}
    for v in (text, blob, items, keyed):
        data = encode(v)
        assert data == msgpack.packb(v, use_bin_type=True)
        assert decode(data) == v


def test_floats_are_float64_and_negative_zero_is_positive():
    assert encode(1.5) == b"\xcb" + struct.pack(">d", 1.5)
    assert encode(-0.0) == encode(0.0) == b"\xcb" + bytes(8)
    assert encode(np.float32(1.5)) == encode(1.5)
    assert encode(np.float16(-0.0)) == encode(0.0)


def test_numpy_floats_that_float64_cannot_hold_are_refused():
    assert encode(np.longdouble(2.5)) == encode(2.5)
    for value in (np.longdouble(1) / np.longdouble(3), np.longdouble("1e400")):
        for call in (encode, pre_serialize):
            with pytest.raises(CodecError, match="no exact float64 value") as err:
                call({"x": [value]})
            assert err.value.code == "E_TYPE" and err.value.path == "$.x[0]"
    with pytest.raises(CodecError, match="not finite"):
        encode(np.longdouble("inf"))


def test_numpy_scalars_and_buffers_encode_as_plain_values(rng):
    n = int(rng.integers(1000, 10**9))
    assert encode(np.int64(n)) == encode(n)
    assert encode(np.uint8(200)) == encode(200)
    assert encode(np.bool_(True)) == encode(True)
    blob = rng.bytes(100)
    assert encode(bytearray(blob)) == encode(memoryview(blob)) == encode(blob)
    grid = np.frombuffer(blob, np.uint8).reshape(10, 10)
    assert decode(encode(memoryview(grid[:, ::2]))) == grid[:, ::2].tobytes()
    assert decode(encode(memoryview(np.frombuffer(blob, np.int32)))) == blob
    assert decode(encode((1, (2, 3)))) == [1, [2, 3]]


def test_str_and_dict_subclasses_encode_as_their_base():
    class Text(str):
        pass

    class Table(dict):
        pass

    class Row(list):
        pass

    assert encode(Table({Text("b"): 1, "a": Text("x")})) == encode({"a": "x", "b": 1})
    assert encode(Row([1, Row([2])])) == encode([1, [2]])
    h = Handle("&h_blob_" + "0" * 64)
    assert decode(encode({h: 1})) == {str(h): 1}


def test_tensor_layout_byte_by_byte():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    payload = bytes([0x32, 2]) + struct.pack("<2Q", 2, 3) + arr.tobytes()
    assert encode(arr) == bytes([0xC7, len(payload), codec.EXT_TENSOR]) + payload
    big = np.zeros(20000, np.float64)
    data = encode(big)
    assert data[:6] == b"\xc9" + struct.pack(">I", 10 + big.nbytes) + bytes([codec.EXT_TENSOR])
    assert (6 + 10) % 8 == 0 and data[16:] == big.tobytes()


def test_tensors_converted_to_little_endian_c_order(rng):
    arr = rng.standard_normal((5, 7))
    for variant in (arr.T, arr[::2, ::-3], arr.astype(">f8"), np.asfortranarray(arr)):
        back = decode(encode(variant))
        assert back.dtype == np.dtype("<f8") and back.flags.c_contiguous
        assert np.array_equal(back, variant) and back.shape == variant.shape
        assert encode(back) == encode(np.ascontiguousarray(variant, dtype="<f8"))


def test_tensor_nan_payloads_and_negative_zero_kept_bit_exact():
    bits = np.array([0x7FC00001, 0xFFC12345, 0x7F800001, 0x80000000], np.uint32)
    arr = bits.view(np.float32)
    back = decode(encode(arr))
    assert np.array_equal(back.view(np.uint32), bits)
    half = np.array([0x7E01, 0xFC00, 0x8000], np.uint16).view(np.float16)
    assert decode(encode(half)).tobytes() == half.tobytes()


def test_bool_tensor_bytes_normalised_to_0_and_1():
    odd = np.array([0, 2, 1, 255], np.uint8).view(np.bool_)
    back = decode(encode(odd))
    assert back.view(np.uint8).tolist() == [0, 1, 1, 1]


def test_zero_d_and_empty_tensors(rng):
    for arr in (np.array(rng.standard_normal()), np.zeros((0,), np.int8), np.zeros((3, 0, 2), np.uint64),
                np.array(True)):
        back = decode(encode(arr))
        assert same(arr, back)


def test_encode_chunks_hand_over_large_payloads_without_copy(rng):
    arr = rng.standard_normal(50000).astype(np.float32)
    blob = rng.bytes(40000)
    chunks = encode_chunks({"t": arr, "b": blob, "n": 1})
    assert b"".join(chunks) == encode({"t": arr, "b": blob, "n": 1})
    views = [c for c in chunks if isinstance(c, memoryview)]
    assert any(np.shares_memory(np.asarray(v), arr) for v in views)
    assert encode_chunks(5) == [encode(5)]


def test_decode_from_mmap_is_zero_copy_and_aligned(tmp_path, rng):
    arr = rng.standard_normal((300, 70))
    path = tmp_path / "t.lcb"
    path.write_bytes(encode(arr))
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    back = decode(mm)
    assert np.array_equal(back, arr) and not back.flags.writeable and back.flags.aligned
    base = np.frombuffer(mm, np.uint8).__array_interface__["data"][0]
    assert back.__array_interface__["data"][0] - base == 6 + 2 + 8 * arr.ndim
    del back


def test_decode_of_writable_buffer_is_a_live_read_only_view(rng):
    arr = rng.integers(1, 100, 8).astype(np.int32)
    data = bytearray(encode(arr))
    back = decode(data)
    data[-4:] = struct.pack("<i", -7)
    assert back[-1] == -7
    with pytest.raises(ValueError):
        back[0] = 1


def test_facade_exports_the_codec():
    assert hlx.encode is encode and hlx.decode is decode and hlx.pre_serialize is pre_serialize
    assert hlx.set_limits is set_limits and {"encode", "decode", "pre_serialize", "set_limits"} <= set(hlx.__all__)
    assert issubclass(hlx.CodecError, hlx.HLXError)


# --- decoder rejections -----------------------------------------------------------------------------
def _tensor(code: int, shape: tuple[int, ...], data: bytes) -> bytes:
    payload = bytes([code, len(shape)]) + struct.pack(f"<{len(shape)}Q", *shape) + data
    return bytes([0xC7, len(payload), codec.EXT_TENSOR]) + payload


BAD = [
    (b"\xcc\x05", "E_LC_PARSE", "non-shortest uint8"),
    (b"\xcd\x00\xff", "E_LC_PARSE", "non-shortest uint16"),
    (b"\xce\x00\x00\xff\xff", "E_LC_PARSE", "non-shortest uint32"),
    (b"\xcf" + struct.pack(">Q", 2**32 - 1), "E_LC_PARSE", "non-shortest uint64"),
    (b"\xd0\x05", "E_LC_PARSE", "non-shortest int8"),
    (b"\xd0\xe0", "E_LC_PARSE", "non-shortest int8"),
    (b"\xd1\xff\x80", "E_LC_PARSE", "non-shortest int16"),
    (b"\xd2\xff\xff\x80\x00", "E_LC_PARSE", "non-shortest int32"),
    (b"\xd3" + struct.pack(">q", 5), "E_LC_PARSE", "non-shortest int64"),
    (b"\xd9\x01a", "E_LC_PARSE", "non-shortest str8"),
    (b"\xda\x00\x20" + b"a" * 32, "E_LC_PARSE", "non-shortest str16"),
    (b"\xdb\x00\x00\x00\x01a", "E_LC_PARSE", "non-shortest str32"),
    (b"\xc5\x00\x01a", "E_LC_PARSE", "non-shortest bin16"),
    (b"\xc6\x00\x00\x00\x01a", "E_LC_PARSE", "non-shortest bin32"),
    (b"\xdc\x00\x01\x01", "E_LC_PARSE", "non-shortest array16"),
    (b"\xdd\x00\x00\x00\x01\x01", "E_LC_PARSE", "non-shortest array32"),
    (b"\xde\x00\x01\xa1a\x01", "E_LC_PARSE", "non-shortest map16"),
    (b"\xdf\x00\x00\x00\x01\xa1a\x01", "E_LC_PARSE", "non-shortest map32"),
    (b"\xc7\x04\x54" + b"\x00" * 4, "E_LC_PARSE", "non-shortest ext8"),
    (b"\xc8\x00\x03\x54\x20\x00\x07", "E_LC_PARSE", "non-shortest ext16"),
    (b"\xc9\x00\x00\x00\x03\x54\x20\x00\x07", "E_LC_PARSE", "non-shortest ext32"),
    (b"\xca\x3f\xc0\x00\x00", "E_LC_PARSE", "float32"),
    (b"\xc1", "E_LC_PARSE", "reserved"),
    (b"\xcb\x80" + bytes(7), "E_LC_PARSE", "-0.0"),
    (b"\xcb" + struct.pack(">d", float("nan")), "E_FLOAT_SPECIAL", "nan"),
    (b"\xcb" + struct.pack(">d", float("-inf")), "E_FLOAT_SPECIAL", "inf"),
    (b"\x82\xa1b\x01\xa1a\x02", "E_FIELD_ORDER", "sorts before"),
    (b"\x82\xa1a\x01\xa1a\x02", "E_FIELD_ORDER", "repeats"),
    (b"\x82\xa2ab\x01\xa1a\x02", "E_FIELD_ORDER", "sorts before"),
    (b"\x81\x01\x02", "E_TYPE", "not a str"),
    (b"\x81\xc4\x01a\x02", "E_TYPE", "not a str"),
    (b"\xd4\x07\x00", "E_TYPE", "unknown ext type 7"),
    (b"\xd4\xff\x00", "E_TYPE", "unknown ext type -1"),
    (b"\x01\x02", "E_LC_PARSE", "trailing"),
    (b"", "E_LC_PARSE", "truncated"),
    (b"\xa3ab", "E_LC_PARSE", "truncated"),
    (b"\xcd\x01", "E_LC_PARSE", "truncated"),
    (b"\xcb\x00", "E_LC_PARSE", "truncated"),
    (b"\xdd\xff\xff\xff\xff", "E_LC_PARSE", "truncated array"),
    (b"\x92\x01", "E_LC_PARSE", "truncated"),
    (b"\x81\xa1a", "E_LC_PARSE", "truncated"),
    (b"\x81", "E_LC_PARSE", "truncated"),
    (b"\xc7\x30\x48", "E_LC_PARSE", "truncated ext"),
    (b"\xa2\xc3\x28", "E_LC_PARSE", "invalid UTF-8"),
    (b"\xa3\xed\xa0\x80", "E_LC_PARSE", "invalid UTF-8"),
    (b"\xa3e\xcc\x81", "E_LC_PARSE", "not NFC"),
    (b"\x91" * 65 + b"\xc0", "E_DEPTH_EXCEEDED", "deeper than 64"),
    (b"\x81\xa1a" * 65 + b"\xc0", "E_DEPTH_EXCEEDED", "deeper than 64"),
    (_tensor(0x99, (1,), b"\x00"), "E_LC_PARSE", "dtype code"),
    (_tensor(0x32, (3,), bytes(8)), "E_LC_PARSE", "needs 12 data bytes"),
    (_tensor(0x20, (2, 2), bytes(5)), "E_LC_PARSE", "needs 4 data bytes"),
    (_tensor(0x00, (2,), b"\x01\x02"), "E_LC_PARSE", "bool"),
    (_tensor(0x33, (0, 2**62), b""), "E_LC_PARSE", "not representable"),
    (bytes([0xD5, codec.EXT_TENSOR, 0x20, 33]), "E_LC_PARSE", "ndim 33"),
    (bytes([0xD5, codec.EXT_TENSOR, 0x20, 1]), "E_LC_PARSE", "shorter than its 1-d header"),
    (bytes([0xD4, codec.EXT_TENSOR, 0x20]), "E_LC_PARSE", "shorter than its 2-byte header"),
    (bytes([0xC7, 36, codec.EXT_HANDLE]) + b"nope" + bytes(32), "E_LC_PARSE", "no known tag"),
    (bytes([0xC7, 32, codec.EXT_HANDLE]) + bytes(32), "E_LC_PARSE", "no known tag"),
]


@pytest.mark.parametrize("data,code,fragment", BAD, ids=[b[:12].hex() or "empty" for b, _, _ in BAD])
def test_decoder_refuses(data, code, fragment):
    err = refused(code, decode, data)
    assert fragment in err.message
    assert "at byte" in err.message


def test_decode_error_names_the_value_path():
    inner = encode({"a": [1, 2, 3]})
    data = inner.replace(b"\x03", b"\xcc\x03")
    err = refused("E_LC_PARSE", decode, data)
    assert err.path == "$.a[2]" and "at byte 6" in err.message


def test_depth_64_accepted_65_refused():
    deep: list = []
    for _ in range(63):
        deep = [deep]
    assert decode(encode(deep)) == deep
    assert refused("E_DEPTH_EXCEEDED", encode, [deep]).path.count("[0]") == 64
    refused("E_DEPTH_EXCEEDED", decode, b"\x91" + encode(deep))


def test_decode_refuses_non_buffers():
    refused("E_TYPE", decode, "text")
    refused("E_TYPE", decode, memoryview(bytes(8))[::2])
    assert decode(np.frombuffer(encode([1, 2]), np.uint8)) == [1, 2]


# --- encoder rejections -----------------------------------------------------------------------------
def test_encoder_refusals_name_the_path():
    assert refused("E_FLOAT_SPECIAL", encode, {"a": [1, {"b": float("nan")}]}).path == "$.a[1].b"
    refused("E_FLOAT_SPECIAL", encode, float("inf"))
    refused("E_FLOAT_SPECIAL", encode, np.float32("-inf"))
    assert refused("E_TYPE", encode, {"x": {3: 1}}).path == "$.x[3]"
    assert refused("E_TYPE", encode, {"a": 1, 2: 3}).path == "$[2]"
    assert refused("E_TYPE", encode, [0, object()]).path == "$[1]"
    refused("E_TYPE", encode, 2**64)
    refused("E_TYPE", encode, -(2**63) - 1)
    refused("E_TYPE", encode, {1.5})
    refused("E_TYPE", encode, 1j)
    assert refused("E_TYPE", encode, {"s": "e\u0301"}).path == "$.s"
    assert refused("E_TYPE", encode, {"e\u0301": 1}).path == "$.e\u0301"
    assert refused("E_TYPE", encode, {"a b": "e\u0301"}).path == "$['a b']"
    refused("E_TYPE", encode, "\ud800")
    refused("E_TYPE", encode, np.zeros(3, np.complex64))
    refused("E_TYPE", encode, np.array(["a"]))
    refused("E_TYPE", encode, np.zeros(2, object))
    refused("E_TYPE", encode, np.ma.masked_array([1.0, 2.0], mask=[False, True]))
    assert encode(np.eye(2).view(type("Sub", (np.ndarray,), {}))) == encode(np.eye(2))


def test_encoder_refuses_too_many_dimensions():
    try:
        arr = np.zeros((1,) * 33)
    except ValueError:
        pytest.skip("this NumPy caps ndim at 32")
    refused("E_TYPE", encode, arr)


def test_encoder_refuses_cycles_as_too_deep():
    loop: list = []
    loop.append(loop)
    refused("E_DEPTH_EXCEEDED", encode, loop)
    table: dict = {}
    table["self"] = table
    refused("E_DEPTH_EXCEEDED", encode, table)


def test_size_limit_on_encode_and_decode(rng):
    blob = rng.bytes(5000)
    data = encode(blob)
    previous = set_limits(max_bytes=1000)
    try:
        assert codec.max_bytes() == 1000
        refused("E_SIZE_EXCEEDED", encode, blob)
        refused("E_SIZE_EXCEEDED", encode, rng.standard_normal(20000))
        refused("E_SIZE_EXCEEDED", encode, list(range(1000)))
        refused("E_SIZE_EXCEEDED", decode, data)
        assert decode(encode(blob[:500])) == blob[:500]
    finally:
        set_limits(previous)
    assert decode(data) == blob
    set_limits(None)
    assert codec.max_bytes() == codec.DEFAULT_MAX_BYTES
    for bad in (0, -1, 1.5, True):
        refused("E_TYPE", set_limits, bad)


# --- pre_serialize ------------------------------------------------------------------------------------
def test_pre_serialize_normalises():
    h = Handle("&h_int_" + "1" * 64)
    arr = np.array([np.nan, -0.0], np.float32)
    out = pre_serialize({"e\u0301": ("a\r\nb", -0.0, np.float32(2.5), np.int16(-3), np.bool_(False)),
                         "x": [h, b"\x00", arr, None, "A\u030a"]})
    assert out == {"\u00e9": ["a\nb", 0.0, 2.5, -3, False], "x": [h, b"\x00", arr, None, "\u00c5"]}
    assert str(out["\u00e9"][1]) == "0.0" and type(out["\u00e9"][3]) is int
    assert out["x"][2] is arr and type(out["x"][0]) is Handle
    assert decode(encode(out))["x"][4] == "\u00c5"


def test_pre_serialize_refusals():
    assert refused("E_FLOAT_SPECIAL", pre_serialize, {"a": [0, float("nan")]}).path == "$.a[1]"
    refused("E_FLOAT_SPECIAL", pre_serialize, np.float64("inf"))
    assert refused("E_TYPE", pre_serialize, {"a": {2: 1}}).path == "$.a[2]"
    refused("E_TYPE", pre_serialize, {1, 2})
    assert refused("E_FIELD_ORDER", pre_serialize, {"\u00e9": 1, "e\u0301": 2}).path is not None
    loop: list = []
    loop.append(loop)
    refused("E_DEPTH_EXCEEDED", pre_serialize, loop)


@SETTINGS
@given(values, st.randoms(use_true_random=False))
def test_pre_serialize_is_idempotent_and_order_free(v, rnd):
    try:
        once = encode(pre_serialize(v))
    except CodecError as err:  # keys like "\r\n" and "\n" collide once CRLF becomes LF
        assert err.code == "E_FIELD_ORDER"
        return
    assert encode(pre_serialize(shuffled(v, rnd))) == once
    assert encode(pre_serialize(decode(once))) == once
    if "\\r" not in repr(v):  # no CR anywhere: normalising changed nothing
        assert once == encode(v)


def test_reencode_of_every_marker_byte_alone():
    """Each single byte is either a complete canonical value or refused with a CodecError."""
    for b in range(256):
        data = bytes([b])
        try:
            value = decode(data)
        except CodecError:
            continue
        assert encode(value) == data


@pytest.mark.parametrize("dtype", ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?"])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (1, 2, 3, 4), (5000,), (3, 0, 2)])
def test_top_level_tensor_encodes_as_inside_a_container(dtype, shape, rng):
    """A top-level tensor takes the cached-prefix path; its bytes must equal the general encoder's, which a
    tensor inside a list goes through (the list header is the only difference), on every call."""
    from hlx_core.codec.encoder import _TENSOR_PREFIXES
    a = np.asarray(rng.standard_normal(shape) * 100).astype(dtype)
    for _ in range(2):  # the second call hits the prefix cache
        alone = hlx.encode(a)
        assert hlx.encode([a]) == b"\x91" + alone
        assert np.array_equal(hlx.decode(alone), a) and hlx.decode(alone).dtype == a.dtype
    assert dtype == "?" or (np.dtype(dtype), shape) in _TENSOR_PREFIXES
    swapped = a.astype(np.dtype(dtype).newbyteorder(">"))
    assert hlx.encode(swapped) == alone  # big-endian input: the general path, the same canonical bytes
    if a.ndim == 2 and a.size:
        assert hlx.encode(np.asfortranarray(a)) == alone


def test_top_level_tensor_respects_the_size_limit(rng):
    a = rng.standard_normal(1000).astype(np.float32)
    old = hlx.set_limits(max_bytes=1000)
    try:
        with pytest.raises(hlx.CodecError) as err:
            hlx.encode(a)
        assert err.value.code == "E_SIZE_EXCEEDED"
    finally:
        hlx.set_limits(max_bytes=old)


def test_a_huge_view_is_refused_before_it_is_copied():
    """A broadcast view costs no memory until it is made contiguous: the size limit is checked first."""
    import tracemalloc
    view = np.broadcast_to(np.float32(1.5), (1 << 28,))  # 1 GiB as a tensor, 4 bytes of memory
    old = hlx.set_limits(max_bytes=1 << 20)
    tracemalloc.start()
    try:
        for encode in (hlx.encode, hlx.collapse, lambda v: hlx.encode({"x": [v]})):
            with pytest.raises(hlx.CodecError) as err:
                encode(view)
            assert err.value.code == "E_SIZE_EXCEEDED"
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()
        hlx.set_limits(max_bytes=old)
    with pytest.raises(hlx.CodecError) as err:  # 64 GiB under the default limit: refused, not a MemoryError
        hlx.encode(np.broadcast_to(np.float64(0.0), (1 << 33,)))
    assert err.value.code == "E_SIZE_EXCEEDED"
