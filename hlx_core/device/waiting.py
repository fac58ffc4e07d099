"""How long a GPU backend waits for the device: first polling, then blocking, then giving up.

A blocking wait puts the thread to sleep, and the wake-up costs more than a short run takes on a GPU (on
the H200: 32.8 us for vkWaitForFences against 11.3 us for a poll loop, for an empty submit), so GPU
backends poll for 250 us by default. A CPU device (lavapipe) runs the work on the host's own cores, where
a polling thread would take one from it: 0 there. A wait that outlives the timeout is E_TIMEOUT.
"""
from __future__ import annotations

from hlx_core.settings import env_number

DEFAULT_SPIN_US = 250.0
DEFAULT_TIMEOUT_S = 120.0


def spin_ns(setting: str, cpu_device: bool) -> int:
    """Nanoseconds to poll before blocking: the ``setting`` variable (microseconds), else the default."""
    return int(env_number(setting, 0.0 if cpu_device else DEFAULT_SPIN_US) * 1e3)


def timeout_s(setting: str) -> float:
    """Seconds a wait may take before E_TIMEOUT: the ``setting`` variable, else 120."""
    return env_number(setting, DEFAULT_TIMEOUT_S)
