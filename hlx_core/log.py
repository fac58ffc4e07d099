"""HLX's logging, configured in one place: ``HLX_LOG`` sets up the ``hlx`` logger tree on first use.

``HLX_LOG=debug`` (or info, warning, error) prints HLX's records to stderr at that level: which backend and
device a run got and why, memo and session cache hits, the traceback behind an E_PLUGIN. Unset or empty,
HLX adds no handler and leaves logging to the application, as a library should.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

from hlx_core.errors import HLXError

ENV = "HLX_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FORMAT = "hlx %(levelname)s %(name)s: %(message)s"

_lock = threading.Lock()
_configured: list[logging.Handler] = []  # the handler HLX_LOG added, once


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (under ``hlx``), with ``HLX_LOG`` applied first."""
    setup()
    return logging.getLogger(name)


def setup() -> None:
    """Apply ``HLX_LOG`` once per process; E_CONFIG for a level it does not name."""
    if _configured:
        return
    raw = os.environ.get(ENV, "").strip().lower()
    if not raw:
        return
    if raw not in LEVELS:
        raise HLXError("E_CONFIG", f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(LEVELS)}")
    with _lock:
        if _configured:
            return
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(FORMAT))
        root = logging.getLogger("hlx")
        root.addHandler(handler)
        root.setLevel(LEVELS[raw])
        root.propagate = False  # HLX_LOG asked for HLX's lines once, not again through the application's root
        _configured.append(handler)
