"""The installed distribution's version, read from its metadata so that it is stated once (pyproject.toml)."""
from __future__ import annotations

from importlib import metadata


def package_version() -> str:
    """The version of the installed ``hlx`` distribution; "unknown" when run from a tree never installed."""
    try:
        return metadata.version("hlx")
    except metadata.PackageNotFoundError:
        return "unknown"
