"""What the environment configures: HLX_* variables read the same way everywhere, and HLX's home folder.

A switch or a number that does not parse is an ``HLXError`` with code E_CONFIG naming the variable and what
it accepts, instead of whatever exception the parse happened to raise deep inside a backend.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from hlx_core.errors import HLXError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def env_flag(name: str, default: bool) -> bool:
    """A switch: 1/true/yes/on or 0/false/no/off (any case); unset or empty gives ``default``."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise HLXError("E_CONFIG", f"{name}={os.environ[name]!r}: expected one of {', '.join(_TRUE + _FALSE)}")


def env_number(name: str, default: float | None, *, minimum: float = 0.0) -> float | None:
    """A number >= ``minimum``; unset or empty gives ``default``."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum or value == float("inf"):
        raise HLXError("E_CONFIG", f"{name}={os.environ[name]!r}: expected a number >= {minimum:g}")
    return value


def hlx_home() -> Path:
    """Where HLX keeps its files (store objects, pipeline caches): ``$HLX_HOME``, default ``~/.cache/hlx``.
    Read from the environment each call so tests and users can redirect it."""
    return _home_for(os.environ.get("HLX_HOME"), os.environ.get("HOME"))


@lru_cache(maxsize=16)
def _home_for(env: str | None, home: str | None) -> Path:
    """Path building costs more than the rest of a warm hlx.run's store lookup: do it once per value.
    ``home`` is only part of the cache key: ``Path.home()`` reads ``$HOME`` itself."""
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hlx"
