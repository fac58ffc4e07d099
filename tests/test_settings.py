"""HLX_* switches and numbers parse one way everywhere; a bad value names its variable (E_CONFIG)."""
from __future__ import annotations

import pytest

import hlx
from hlx_core.settings import env_flag, env_number


@pytest.mark.parametrize("raw, want", [("1", True), ("on", True), ("YES", True), (" true ", True),
                                       ("0", False), ("off", False), ("No", False), ("", None)])
def test_flags(monkeypatch, raw: str, want: bool | None) -> None:
    monkeypatch.setenv("HLX_TEST_FLAG", raw)
    assert env_flag("HLX_TEST_FLAG", True) is (True if want is None else want)
    assert env_flag("HLX_TEST_FLAG", False) is (False if want is None else want)


def test_numbers(monkeypatch) -> None:
    monkeypatch.delenv("HLX_TEST_NUMBER", raising=False)
    assert env_number("HLX_TEST_NUMBER", 7.0) == 7.0
    monkeypatch.setenv("HLX_TEST_NUMBER", "2.5")
    assert env_number("HLX_TEST_NUMBER", 7.0) == 2.5


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "inf", "1e999"])
def test_bad_numbers_name_the_variable(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("HLX_TEST_NUMBER", raw)
    with pytest.raises(hlx.HLXError) as err:
        env_number("HLX_TEST_NUMBER", 1.0)
    assert err.value.code == "E_CONFIG" and "HLX_TEST_NUMBER" in err.value.message


def test_bad_flag_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("HLX_TEST_FLAG", "maybe")
    with pytest.raises(hlx.HLXError) as err:
        env_flag("HLX_TEST_FLAG", False)
    assert err.value.code == "E_CONFIG" and "HLX_TEST_FLAG='maybe'" in err.value.message


@pytest.mark.skipif("vulkan" not in hlx.backends(), reason="Vulkan backend unavailable")
def test_a_backend_reports_a_bad_setting_by_name(monkeypatch, rng) -> None:
    """A fresh Vulkan session reads HLX_VULKAN_BLOCK_MB when it opens: the error names the variable."""
    from hlx_vulkan_raw import VulkanBackend
    monkeypatch.setenv("HLX_VULKAN_BLOCK_MB", "lots")
    with pytest.raises(hlx.HLXError) as err:
        VulkanBackend().open(None)
    assert err.value.code == "E_CONFIG" and "HLX_VULKAN_BLOCK_MB" in err.value.message
