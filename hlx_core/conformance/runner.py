"""``hlx conformance NAME``: the conformance kit run by pytest in this process."""
from __future__ import annotations

from typing import Sequence

from hlx_core.conformance import PLUGIN, TESTS
from hlx_core.errors import HLXError


def run(backends: Sequence[str], pytest_args: Sequence[str] = ()) -> int:
    """Run the kit on ``backends``; pytest's exit status (0 only when every test passed or was skipped).
    ``pytest_args`` go to pytest as they are (``-k gemm``, ``-x``, ``-v``)."""
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
