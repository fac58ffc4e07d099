"""The installed distribution's version, read from its metadata so that it is stated once (pyproject.toml)."""
from __future__ import annotations

from hlx_core.distributions import version


def package_version() -> str:
    """The version of the installed ``hlx`` distribution; "unknown" when run from a tree never installed."""
    return version("hlx") or "unknown"
