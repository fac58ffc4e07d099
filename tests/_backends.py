"""Helpers the kernel tests share: a backend or a skip, and fresh random float32 inputs."""
from __future__ import annotations

import numpy as np
import pytest

from hlx_core import registry


def backend_or_skip(name: str) -> str:
    """``name`` when that backend is installed and available here, else the test is skipped."""
    entry = registry.backend_entries().get(name)
    if entry is None or not entry.availability().available:
        pytest.skip(f"{name} unavailable")
    return name


def f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Standard normal float32 values of ``shape``: never zeros, never values that hide an unwritten output."""
    return rng.standard_normal(shape).astype(np.float32)
