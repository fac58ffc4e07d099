"""How long a GPU backend waits for the device: first polling, then blocking, then giving up.

A blocking wait puts the thread to sleep, and the wake-up costs more than a short run takes on a GPU (on
the H200: 32.8 us for vkWaitForFences against 11.3 us for a poll loop, for an empty submit), so GPU
backends poll for 250 us by default. Longer runs lose more to sleeping: a 4096^3 GEMM's ``execute`` spent
0.83 ms beyond the kernel's 3.76 ms with a blocking wait after the 250 us poll, and 0.39 ms when it polled
throughout (H200, 2026-12-01). So a wait polls for as long as the last wait took, times 1.5, up to a cap
(``SpinBudget``): polling stops the moment the device signals, so a longer budget never delays a run, it
only keeps one host thread busy while the GPU works (as CUDA's default scheduling does). A CPU device
(lavapipe) runs the work on the host's own cores, where a polling thread would take one from it: 0 there.
A wait that outlives the timeout is E_TIMEOUT.
"""
from __future__ import annotations

from hlx_core.settings import env_number

DEFAULT_SPIN_US = 250.0
DEFAULT_SPIN_MAX_US = 20000.0
DEFAULT_TIMEOUT_S = 120.0


def spin_ns(setting: str, cpu_device: bool) -> int:
    """Nanoseconds to poll before blocking: the ``setting`` variable (microseconds), else the default."""
    return int(env_number(setting, 0.0 if cpu_device else DEFAULT_SPIN_US) * 1e3)


def timeout_s(setting: str) -> float:
    """Seconds a wait may take before E_TIMEOUT: the ``setting`` variable, else 120."""
    return env_number(setting, DEFAULT_TIMEOUT_S)


class SpinBudget:
    """How long the next wait polls before it blocks: ``floor_ns`` at least, else 1.5x the last wait (submit to
    signal), at most ``cap_ns``. One per queue: the waits it learns from are that queue's."""

    __slots__ = ("floor_ns", "cap_ns", "last_ns")

    def __init__(self, floor_ns: int, cap_ns: int) -> None:
        self.floor_ns = floor_ns
        self.cap_ns = max(cap_ns, floor_ns)
        self.last_ns = 0

    def budget_ns(self) -> int:
        return min(self.cap_ns, max(self.floor_ns, self.last_ns + (self.last_ns >> 1)))

    def observe(self, waited_ns: int) -> None:
        """Record how long a wait took from its submit until the device signalled."""
        self.last_ns = waited_ns


def spin_budget(setting: str, cap_setting: str, cpu_device: bool) -> SpinBudget:
    """The ``SpinBudget`` of a queue: ``setting`` (microseconds, default 250; 0 on a CPU device) is the floor,
    ``cap_setting`` (default 20000; 0 on a CPU device) the most a wait polls."""
    floor = spin_ns(setting, cpu_device)
    cap = int(env_number(cap_setting, 0.0 if cpu_device else DEFAULT_SPIN_MAX_US) * 1e3)
    return SpinBudget(floor, cap)
