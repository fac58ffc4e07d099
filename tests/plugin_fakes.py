"""Test support for the plugin system and the runtime: backends with chosen devices, plugins on disk.

``FakeBackend`` only fakes what the machine cannot show (device kinds, availability); its sessions run
plans on the real CPU reference backend, so results are still computed and checked.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hlx_core import registry, runtime
from hlx_core.backend import Availability, Backend, DeviceInfo, Execution, Session
from hlx_core.hookspecs import hookimpl
from hlx_core.plan import Plan


def cpu_backend() -> Backend:
    """The built-in CPU reference backend, straight from its plugin module."""
    from hlx_cpu.plugin import hlx_register_backends
    (backend,) = [b for b in hlx_register_backends() if b.name == "cpu"]
    return backend


class FakeSession(Session):
    def __init__(self, owner: "FakeBackend", device: DeviceInfo) -> None:
        self.backend = owner.name
        self.device = device
        self.owner = owner
        self.closed = False
        self._cpu = cpu_backend().open(None)

    def _execute(self, plan: Plan) -> Execution:
        self.owner.executions += 1
        return self._cpu.execute(plan)

    def close(self) -> None:
        self.closed = True
        self._cpu.close()


class FakeBackend(Backend):
    """A backend whose devices are ``(name, kind)`` pairs; counts probes, opens and executions."""

    def __init__(self, name: str, devices: tuple[tuple[str, str], ...] = (("Fake GPU", "gpu-discrete"),),
                 available: bool = True, reason: str | None = None) -> None:
        self.name = name
        self.devices = tuple(DeviceInfo(i, n, k) for i, (n, k) in enumerate(devices))  # type: ignore[arg-type]
        self.available, self.reason = available, reason
        self.probes = self.executions = 0
        self.sessions: list[FakeSession] = []

    def probe(self) -> Availability:
        self.probes += 1
        return Availability(self.available, self.reason, self.devices if self.available else (), "fake 1.0")

    def open(self, device: int | str | None = None) -> Session:
        index = 0 if device is None else int(device)
        session = FakeSession(self, self.devices[index])
        self.sessions.append(session)
        return session


class FakePlugin:
    """A plugin object, as ``register_plugin`` takes it."""

    def __init__(self, *backends: Backend) -> None:
        self.backends = list(backends)

    @hookimpl
    def hlx_register_backends(self) -> list[Backend]:
        return self.backends


@pytest.fixture
def plugins(monkeypatch):
    """Start from a given allowlist (default: no entry-point plugins); restore normal loading after."""
    def use(allow: str | None = "") -> None:
        if allow is None:
            monkeypatch.delenv("HLX_PLUGINS", raising=False)
        else:
            monkeypatch.setenv("HLX_PLUGINS", allow)
        runtime.close_sessions()
        registry.reset()

    use("")
    yield use
    runtime.close_sessions()
    registry.reset()


def write_distribution(folder: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """A minimal installed distribution in ``folder`` (put it on sys.path): its modules, and a dist-info
    declaring ``entry_points`` in the group hlx.backends."""
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
    info = folder / f"{dist.replace('-', '_')}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[hlx.backends]\n{lines}")
