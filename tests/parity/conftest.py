"""Parity fixtures: every test taking ``backend`` runs once per backend under test.

The backends are those ``hlx.backends()`` reports available here, or exactly the comma-separated names in
``HLX_TEST_BACKENDS`` when it is set (so a CI job or a third-party plugin's test can restrict or extend
the list; a named backend that is not available then fails rather than being skipped).
"""
from __future__ import annotations

import os

import hlx


def backends_under_test() -> list[str]:
    wanted = os.environ.get("HLX_TEST_BACKENDS", "").strip()
    if wanted:
        return [name.strip() for name in wanted.split(",") if name.strip()]
    return hlx.backends()


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends_under_test())
