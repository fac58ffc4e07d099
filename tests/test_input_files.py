"""16-bit float inputs of ``hlx run``: float16 and bfloat16 arrays saved with ``np.save`` (bfloat16 as the raw
2-byte items NumPy writes for it) and spelled inline as ``$tensor``, read bit for bit and run through a
half-precision GEMM on the CPU backend against NumPy float64."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import hlx
from hlx import kernels as K
from hlx_core.cli import main
from hlx_core.errors import HLXError
from hlx_core.input_files import load_contract
from hlx_core.kernels import tolerances as tol
from hlx_core.plan import OutputRef

BF16 = np.dtype(ml_dtypes.bfloat16)


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).view(np.uint16).tobytes()


def _json_gemm(a: np.ndarray, b: np.ndarray, spell_a: dict, spell_b: dict) -> dict:
    """The 901 ``hlx.kernels.gemm(a, b)`` builds, in JSON, its inputs spelled ``spell_a`` and ``spell_b``."""
    body = dict(K.gemm(a, b)["901"])
    body["bindings"] = [spell_a, spell_b, body["bindings"][2]]
    body["push_constants"] = {"$bytes": base64.b64encode(body["push_constants"]).decode()}
    body["shader_handle"] = str(body["shader_handle"])
    return {"901": body}


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), BF16], ids=["float16", "bfloat16"])
def test_npy_16_bit_inputs_run_as_saved(dtype, tmp_path, capsys, rng):
    m, k, n = 13, 29, 7
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", np.asfortranarray(b))
    named = {"dtype": "bfloat16"} if dtype == BF16 else {}
    contract = _json_gemm(a, b, {"$npy": "a.npy", **named}, {"$npy": "b.npy", **named})
    (tmp_path / "gemm.json").write_text(json.dumps(contract))

    store = hlx.MemoryStore()
    loaded = load_contract(str(tmp_path / "gemm.json"), store)
    got_a, got_b = (hlx.resolve(h, store=store) for h in loaded["901"]["bindings"][:2])
    assert got_a.dtype == dtype and _bits(got_a) == _bits(a) and _bits(got_b) == _bits(b)
    assert loaded["901"]["bindings"][:2] == [hlx.collapse(a), hlx.collapse(b)]

    capsys.readouterr()  # what came before (the seed)
    assert main(["run", str(tmp_path / "gemm.json"), "--backend", "cpu", "--json", "--print"]) == 0
    (output,) = json.loads(capsys.readouterr().out)["outputs"]
    got = np.asarray(output["array"], np.float64)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    (bound,) = tol.gemm_half([a64, b64], [np.zeros_like(a64), np.zeros_like(b64)], {},
                             [OutputRef(np.dtype(np.float32), (m, n))])
    assert got.shape == (m, n) and (np.abs(got - a64 @ b64) <= bound).all()


def test_tensor_spelling_takes_bfloat16(tmp_path, rng):
    x = rng.standard_normal(9).astype(BF16)
    values = [float(v) for v in x.astype(np.float32)]  # exact: every bfloat16 is a float32
    (tmp_path / "c.json").write_text(json.dumps({"x": {"$tensor": values, "dtype": "bfloat16"}}))
    store = hlx.MemoryStore()
    handle = load_contract(str(tmp_path / "c.json"), store)["x"]
    assert handle == hlx.collapse(x) and _bits(hlx.resolve(handle, store=store)) == _bits(x)


@pytest.mark.parametrize(("saved", "spelling", "words"), [
    (lambda rng: rng.standard_normal(4).astype(BF16), {}, 'add "dtype": "bfloat16"'),  # raw items, type unsaid
    (lambda rng: rng.standard_normal(4).astype(np.float16), {"dtype": "bfloat16"}, "holds float16, not bfloat16"),
    (lambda rng: rng.standard_normal(4).astype(np.float32), {"dtype": "float16"}, "holds float32, not float16"),
    (lambda rng: rng.standard_normal(4).astype(BF16), {"dtype": "bfloat17"}, "is not one LC-B holds"),
])
def test_npy_dtype_mismatches_are_refused(saved, spelling, words, tmp_path, rng):
    np.save(tmp_path / "x.npy", saved(rng))
    (tmp_path / "c.json").write_text(json.dumps({"x": {"$npy": "x.npy", **spelling}}))
    with pytest.raises(HLXError) as err:
        load_contract(str(tmp_path / "c.json"), hlx.MemoryStore())
    assert err.value.code == "E_CONTRACT_FIELD_TYPE" and err.value.path == "x" and words in err.value.message


def test_the_dtype_of_a_file_may_be_named(tmp_path, rng):
    x = rng.standard_normal((3, 5)).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "c.json").write_text(json.dumps({"x": {"$npy": "x.npy", "dtype": "float16"}}))
    assert load_contract(str(Path(tmp_path / "c.json")), hlx.MemoryStore())["x"] == hlx.collapse(x)
