"""Where HLX keeps its files: ``$HLX_HOME``, default ``~/.cache/hlx`` (store objects, pipeline caches)."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


def hlx_home() -> Path:
    """The HLX home folder, read from the environment each call so tests and users can redirect it."""
    return _home_for(os.environ.get("HLX_HOME"), os.environ.get("HOME"))


@lru_cache(maxsize=16)
def _home_for(env: str | None, home: str | None) -> Path:
    """Path building costs more than the rest of a warm hlx.run's store lookup: do it once per value.
    ``home`` is only part of the cache key: ``Path.home()`` reads ``$HOME`` itself."""
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hlx"
