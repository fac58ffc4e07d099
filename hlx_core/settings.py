"""Reading HLX_* environment variables the same way everywhere.

A switch or a number that does not parse is an ``HLXError`` with code E_CONFIG naming the variable and what
it accepts, instead of whatever exception the parse happened to raise deep inside a backend.
"""
from __future__ import annotations

import os

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
