"""Where HLX keeps its files: ``$HLX_HOME``, default ``~/.cache/hlx`` (store objects, pipeline caches)."""
from __future__ import annotations

import os
from pathlib import Path


def hlx_home() -> Path:
    """The HLX home folder, read from the environment each call so tests and users can redirect it."""
    env = os.environ.get("HLX_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hlx"
