"""The wait's polling budget: the floor, 1.5x the last wait, the cap; none on CPU devices."""
from __future__ import annotations

from hlx_core.device.waiting import SpinBudget, spin_budget


def test_budget_follows_the_last_wait_within_floor_and_cap():
    spin = SpinBudget(floor_ns=250_000, cap_ns=20_000_000)
    assert spin.budget_ns() == 250_000  # nothing waited yet: the floor
    spin.observe(100_000)
    assert spin.budget_ns() == 250_000  # 1.5x a short wait is under the floor
    spin.observe(4_000_000)
    assert spin.budget_ns() == 6_000_000
    spin.observe(60_000_000)
    assert spin.budget_ns() == 20_000_000  # capped
    spin.observe(1_000)
    assert spin.budget_ns() == 250_000  # a short run after a long one polls the floor again


def test_settings_and_cpu_devices(monkeypatch):
    monkeypatch.setenv("HLX_X_SPIN_US", "100")
    monkeypatch.setenv("HLX_X_SPIN_MAX_US", "5000")
    spin = spin_budget("HLX_X_SPIN_US", "HLX_X_SPIN_MAX_US", cpu_device=False)
    assert (spin.floor_ns, spin.cap_ns) == (100_000, 5_000_000)
    monkeypatch.delenv("HLX_X_SPIN_US")
    monkeypatch.delenv("HLX_X_SPIN_MAX_US")
    gpu = spin_budget("HLX_X_SPIN_US", "HLX_X_SPIN_MAX_US", cpu_device=False)
    assert (gpu.floor_ns, gpu.cap_ns) == (250_000, 20_000_000)
    cpu = spin_budget("HLX_X_SPIN_US", "HLX_X_SPIN_MAX_US", cpu_device=True)
    cpu.observe(10_000_000)
    assert cpu.budget_ns() == 0  # lavapipe's work runs on the host's cores: never poll there
    monkeypatch.setenv("HLX_X_SPIN_MAX_US", "10")  # a cap under the floor polls the floor
    assert spin_budget("HLX_X_SPIN_US", "HLX_X_SPIN_MAX_US", cpu_device=False).budget_ns() == 250_000
