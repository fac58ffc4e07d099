"""The execution key: the BLAKE3 of the LC-B encoding of what decides a run's output bytes.

``{"v", "contract", "platform", "settings", "salt"}``: the contract's handle covers the shaders, inputs,
dispatch and constants; the platform is the device class (backend and its version, HLX's version, the
backend's ``DeviceInfo.device_class``), not the device itself, so a result is reused on an identical device;
the settings are the HLX_* variables that can change bytes; the salt lets a caller keep results apart.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import blake3

from hlx_core.backend import DeviceInfo
from hlx_core.codec import encode, pre_serialize
from hlx_core.codec.handle import Handle
from hlx_core.device.poison import ENV_POISON
from hlx_core.settings import env_key, env_text
from hlx_core.version import package_version

KEY_VERSION = 1
#: Variables that change the bytes of a run on every backend (a backend adds its own: Backend.byte_settings).
CORE_SETTINGS = (ENV_POISON,)


@lru_cache(maxsize=1)
def hlx_version() -> str:
    return package_version()  # the installed metadata's, read without importlib.metadata (~15 ms to import)


def platform(backend: str, backend_version: str, device: DeviceInfo) -> dict[str, Any]:
    """The device class a run is keyed on. A device whose backend gives no class is named by its name,
    kind and UUID: its results are then reused on that very device only."""
    device_class = device.device_class or {"name": device.name, "kind": device.kind, "uuid": device.uuid}
    return {"backend": backend, "backend_version": backend_version, "hlx": hlx_version(),
            "device": device_class}


def settings(names: Iterable[str]) -> dict[str, str]:
    """The values of ``names`` (and of CORE_SETTINGS) as the environment spells them now ("" when unset)."""
    return settings_of(tuple(names), settings_now(tuple(names)))


@lru_cache(maxsize=64)
def _encoded(names: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(os.fsencode(name) for name in (*CORE_SETTINGS, *names))


def settings_now(names: tuple[str, ...]) -> tuple[object, ...]:
    """What ``settings(names)`` reads, as the environment holds it now: a key to compare (``env_key``), so a
    warm run reads its settings without decoding them."""
    return env_key(_encoded(names))


def settings_of(names: tuple[str, ...], now: tuple[object, ...]) -> dict[str, str]:
    """``settings(names)`` from what ``settings_now(names)`` read."""
    return {name: env_text(value) for name, value in zip((*CORE_SETTINGS, *names), now)}


def key_fields(contract: Handle, platform: dict[str, Any], settings: dict[str, str], salt: str) -> dict[str, Any]:
    """The fields the key hashes, normalised for LC-B (a driver string that is not NFC still keys)."""
    return pre_serialize({"v": KEY_VERSION, "contract": Handle(contract), "platform": platform,
                          "settings": settings, "salt": salt})


def derive_key(fields: Any) -> str:
    """The key of ``fields``: 64 lowercase hex digits of BLAKE3(LC-B(fields))."""
    return blake3.blake3(encode(fields)).hexdigest()
