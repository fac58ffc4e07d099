"""The conformance kit for backend authors: HLX's parity suite, shipped in the wheel.

``pytest --hlx-backend NAME`` (the ``pytest11`` plugin ``hlx_core.conformance.plugin``) or
``hlx conformance NAME`` runs every library kernel and pipeline on backend NAME against the CPU reference
(``test_parity.py`` here, on the cases of ``cases.py``): outputs of exact kernels bit for bit, the others
within the tolerance their kernels declare for the output dtype, a case the backend's device cannot run
(E_UNSUPPORTED, E_LIMIT_EXCEEDED) skipped with the reason. Nothing of a source checkout of HLX is needed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hlx_core.errors import HLXError

PLUGIN = "hlx_core.conformance.plugin"  # also the name of its pytest11 entry point
TESTS = Path(__file__).with_name("test_parity.py")


def run(backends: Sequence[str], pytest_args: Sequence[str] = ()) -> int:
    """Run the kit on ``backends`` in this process; pytest's exit status (0 only when every test passed or
    was skipped). ``pytest_args`` go to pytest as they are (``-k gemm``, ``-x``, ``-v``)."""
    try:
        import pytest
    except ImportError:
        raise HLXError("E_DEPENDENCY", "the conformance kit runs on pytest, which is not installed: "
                                       "pip install 'hlx[conformance]'") from None
    # HLX is imported already (the command line runs in this process): pytest cannot rewrite its asserts.
    quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    args = [str(TESTS), "-p", PLUGIN, "-p", "no:cacheprovider", *quiet, *(f"--hlx-backend={b}" for b in backends),
            *pytest_args]
    return int(pytest.main(args))
