"""Shared fixtures: every test gets its own HLX_HOME so the user's cache is never touched, and Vulkan
validation layers are on for the whole suite, which must end with no validation warning or error."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

os.environ.setdefault("HLX_VULKAN_VALIDATION", "1")
# GPU backends fill outputs with 0xFF before every run instead of zeros, library kernels' outputs too, so
# an unwritten element shows; tests/test_cleared_outputs.py opens sessions of its own without it.
os.environ.setdefault("HLX_POISON_OUTPUTS", "1")


@pytest.fixture(scope="session", autouse=True)
def _no_validation_messages():
    """Every Vulkan context of the run (parity tests through hlx.run included) logs to hlx.vulkan; the
    counts of warning and error messages must still be zero at the end."""
    yield
    vk = sys.modules.get("hlx_vulkan_raw")
    if vk is None or os.environ.get("HLX_VULKAN_VALIDATION") != "1":
        return
    counts = vk.validation_counts()
    bad = {k: counts[k] for k in ("warning", "error") if counts.get(k)}
    assert not bad, f"validation layers reported {bad}: " + "\n".join(vk.validation_messages())


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("hlx_home")
    monkeypatch.setenv("HLX_HOME", str(home))
    yield home


@pytest.fixture
def rng():
    """A fresh, unseeded generator: inputs differ on every run (the seed is printed on failure)."""
    seed = int(np.random.SeedSequence().entropy % (2**32))
    print(f"rng seed {seed}")
    return np.random.default_rng(seed)
