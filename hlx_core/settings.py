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


_UNITS = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20,
          "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30, "T": 1 << 40, "TB": 1 << 40, "TIB": 1 << 40}


def parse_bytes(text: str | int, what: str) -> int:
    """A size: a non-negative integer of bytes, or a number with a unit K, M, G or T (binary: 1G is 2**30
    bytes; KB/KiB and the like are the same units). E_CONFIG naming ``what`` when it does not parse."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text >= 0:
            return text
    elif isinstance(text, str):
        raw = text.strip().upper().replace(" ", "")
        number = raw.rstrip("BKMGTI")
        unit = raw[len(number):]
        try:
            value = float(number) * _UNITS[unit]
        except (KeyError, ValueError):
            value = -1.0
        if 0 <= value < float("inf"):
            return int(value)
    raise HLXError("E_CONFIG", f"{what}={text!r}: expected a size such as 1000000, 512M or 10G")


def env_bytes(name: str, default: int) -> int:
    """A size from the environment (``parse_bytes``); unset or empty gives ``default``."""
    raw = os.environ.get(name, "").strip()
    return parse_bytes(raw, name) if raw else default


def hlx_home() -> Path:
    """Where HLX keeps its files (store objects, pipeline caches): ``$HLX_HOME``, else the user cache folder
    of the platform (``platformdirs``: ``$XDG_CACHE_HOME/hlx``, by default ``~/.cache/hlx``, on Linux).
    Read from the environment each call so tests and users can redirect it."""
    environ = os.environ
    return _home_for(environ.get("HLX_HOME"), environ.get("HOME"), environ.get("XDG_CACHE_HOME"))


_HOME_VARIABLES = (b"HLX_HOME", b"HOME", b"XDG_CACHE_HOME")


def env_key(names: tuple[bytes, ...]) -> tuple[object, ...]:
    """The variables ``names`` (encoded) as the environment holds them now, as a key to compare (a cache of
    anything made from them keys on it; never parsed; None for one unset). Every ``hlx.run`` asks, and
    ``os.environ.get`` encodes and decodes each name and value, so on POSIX the encoded mapping
    ``os.environ`` keeps (and updates on every change) is read directly."""
    raw = getattr(os.environ, "_data", None)
    if type(raw) is dict and os.name == "posix":
        return tuple(map(raw.get, names))
    environ = os.environ
    return tuple([environ.get(name.decode()) for name in names])


def env_text(value: object) -> str:
    """A value of ``env_key`` as ``os.environ`` spells it, stripped ("" for one unset)."""
    if value is None:
        return ""
    return (os.fsdecode(value) if isinstance(value, bytes) else str(value)).strip()


def home_env() -> tuple[object, ...]:
    """The variables ``hlx_home`` depends on, as a key to compare: ``env_key(_HOME_VARIABLES)``, spelled
    out (every ``hlx.run`` asks, and the loop costs as much as the lookups)."""
    raw = getattr(os.environ, "_data", None)
    if type(raw) is dict and os.name == "posix":
        return raw.get(b"HLX_HOME"), raw.get(b"HOME"), raw.get(b"XDG_CACHE_HOME")
    return env_key(_HOME_VARIABLES)


@lru_cache(maxsize=16)
def _home_for(env: str | None, home: str | None, xdg_cache: str | None) -> Path:
    """Path building costs more than the rest of a warm hlx.run's store lookup: do it once per value.
    ``home`` and ``xdg_cache`` are only part of the cache key: platformdirs reads them itself."""
    if env:
        return Path(env).expanduser()
    import platformdirs  # here: with HLX_HOME set it is never needed (~3 ms to import)

    return Path(platformdirs.user_cache_dir("hlx", appauthor=False))
