"""The conformance kit for backend authors: HLX's parity suite, shipped in the wheel.

``pytest --hlx-backend NAME`` (the ``pytest11`` plugin ``hlx_core.conformance.plugin``) or
``hlx conformance NAME`` (``runner.run``) runs every library kernel and pipeline on backend NAME against
the CPU reference (``test_parity.py`` here, on the cases of ``cases.py``): outputs of exact kernels bit for
bit, the others within the tolerance their kernels declare for the output dtype, a case the backend's
device cannot run (E_UNSUPPORTED, E_LIMIT_EXCEEDED) skipped with the reason. Nothing of a source checkout
of HLX is needed.

Every pytest run where HLX is installed imports this package (for the plugin), before coverage tools
start: it imports nothing of HLX.
"""
from __future__ import annotations

from pathlib import Path

PLUGIN = "hlx_core.conformance.plugin"  # also the name of its pytest11 entry point
TESTS = Path(__file__).with_name("test_parity.py")
