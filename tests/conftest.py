"""Shared fixtures: every test gets its own HLX_HOME so the user's cache is never touched."""
from __future__ import annotations

import numpy as np
import pytest


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
