"""The host CPU's instruction set, as the code that runs kernels on a CPU sees it.

NumPy's loops and a JIT such as lavapipe's (LLVM) pick their code paths by the SIMD extensions of the CPU
they run on, and two paths may round differently. So a CPU device's class (``DeviceInfo.device_class``)
names the architecture and those extensions: a result memoized on an AVX-512 host is not reused on an
AVX2 one.
"""
from __future__ import annotations

import importlib
import platform
from functools import lru_cache


def _numpy_cpu_features() -> dict[str, bool]:
    """The extensions NumPy detected at run time (``numpy.show_runtime`` lists the same)."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):  # NumPy 2, NumPy 1
        try:
            return dict(importlib.import_module(module).__cpu_features__)
        except (ImportError, AttributeError):
            continue
    return {}


@lru_cache(maxsize=1)
def cpu_isa() -> str:
    """``"<architecture>: <extension> <extension> …"``, the extensions sorted (e.g. ``"x86_64: AVX AVX2 …"``)."""
    features = sorted(name for name, present in _numpy_cpu_features().items() if present)
    return f"{platform.machine() or 'unknown'}: {' '.join(features)}".rstrip(": ")
