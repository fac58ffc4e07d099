"""ml_dtypes (bfloat16) loads only when a bfloat16 is met: ``import hlx`` stays fast, and every way a
bfloat16 can reach HLX in a fresh process still works (a stored tensor decoded, a contract's output dtype,
an input file's dtype name, ``hlx.out``)."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def _fresh(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_hlx_does_not_load_ml_dtypes():
    assert _fresh("import sys, hlx; import hlx.kernels; print('ml_dtypes' in sys.modules)") == "False"


def test_a_bfloat16_tensor_decodes_in_a_process_that_never_imported_ml_dtypes():
    import ml_dtypes
    import numpy as np

    from hlx_core.codec import encode

    x = np.arange(-3, 5, dtype=np.float32).astype(ml_dtypes.bfloat16).reshape(2, 4)
    blob = encode(x).hex()
    out = _fresh(f"""
        import sys
        from hlx_core.codec import decode
        assert 'ml_dtypes' not in sys.modules
        y = decode(bytes.fromhex({blob!r}))
        print(y.dtype, y.shape, y.astype('float32').ravel().tolist())
    """)
    assert out == "bfloat16 (2, 4) [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]"


def test_bfloat16_names_resolve_in_a_fresh_process():
    out = _fresh("""
        import sys
        import hlx
        from hlx_core.contracts.schemas import _output_spec as output_spec
        assert 'ml_dtypes' not in sys.modules
        print(output_spec({"dtype": "bfloat16", "shape": [3]}, "o"), hlx.out("bfloat16", 3).dtype)
    """)
    assert out.endswith("bfloat16") and "'bfloat16'" in out
