"""Finding a wgpu adapter and opening a device with what HLX contracts need.

Adapters are listed once per process and ranked by the power preference (high performance: discrete,
integrated, other, CPU; low power: integrated first), native APIs (Vulkan, Metal, D3D12) before OpenGL. The
``device`` argument of ``open``, else ``HLX_WGPU_ADAPTER``, names one the way every backend names a device
(``hlx_core.device.selection``); with neither, the best ranked is taken. Devices are opened with the
adapter's own maxima for the compute limits rather than WebGPU's defaults (128 MiB storage bindings, no
immediates), so a contract is refused only when the hardware cannot run it. A child made by fork() forgets
the parent's adapters and wgpu instance and lists its own.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

from hlx_core.backend import DeviceInfo, DeviceKind
from hlx_core.device.isa import cpu_isa
from hlx_core.device.limits import DeviceLimits
from hlx_core.device.selection import select_device
from hlx_core.errors import BackendError, HLXError

from hlx_wgpu.errors import wgpu_call

ENV_ADAPTER = "HLX_WGPU_ADAPTER"
ENV_POWER = "HLX_WGPU_POWER_PREFERENCE"
ENV_BACKENDS = "HLX_WGPU_BACKENDS"  # wgpu-native instance backends, e.g. "Vulkan" or "Vulkan,GL"
DEFAULT_BACKENDS = "Primary"  # Vulkan, Metal, D3D12: the GL adapter adds nothing for compute

# Optional features requested when the adapter has them: naga validates shaders against the enabled set.
WANTED_FEATURES = ("shader-f16", "shader-f64", "shader-int64", "shader-i16", "subgroup", "subgroup-barrier",
                   "shader-float32-atomic", "timestamp-query", "immediates")
# Limits raised to the adapter's maximum.
WANTED_LIMITS = ("max-storage-buffer-binding-size", "max-buffer-size", "max-uniform-buffer-binding-size",
                 "max-storage-buffers-per-shader-stage", "max-compute-workgroup-storage-size",
                 "max-compute-invocations-per-workgroup", "max-compute-workgroup-size-x",
                 "max-compute-workgroup-size-y", "max-compute-workgroup-size-z",
                 "max-compute-workgroups-per-dimension", "max-bind-groups")

_KINDS: dict[str, DeviceKind] = {"DiscreteGPU": "gpu-discrete", "IntegratedGPU": "gpu-integrated",
                                 "CPU": "cpu"}
_NATIVE_APIS = ("Vulkan", "Metal", "D3D12")


@dataclass(frozen=True)
class Adapter:
    """One wgpu adapter with the facts HLX selects on."""

    index: int
    handle: Any  # wgpu.GPUAdapter
    name: str
    kind: DeviceKind
    api: str  # "Vulkan", "Metal", "D3D12", "OpenGL"…
    features: frozenset[str]
    limits: dict[str, int]

    def device_info(self) -> DeviceInfo:
        info = self.handle.info
        details = {"api": self.api, "vendor": info.get("vendor", ""), "vendor_id": info.get("vendor_id", 0),
                   "device_id": info.get("device_id", 0), "description": info.get("description", ""),
                   "adapter_type": info.get("adapter_type", ""), "features": sorted(self.features),
                   "limits": {k: self.limits[k] for k in WANTED_LIMITS if k in self.limits}}
        return DeviceInfo(self.index, self.name, self.kind, details, device_class=self.device_class())

    def device_class(self) -> dict[str, Any]:
        """What decides the bytes a kernel gives here (DeviceInfo.device_class): the native API, the ids and
        the driver's description (its version on NVIDIA and Mesa); a CPU adapter (lavapipe) compiles for
        the host, so it adds the host's instruction set."""
        info = self.handle.info
        facts: dict[str, Any] = {"api": self.api, "name": self.name}
        for key in ("vendor", "vendor_id", "device_id", "architecture", "description", "adapter_type"):
            facts[key] = info.get(key, "")
        if self.kind == "cpu":
            facts["isa"] = cpu_isa()
        return facts


def import_wgpu() -> Any:
    """The wgpu module, or E_BACKEND_UNAVAILABLE saying why it cannot be loaded."""
    try:
        import wgpu
        import wgpu.backends.wgpu_native  # noqa: F401  (loads the native library)
    except Exception as exc:  # ImportError, OSError from a missing shared library, …
        raise BackendError("E_BACKEND_UNAVAILABLE", f"wgpu cannot be loaded: {exc}") from exc
    return wgpu


def _configure_instance() -> None:
    """Choose the instance backends before wgpu creates its global instance (once per process)."""
    from wgpu.backends.wgpu_native.extras import set_instance_extras

    backends = [b.strip() for b in os.environ.get(ENV_BACKENDS, DEFAULT_BACKENDS).split(",") if b.strip()]
    try:
        set_instance_extras(backends=backends)
    except KeyError:
        raise HLXError("E_CONFIG", f"{ENV_BACKENDS}={os.environ[ENV_BACKENDS]!r}: unknown wgpu backend; use "
                                   "Vulkan, Metal, DX12, GL or Primary") from None
    except RuntimeError:
        pass  # the instance already exists (wgpu was used before HLX): keep its backends


# Printed by libwayland-client when wgpu probes for a Wayland display on a headless machine; harmless for
# compute, but it arrived on stderr several times per process.
_BENIGN_STDERR = (b"XDG_RUNTIME_DIR is invalid or not set",)


@contextlib.contextmanager
def _filtered_native_stderr() -> Iterator[None]:
    """Hold back what native code writes to file descriptor 2 and pass on all but the benign lines."""
    sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [ln for ln in held.read().splitlines(keepends=True)
                    if not any(b in ln for b in _BENIGN_STDERR)]
            if kept:
                os.write(2, b"".join(kept))


@lru_cache(maxsize=1)
def adapters() -> tuple[Adapter, ...]:
    """Every adapter wgpu reports, in its order; E_BACKEND_UNAVAILABLE when there is none."""
    wgpu = import_wgpu()
    _configure_instance()
    with wgpu_call("enumerating adapters"), _filtered_native_stderr():
        found = wgpu.gpu.enumerate_adapters_sync()
    if not found:
        raise BackendError("E_BACKEND_UNAVAILABLE",
                           "wgpu found no adapter (no Vulkan/Metal/D3D12 driver; on a machine without a GPU "
                           "install Mesa's lavapipe: apt-get install mesa-vulkan-drivers)")
    result = []
    for i, ad in enumerate(found):
        info = ad.info
        result.append(Adapter(i, ad, str(info.get("device") or info.get("description") or f"adapter {i}"),
                              _KINDS.get(str(info.get("adapter_type")), "other"),
                              str(info.get("backend_type", "")), frozenset(ad.features), dict(ad.limits)))
    return tuple(result)


_inherited: list[tuple[Adapter, ...]] = []  # in a forked child: the parent's adapters, never released here


def _after_fork_in_child() -> None:
    """A forked child lists adapters on a wgpu instance of its own: the parent's instance, adapters and
    devices are its driver objects, shared without the driver's threads (wgpu-py keeps one instance per
    process, which may be dropped before it is next used)."""
    if adapters.cache_info().currsize:
        _inherited.append(adapters())  # the cached tuple: collecting it here would release them
        adapters.cache_clear()
    helpers = sys.modules.get("wgpu.backends.wgpu_native._helpers")
    if helpers is not None:
        helpers._the_instance = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _rank(ad: Adapter, power_preference: str) -> tuple[int, int, int]:
    order = ("gpu-integrated", "gpu-discrete") if power_preference == "low-power" else \
        ("gpu-discrete", "gpu-integrated")
    kind_rank = order.index(ad.kind) if ad.kind in order else (2 if ad.kind == "other" else 3)
    return (kind_rank, 0 if ad.api in _NATIVE_APIS else 1, ad.index)


def select(device: int | str | None = None, power_preference: str | None = None) -> Adapter:
    """The adapter ``device`` names (index, digit string or name substring), else ``HLX_WGPU_ADAPTER``,
    else the best for the power preference ("high-performance" by default, or
    ``HLX_WGPU_POWER_PREFERENCE``); a name several adapters match gives the best ranked of them."""
    preference = power_preference or os.environ.get(ENV_POWER) or "high-performance"
    if preference not in ("high-performance", "low-power"):
        source = "power_preference" if power_preference else ENV_POWER
        raise HLXError("E_CONFIG", f"{source}={preference!r}: use 'high-performance' or 'low-power'")
    ranked = sorted(adapters(), key=lambda a: _rank(a, preference))
    return select_device(ranked, device, backend="wgpu", env=ENV_ADAPTER)


def device_limits(limits: dict[str, int]) -> DeviceLimits:
    """The compute limits of a wgpu device (``GPUDevice.limits``) in the backend-neutral form.

    Push constants too large for immediates go through a uniform buffer, so the uniform binding size is
    their bound."""
    per_dimension = limits["max-compute-workgroups-per-dimension"]
    return DeviceLimits(
        max_workgroup_count=(per_dimension, per_dimension, per_dimension),
        max_workgroup_size=(limits["max-compute-workgroup-size-x"], limits["max-compute-workgroup-size-y"],
                            limits["max-compute-workgroup-size-z"]),
        max_workgroup_invocations=limits["max-compute-invocations-per-workgroup"],
        max_shared_memory_bytes=limits["max-compute-workgroup-storage-size"],
        max_storage_buffer_range=limits["max-storage-buffer-binding-size"],
        max_uniform_buffer_range=limits["max-uniform-buffer-binding-size"],
        max_buffer_bytes=limits["max-buffer-size"],
        max_storage_buffers_per_stage=limits["max-storage-buffers-per-shader-stage"],
        max_push_constant_bytes=limits["max-uniform-buffer-binding-size"])


def request_device(adapter: Adapter) -> Any:
    """Open a device on ``adapter`` with the wanted features it has and its maximum compute limits."""
    features = [f for f in WANTED_FEATURES if f in adapter.features]
    limits = {k: adapter.limits[k] for k in WANTED_LIMITS if k in adapter.limits}
    if "immediates" in features and adapter.limits.get("max-immediate-size"):
        limits["max-immediate-size"] = adapter.limits["max-immediate-size"]
    with wgpu_call(f"opening a device on {adapter.name!r}"):
        return adapter.handle.request_device_sync(label="hlx", required_features=features,
                                                  required_limits=limits)
