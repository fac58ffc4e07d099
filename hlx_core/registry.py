"""The registry of backends and kernels, and the loading of the plugins that fill it.

Plugins are modules (or objects) holding ``@hookimpl`` functions for the hooks in ``hlx_core.hookspecs``.
The built-in kernel library (``hlx_core.kernels.library``) is the first plugin, registered in code, so its
kernels are there whatever ``HLX_PLUGINS`` says. Entry points of the group ``hlx.backends`` are loaded once,
lazily (on the first question about backends or kernels, never at ``import hlx``), under a lock.
``HLX_PLUGINS`` restricts which entry points load:

- unset: every entry point of the group loads;
- ``"cpu,vulkan"``: only the entry points with those names load (an unknown name is reported);
- ``""`` (set but empty): no entry point loads; plugins registered with ``register_plugin`` still work.

A plugin that fails to import, to register with pluggy, or whose hooks raise is recorded as a
``PluginFailure`` (name, distribution, error) and skipped, so one broken plugin never breaks HLX.
"""
from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hlx_core.backend import Availability, Backend
from hlx_core.distributions import DistributionRef, entry_points
from hlx_core.errors import BackendError
from hlx_core.hookspecs import ENTRY_POINT_GROUP, PROJECT, HLXSpec
from hlx_core.kernels import library
from hlx_core.kernels.spec import KernelRegistry

log = logging.getLogger("hlx.plugins")

ALLOWLIST_ENV = "HLX_PLUGINS"
LIBRARY_PLUGIN = "hlx-library"  # the plugin name of the built-in kernels


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used: ``stage`` is "import", "register", "backends" or "kernels"."""

    name: str
    distribution: str
    stage: str
    error: str


@dataclass
class BackendEntry:
    """A registered backend with where it came from; ``availability()`` probes it once and remembers."""

    backend: Backend
    plugin: str
    origin: DistributionRef
    _availability: Availability | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def distribution(self) -> str:
        return self.origin.name

    @property
    def distribution_version(self) -> str:
        return self.origin.version

    @property
    def version(self) -> str:
        """The backend's version as execution keys name it: its probe's, else its distribution's."""
        return self.availability().version or self.distribution_version

    def availability(self) -> Availability:
        """The backend's probe, run once; a probe that raises means "unavailable" with the error."""
        with self._lock:
            if self._availability is None:
                try:
                    found = self.backend.probe()
                    if not isinstance(found, Availability):
                        raise TypeError(f"probe() returned {type(found).__name__}, not Availability")
                except Exception as exc:  # a broken probe must not break backend listing
                    log.debug("probe of backend %s failed", self.name, exc_info=True)
                    found = Availability(False, f"probe failed: {type(exc).__name__}: {exc}")
                self._availability = found
            return self._availability


class _Registry:
    """The process-wide state: one pluggy manager, the backends and failures it produced."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(HLXSpec)
        self.loaded = False
        self.backends: dict[str, BackendEntry] = {}
        self.failures: list[PluginFailure] = []


_state = _Registry()
_generation = 0  # bumped by every change to the registered backends (see ``generation``)
# Process-wide and kept across ``reset``: a reset re-registers backends but must not add kernels twice.
_kernels = KernelRegistry()


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _allowlist() -> set[str] | None:
    raw = os.environ.get(ALLOWLIST_ENV)
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _load_entry_points() -> None:
    _add(library, LIBRARY_PLUGIN, DistributionRef(name="hlx"))
    allowed = _allowlist()
    seen: dict[str, DistributionRef] = {}  # entry-point name -> its distribution
    for ep in entry_points(ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        origin = ep.dist
        if ep.name in seen:  # the same distribution found twice on sys.path is no conflict
            first = seen[ep.name].name
            if first != origin.name:
                _state.failures.append(PluginFailure(
                    ep.name, origin.name, "import", f"entry point {ep.name!r} is already provided by "
                                                    f"distribution {first or '?'!r}; this one was not loaded"))
            continue
        seen[ep.name] = origin
        try:
            obj = ep.load()
        except Exception as exc:  # includes SyntaxError and missing native libraries at import
            log.debug("plugin %s failed to import", ep.name, exc_info=True)
            _state.failures.append(PluginFailure(ep.name, origin.name, "import", _error_text(exc)))
            continue
        _add(obj, ep.name, origin)
    for name in sorted((allowed or set()) - set(seen)):
        _state.failures.append(PluginFailure(
            name, "", "import", f"{ALLOWLIST_ENV} names {name!r} but no entry point in group "
                                f"{ENTRY_POINT_GROUP!r} has that name"))


def _add(obj: Any, name: str, origin: DistributionRef) -> bool:
    """Register one plugin object and collect its backends and kernels; False when it failed."""
    try:
        _state.pm.register(obj, name=name)
    except Exception as exc:  # pluggy validation errors, duplicate names
        _state.failures.append(PluginFailure(name, origin.name, "register", _error_text(exc)))
        return False
    ok = _collect_backends(obj, name, origin)
    return _register_kernels(obj, name, origin) and ok


def _call_own(hook_name: str, obj: Any, **kwargs: Any) -> list[Any]:
    """Call only ``obj``'s implementation of a hook, so each plugin's errors stay its own."""
    caller = _state.pm.subset_hook_caller(
        hook_name, remove_plugins=[p for p in _state.pm.get_plugins() if p is not obj])
    return caller(**kwargs)


def _collect_backends(obj: Any, name: str, origin: DistributionRef) -> bool:
    try:
        produced = [b for batch in _call_own("hlx_register_backends", obj) for b in (batch or [])]
        for backend in produced:
            if not isinstance(backend, Backend):
                raise TypeError(f"hlx_register_backends returned {type(backend).__name__}, "
                                "not an hlx_core.backend.Backend")
            if not isinstance(backend.name, str) or not backend.name:
                raise TypeError(f"backend {type(backend).__name__} has no name")
            if backend.name in _state.backends:
                other = _state.backends[backend.name]
                raise ValueError(f"backend name {backend.name!r} is already provided by plugin "
                                 f"{other.plugin!r} ({other.distribution or 'registered in code'})")
    except Exception as exc:
        _state.failures.append(PluginFailure(name, origin.name, "backends", _error_text(exc)))
        log.debug("plugin %s failed to register backends\n%s", name, traceback.format_exc())
        return False
    for backend in produced:
        _state.backends[backend.name] = BackendEntry(backend, name, origin)
    return True


def _register_kernels(obj: Any, name: str, origin: DistributionRef) -> bool:
    registry = _kernels
    if id(obj) in registry.plugins or not _has_impl(obj, "hlx_register_kernels"):
        return True
    try:
        _call_own("hlx_register_kernels", obj, registry=registry)
    except Exception as exc:
        _state.failures.append(PluginFailure(name, origin.name, "kernels", _error_text(exc)))
        return False
    registry.plugins[id(obj)] = obj
    return True


def _has_impl(obj: Any, hook_name: str) -> bool:
    return any(impl.plugin is obj for impl in getattr(_state.pm.hook, hook_name).get_hookimpls())


def ensure_loaded() -> None:
    """Load the entry-point plugins if that has not happened yet (thread-safe, once)."""
    if _state.loaded:
        return
    with _state.lock:
        if not _state.loaded:
            _load_entry_points()
            _state.loaded = True
            _changed()


def generation() -> int:
    """A number that changes whenever the registered backends do (loading, registering, unregistering,
    ``reset``): what the runtime caches per backend name holds while it is the same."""
    return _generation


def _changed() -> None:
    global _generation
    _generation += 1


def register_plugin(obj: Any, name: str | None = None, distribution: str = "") -> list[str]:
    """Register a plugin object (a module or an instance with ``@hookimpl`` methods) from code.

    Handy in notebooks and tests; entry-point plugins load first. Returns the names of the backends it
    added; raises ``BackendError`` (E_PLUGIN) when the plugin is refused, naming why.
    """
    ensure_loaded()
    with _state.lock:
        name = name or _state.pm.get_canonical_name(obj)
        before = set(_state.backends)
        n_failures = len(_state.failures)
        if not _add(obj, name, DistributionRef(name=distribution)):
            failure = _state.failures[n_failures] if len(_state.failures) > n_failures else None
            if _state.pm.is_registered(obj):
                _state.pm.unregister(obj)
            for added in set(_state.backends) - before:
                del _state.backends[added]
            del _state.failures[n_failures:]
            raise BackendError("E_PLUGIN", f"plugin {name!r} refused at {failure.stage if failure else '?'}: "
                                           f"{failure.error if failure else 'unknown error'}")
        _changed()
        return sorted(set(_state.backends) - before)


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered under ``name`` and the backends it provided (sessions are not closed:
    see ``hlx_core.runtime.close_sessions``)."""
    with _state.lock:
        plugin = _state.pm.get_plugin(name)
        if plugin is not None:
            _state.pm.unregister(plugin)
        for backend_name in [b for b, e in _state.backends.items() if e.plugin == name]:
            del _state.backends[backend_name]
        _changed()


def reset() -> None:
    """Forget every plugin so the next question reloads entry points (re-reading ``HLX_PLUGINS``).
    Kernels already registered stay in the kernel registry."""
    global _state
    with _state.lock:
        _state = _Registry()
        _changed()


def backend_entries() -> dict[str, BackendEntry]:
    """Registered backends by name, in registration order."""
    ensure_loaded()
    with _state.lock:
        return dict(_state.backends)


def failures() -> list[PluginFailure]:
    """Plugins that could not be used, with their errors."""
    ensure_loaded()
    with _state.lock:
        return list(_state.failures)



def kernel_registry() -> KernelRegistry:
    """The process-wide kernel registry, holding what the loaded plugins registered (the library first)."""
    ensure_loaded()
    return _kernels
