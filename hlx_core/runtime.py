"""``hlx.run``: plan a contract, pick a backend and device, execute, store the outputs in the CAS (those a GPU
backend left on its device registered with the store as resident, downloaded when read or made durable).

Sessions (an open device) are expensive, so the runtime keeps one per (backend, device) for the life of the
process, serialises the work on each with a lock, and closes them all at interpreter exit. A session its
backend marked ``broken`` (a run that timed out is still on its device) is dropped before the next run,
which opens a new one; the old one is closed on a thread of its own, since its close waits for what is still
on its device. A child made by fork() forgets the sessions it inherited (they are the parent's driver
objects, see hlx_core.backend) and opens its own.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
from dataclasses import dataclass, field
from logging import DEBUG
from typing import Any

import numpy as np

from hlx_core import registry
from hlx_core.backend import DeviceInfo, DeviceOutput, Execution, Session
from hlx_core.cas import api as cas
from hlx_core.cas.resident import settle_all
from hlx_core.cas.writer import writes_behind
from hlx_core.codec.handle import Handle, is_handle
from hlx_core.contracts.tensors import resolve_tensor
from hlx_core.device.lru import LRU
from hlx_core.device.selection import check_selector, matches, select_device
from hlx_core.errors import BackendError, ContractError, HLXError
from hlx_core.kernels.helpers import Deferred
from hlx_core.log import get_logger
from hlx_core.memo.memoized import ExecutionKeys, MemoizedRun
from hlx_core.memo.policy import Memo, check_mode, enabled
from hlx_core.plan import Plan
from hlx_core.planner import plan as make_plan

log = get_logger("hlx.runtime")

AUTO = "auto"


@dataclass(frozen=True, repr=False)
class Result:
    """What ``hlx.run`` returns. ``outputs`` are handles of the stored outputs (in the order the contract
    returns them), ``timings`` are milliseconds: ``total_ms`` (the whole run) always, ``host_ms`` (the
    backend's execute, host clock) whenever the backend ran, ``gpu_ms`` and ``stage<i>_gpu_ms`` where it
    has GPU timestamps, ``memo_ms`` (finding and checking the record) on a memo hit. ``contract`` is the
    handle of the normalised contract that ran. ``memo_hit`` says the outputs came from a memo record
    instead of the backend; ``exec_key`` is the run's execution key (None when memo was off)."""

    outputs: list[Handle]
    backend: str
    device: str
    timings: dict[str, float]
    contract: Handle
    _arrays: list[np.ndarray | None] | None = field(compare=False)
    memo_hit: bool = False
    exec_key: str | None = None
    _store: Any = field(default=None, compare=False)

    @classmethod
    def made(cls, outputs: list[Handle], backend: str, device: str, timings: dict[str, float], contract: Handle,
             arrays: list[np.ndarray | None] | None, memo_hit: bool, exec_key: str | None, store: Any) -> "Result":
        """The Result of a run, every field given: set in one step (the frozen dataclass's ``__init__`` sets
        them one ``object.__setattr__`` at a time, a measurable share of a warm run)."""
        result = object.__new__(cls)
        result.__dict__.update(outputs=outputs, backend=backend, device=device, timings=timings, contract=contract,
                               _arrays=arrays, memo_hit=memo_hit, exec_key=exec_key, _store=store)
        return result

    def arrays(self) -> list[np.ndarray]:
        """The outputs as (read-only) NumPy arrays: those the backend returned, downloaded on first use for
        those it left on the device, or (a memo hit) those its check found already read in this process,
        the others read from the store on first use; kept once read."""
        arrays = self._arrays
        if arrays is None:
            arrays = [None] * len(self.outputs)
            object.__setattr__(self, "_arrays", arrays)
        for k, array in enumerate(arrays):
            if array is None:
                arrays[k] = _read_output(self.outputs[k], self._store)
        return list(arrays)

    def _only(self, what: str) -> np.ndarray:
        arrays = self.arrays()
        if len(arrays) != 1:
            raise HLXError("E_RESULT_OUTPUTS", f"{what} needs a Result with one output; this one has "
                                               f"{len(arrays)} (result.arrays() lists them)")
        return arrays[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(result)`` for a one-output Result: its (read-only) array, copied only when a
        ``copy`` or another ``dtype`` asks for it."""
        array = self._only("np.asarray(result)")
        if copy:
            return np.array(array, dtype=dtype, copy=True)
        if dtype is None or np.dtype(dtype) == array.dtype:
            return array
        if copy is False:
            raise ValueError(f"np.asarray(result, dtype={np.dtype(dtype)}) needs a copy of the {array.dtype} output")
        return array.astype(dtype)

    def __dlpack__(self, **kwargs: Any) -> Any:
        """DLPack export of a one-output Result (host memory, read-only): ``np.from_dlpack(result)`` and
        other consumers take the output without a copy."""
        return self._only("result.__dlpack__()").__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._only("result.__dlpack_device__()").__dlpack_device__()

    def __repr__(self) -> str:
        arrays = self._arrays or [None] * len(self.outputs)  # shown without reading (or downloading) any
        shown = ", ".join(f"{h[:20]}…" + ("" if a is None else f"{a.dtype}{list(a.shape)}")
                          for h, a in zip(self.outputs, arrays))
        times = ", ".join(f"{k}={v:.3f}" for k, v in sorted(self.timings.items()))
        memo = ", memo_hit=True" if self.memo_hit else ""
        return (f"Result(backend={self.backend!r}, device={self.device!r}, outputs=[{shown}], "
                f"timings_ms={{{times}}}{memo})")


def _read_output(handle: Handle, store: Any) -> np.ndarray:
    """An output from its store: downloaded (and then written behind) while it is still only on a device."""
    if store is not None:
        array = store.materialize(handle)
        if array is not None:
            return array
    return resolve_tensor(handle, store)


class _OnDevice:
    """A session's ``DeviceOutput`` as the store sees it (hlx_core.cas.resident.DeviceSource): downloaded
    under the session's lock, so a download never runs beside the session's runs."""

    __slots__ = ("output", "slot", "handle", "dtype", "shape")

    def __init__(self, output: DeviceOutput, slot: "_SessionSlot") -> None:
        self.output = output
        self.slot = slot
        self.handle, self.dtype, self.shape = output.handle, output.dtype, output.shape

    def fetch(self) -> np.ndarray | None:
        with self.slot.lock:
            if self.slot.session.forked:  # the parent's device: its outputs were settled before the fork
                return None
            return self.output.download()


class _SessionSlot:
    """An open session and the lock that serialises work on it (re-entrant: a run that reads an input still
    on its own device, a shader writing it in place, downloads it inside the run)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.lock = threading.RLock()


_sessions: dict[tuple[str, Any], _SessionSlot] = {}
_sessions_lock = threading.RLock()
_exit_hook: list[bool] = []  # set once close_sessions is registered with atexit


def backends() -> list[str]:
    """Names of the backends that can run here now."""
    return [name for name, entry in registry.backend_entries().items() if entry.availability().available]


def _device_dict(d: DeviceInfo) -> dict[str, Any]:
    return {"index": d.index, "name": d.name, "kind": d.kind, "is_gpu": d.is_gpu}


def backend_info() -> list[dict[str, Any]]:
    """Every registered backend (available or not, with the reason) and every plugin that failed to load.

    Keys: name, available, reason, devices (index, name, kind, is_gpu), version (the backend's own, else
    its distribution's), distribution, plugin; failed plugins also carry ``error`` and ``stage``."""
    info = []
    for name, entry in registry.backend_entries().items():
        avail = entry.availability()
        info.append({
            "name": name, "available": avail.available, "reason": avail.reason,
            "devices": [_device_dict(d) for d in avail.devices],
            "version": avail.version or entry.distribution_version,
            "distribution": entry.distribution, "plugin": entry.plugin,
        })
    for failure in registry.failures():
        info.append({
            "name": failure.name, "available": False,
            "reason": f"plugin failed ({failure.stage}): {failure.error}",
            "devices": [], "version": "", "distribution": failure.distribution, "plugin": failure.name,
            "error": failure.error, "stage": failure.stage,
        })
    return info


# -- choosing a backend and device ---------------------------------------------------------------------

def _pick_device(name: str, devices: tuple[DeviceInfo, ...], spec: Any) -> Any:
    """The index of the device ``spec`` names, so every backend's ``open`` gets the same answer for "0", 0,
    a name and a UUID; a backend that lists no devices interprets ``spec`` itself."""
    if spec is None or not devices:
        return spec
    return select_device(devices, spec, backend=name).index


def _auto_rank(name: str, device: DeviceInfo | None) -> float:
    """Lower is better: Vulkan on a GPU, wgpu on a GPU, any other backend on a GPU, Vulkan on a CPU device
    (lavapipe), the CPU reference, other backends, wgpu on a CPU device."""
    gpu = device is not None and device.is_gpu
    if name == "vulkan":
        return 1 if gpu else 4
    if name == "wgpu":
        return 2 if gpu else 7
    if name == "cpu":
        return 5
    return 3 if gpu else 6


_ANY_GPU = DeviceInfo(index=-1, name="", kind="gpu-discrete")


def _best_rank(name: str) -> float:
    """The best rank ``name`` could reach on any device, known before its probe."""
    return min(_auto_rank(name, None), _auto_rank(name, _ANY_GPU))


def _auto_choice(entries: dict[str, registry.BackendEntry], spec: Any) -> tuple[str, int | None] | None:
    """The best candidate for backend="auto" as (backend, device index), or None when there is none.

    Probes are the expensive part of a first run (a driver to load, an instance to create), so backends are
    probed in order of the best rank each could reach and the search stops as soon as no backend left
    could beat the best candidate found: on a GPU machine Vulkan's probe alone decides. The choice is the
    one ranking every backend would give; ties go by name, then device index."""
    best: tuple[float, str, int] | None = None
    for name in sorted(entries, key=lambda n: (_best_rank(n), n)):
        if best is not None and best < (_best_rank(name), name, -1):
            break  # neither this backend nor any after it can rank better
        avail = entries[name].availability()
        if not avail.available:
            continue
        found = [(_auto_rank(name, d), name, d.index) for d in avail.devices if matches(d, spec)]
        if not avail.devices and spec is None:  # a backend that lists no devices runs on its default
            found.append((_auto_rank(name, None), name, -1))
        if best is not None:
            found.append(best)
        best = min(found, default=None)
    if best is None:
        return None
    return best[1], None if best[2] < 0 else best[2]


# (the registered backends, the device selector) -> backend="auto"'s choice: each backend is probed once and
# keeps its answer, so the choice holds until the registry changes. Every hlx.run() asks; the entries are
# kept with the choice, so their ids in the key stay theirs.
_auto_choices: LRU[tuple[Any, ...], tuple[tuple[registry.BackendEntry, ...], tuple[str, int | None]]] = \
    LRU(64, locked=True)


def _auto_cached(entries: dict[str, registry.BackendEntry], spec: Any) -> tuple[str, int | None] | None:
    """``_auto_choice``, worked out once per set of registered backends and selector (None, an int or a
    string; any other selector is worked out each time)."""
    if spec is not None and type(spec) not in (int, str):
        return _auto_choice(entries, spec)
    key = (tuple(entries), tuple(map(id, entries.values())), spec)
    cached = _auto_choices.get(key)
    if cached is not None:
        return cached[1]
    choice = _auto_choice(entries, spec)
    if choice is not None:
        _auto_choices.put(key, (tuple(entries.values()), choice))
    return choice


def _landscape(entries: dict[str, registry.BackendEntry]) -> str:
    """Every backend with its devices or why it cannot run, and every failed plugin: for error messages."""
    parts = []
    for name, entry in entries.items():
        avail = entry.availability()
        if avail.available:
            devices = ", ".join(f"{d.index} {d.name!r} ({d.kind})" for d in avail.devices) or "default device"
            parts.append(f"{name}: {devices}")
        else:
            parts.append(f"{name}: unavailable ({avail.reason})")
    parts += [f"{f.name}: plugin failed ({f.error})" for f in registry.failures()]
    return "; ".join(parts) or "no backend plugins are registered (is HLX_PLUGINS set to an empty string?)"


def _choose(backend: str, device: Any) -> tuple[str, Any]:
    """(backend name, device argument for Backend.open) or BackendError naming what is there."""
    check_selector(device)
    if not isinstance(backend, str):
        raise BackendError("E_BACKEND_UNKNOWN", f"backend must be a name or 'auto', got {type(backend).__name__}")
    entries = registry.backend_entries()
    if backend == AUTO:
        choice = _auto_cached(entries, device)
        if choice is None:
            wanted = "" if device is None else f" with a device matching {device!r}"
            raise BackendError("E_BACKEND_UNAVAILABLE",
                               f"no backend is available{wanted}: {_landscape(entries)}")
        return choice
    entry = entries.get(backend)
    if entry is None:
        failed = [f for f in registry.failures() if f.name == backend]
        if failed:
            raise BackendError("E_BACKEND_UNAVAILABLE",
                               f"backend {backend!r}: plugin {failed[0].name!r} "
                               f"({failed[0].distribution or 'unknown distribution'}) failed at "
                               f"{failed[0].stage}: {failed[0].error}")
        available = backends()
        idle = sorted(set(entries) - set(available))
        raise BackendError("E_BACKEND_UNKNOWN",
                           f"unknown backend {backend!r}; available: {', '.join(available) or 'none'}"
                           + (f" (registered but unavailable: {', '.join(idle)})" if idle else ""))
    avail = entry.availability()
    if not avail.available:
        raise BackendError("E_BACKEND_UNAVAILABLE", f"backend {backend!r} is not available: {avail.reason}")
    return backend, _pick_device(backend, avail.devices, device)


def session(backend: str, device: Any = None) -> tuple[str, Session]:
    """(backend name, the cached session) ``hlx.run(backend=backend, device=device)`` would run on; for
    placement (hlx_core/scale), which asks a device's session what it holds."""
    name, device_arg = _choose(backend, device)
    return name, _session(name, device_arg).session


def _session(name: str, device: Any) -> _SessionSlot:
    """The cached session for (backend, device), opening one on first use. Two spellings of the same device
    (None and its index, say) end up sharing one session."""
    key = (name, device)
    with _sessions_lock:
        slot = _sessions.get(key)
        if slot is not None:
            if not slot.session.broken:
                return slot
            _retire(slot)
        entry = registry.backend_entries()[name]
        try:
            session = entry.backend.open(device)
        except HLXError:
            raise
        except Exception as exc:
            raise BackendError("E_BACKEND_UNAVAILABLE",
                               f"backend {name!r} could not open device {device!r}: "
                               f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(session, Session):
            raise BackendError("E_PLUGIN", f"backend {name!r} open() returned {type(session).__name__}, "
                                           "not an hlx_core.backend.Session")
        for (other_name, _), other in _sessions.items():
            if other_name == name and other.session.device == session.device:
                _close_quietly(session)
                slot = other
                break
        else:
            session.on_device = True  # outputs may stay on its device: _take registers them with the store
            slot = _SessionSlot(session)
        _sessions[key] = slot
        if not _exit_hook:
            # Registered now, after the plugins were imported: atexit runs hooks last-in first-out, so
            # sessions close before any exit hook a plugin registered to tear down its library.
            atexit.register(close_sessions)
            _exit_hook.append(True)
        return slot


def _retire(slot: _SessionSlot) -> None:
    """Drop a broken session from the cache and close it on a thread of its own: its close waits for the work
    still on its device (a timed-out run), which the next run must not wait for."""
    for key in [k for k, other in _sessions.items() if other is slot]:
        del _sessions[key]
    log.info("replacing the broken %s session on %s", slot.session.backend, slot.session.device.name)
    threading.Thread(target=_close_slot, args=(slot,), name=f"hlx-close-{slot.session.backend}",
                     daemon=True).start()


def _close_slot(slot: _SessionSlot) -> None:
    with slot.lock:
        _close_quietly(slot.session)


def _close_quietly(session: Session) -> None:
    try:
        session.close()
    except Exception:  # closing at exit must never raise; the log says what went wrong
        log.warning("closing session %s failed", getattr(session, "backend", "?"), exc_info=True)


def close_sessions() -> None:
    """Close every cached session (they reopen on the next run). Called at interpreter exit. Outputs still
    only on a device are downloaded and handed to their stores first (written by the stores' exit flush);
    closing a session spills what it still holds, too."""
    try:
        settle_all()
    except Exception:  # an exit hook must never raise; the log says what was lost
        log.warning("writing outputs still on a device failed", exc_info=True)
    with _sessions_lock:
        slots = {id(s): s for s in _sessions.values()}.values()
        _sessions.clear()
    for slot in slots:
        with slot.lock:
            _close_quietly(slot.session)


def _after_fork_in_child() -> None:
    """In a forked child the cached sessions are the parent's: forget them (hlx_core.backend keeps them from
    being closed or collected here), so the next run opens this process's own."""
    global _sessions_lock
    _sessions.clear()
    _sessions_lock = threading.RLock()  # another thread of the parent may have held it at the fork


def _before_fork() -> None:
    """A child cannot reach this process's devices: outputs still only on them are downloaded into their
    stores first (written behind, by the child's writer too), so every handle resolves on both sides."""
    try:
        settle_all()
    except Exception:
        log.warning("writing outputs still on a device before fork() failed", exc_info=True)


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


# -- running --------------------------------------------------------------------------------------------

def as_contract(contract: Any, store: Any) -> Any:
    """A contract dict from a dict, a library helper's return value, or the handle of a stored contract."""
    if isinstance(contract, str):
        if not is_handle(contract):
            raise ContractError("E_CONTRACT_STRUCTURE",
                                f"expected a contract or a contract handle, got the string {contract!r:.80}")
        value = cas.resolve(Handle(contract), store=store)
        if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)).isdigit()):
            raise ContractError("E_CONTRACT_STRUCTURE",
                                f"handle {contract} names a {type(value).__name__}, not a contract")
        return value
    if isinstance(contract, Deferred):
        raise ContractError("E_CONTRACT_STRUCTURE", f"this {contract.kernel}(...) call reads hlx.kernels.stage(i), "
                            "which only means something inside hlx.kernels.pipeline([...]); run the pipeline")
    return contract


def _execute(slot: _SessionSlot, plan: Plan, name: str, store: Any, through: bool) -> Execution:
    """Run ``plan`` on the session and check what it returned. Outputs left on the device are registered
    with ``store`` while the session's lock is still held (no other run can evict them before), or with
    ``through`` downloaded at once (the buffer stays resident for later runs)."""
    with slot.lock:
        start = time.perf_counter()
        try:
            execution = slot.session.execute(plan)
        except HLXError:
            raise
        except Exception as exc:  # a plugin bug: report it as such, never as a raw library error
            log.debug("backend %s raised", name, exc_info=True)
            raise BackendError("E_PLUGIN", f"backend {name!r} failed executing {plan.key}: "
                                           f"{type(exc).__name__}: {exc}") from exc
        host_ms = (time.perf_counter() - start) * 1e3
        if _on_device(execution, plan, name):
            for k, output in enumerate(execution.arrays):
                if isinstance(output, DeviceOutput):
                    execution.arrays[k] = _take(output, slot, store, through)
    execution.timings.setdefault("host_ms", host_ms)
    return execution


def _take(output: DeviceOutput, slot: _SessionSlot, store: Any, through: bool) -> np.ndarray | DeviceOutput:
    """A device output as the run keeps it: its array when its bytes are on the host (the device let it go
    within the run, or ``through``), else the output, now known to ``store`` (session lock held)."""
    if output.host is None and not through:
        store.put_resident(_OnDevice(output, slot))  # (a no-op for an object the store holds already)
        output.delivered = True
        return output
    return output.deliver()


def _on_device(execution: Any, plan: Plan, name: str) -> bool:
    """Whether some output of a checked execution is still on the device. The common case, host arrays of
    the planned dtypes and shapes, is settled by exact type and equality checks alone."""
    if type(execution) is Execution and execution.handles is None and len(execution.arrays) == len(plan.outputs):
        for spec, array in zip(plan.output_specs, execution.arrays):
            if type(array) is not np.ndarray or array.dtype != spec.dtype or array.shape != spec.shape:
                break
        else:
            return False
    _check_execution(execution, plan, name)
    return any(isinstance(array, DeviceOutput) for array in execution.arrays)


def _check_execution(execution: Any, plan: Plan, name: str) -> None:
    if not isinstance(execution, Execution) or len(execution.arrays) != len(plan.outputs):
        got = len(execution.arrays) if isinstance(execution, Execution) else type(execution).__name__
        raise BackendError("E_PLUGIN", f"backend {name!r} returned {got} output(s); the plan has "
                                       f"{len(plan.outputs)}")
    if execution.handles is not None and len(execution.handles) != len(plan.outputs):
        raise BackendError("E_PLUGIN", f"backend {name!r} returned {len(execution.handles)} output handle(s); "
                                       f"the plan has {len(plan.outputs)} outputs")
    for k, (spec, array) in enumerate(zip(plan.output_specs, execution.arrays)):
        resident = isinstance(array, DeviceOutput)
        if not (resident or isinstance(array, np.ndarray)) or array.dtype != spec.dtype or array.shape != spec.shape:
            shape = getattr(array, "shape", None)
            raise BackendError("E_PLUGIN", f"backend {name!r} output {k} is {getattr(array, 'dtype', '?')}"
                                           f"{shape}, the plan says {spec.dtype}{spec.shape}")
        if resident and (execution.handles is None or execution.handles[k] != array.handle):
            raise BackendError("E_PLUGIN", f"backend {name!r} left output {k} on the device without giving "
                                           "its handle in Execution.handles")


def _memoized(memo: Memo, route: _Route, plan: Plan, store: Any, salt: str) -> MemoizedRun | None:
    """The memo side of this run (``memo`` not False), or None when the default leaves it off (hlx_core/memo)."""
    entry = route.entry
    backend = entry.backend
    if memo is None:
        # The backend's declaration decides: worked out once per plan (its stages never change).
        declared = backend.deterministic_kernels
        found = plan.derived.get(("memo", route.name))
        if found is None or found[0] is not backend or found[1] is not declared:
            found = plan.derived[("memo", route.name)] = (backend, declared, enabled(None, backend, plan))
        if not found[2]:
            return None
    key, fields = route.keys.get(plan.key, backend.byte_settings, salt)
    return MemoizedRun(memo, route.name, store, plan, key, fields)


class _Route:
    """Where runs with one (backend, device) pair of arguments go: the backend's name and entry, its
    session slot and the execution keys of runs there, so a warm run neither chooses the backend nor looks
    the session up again. Valid while the registry is unchanged (``registry.generation``) and the slot is
    still the cached, unbroken one (closing, retiring and fork() all take it out of ``_sessions``)."""

    __slots__ = ("generation", "name", "entry", "key", "slot", "keys")

    def __init__(self, generation: int, name: str, entry: registry.BackendEntry, key: tuple[str, Any],
                 slot: _SessionSlot) -> None:
        self.generation, self.name, self.entry, self.key, self.slot = generation, name, entry, key, slot
        self.keys = ExecutionKeys(name, entry.version, slot.session.device)

    def valid(self) -> bool:
        return (self.generation == registry.generation() and _sessions.get(self.key) is self.slot
                and not self.slot.session.broken)


_routes: dict[tuple[str, Any], _Route] = {}
MAX_ROUTES = 64


def _route_key(backend: Any, device: Any) -> tuple[str, Any] | None:
    """The key a route is kept under: only for a str backend and a None, int or str device, by exact type
    (``device=False`` must not find the route of ``device=0``, which equals it)."""
    if type(backend) is str and (device is None or type(device) is int or type(device) is str):
        return backend, device
    return None


def _known_route(backend: Any, device: Any) -> _Route | None:
    """The route kept for these arguments, when it is still valid."""
    key = _route_key(backend, device)
    route = _routes.get(key) if key is not None else None
    return route if route is not None and route.valid() else None


def _new_route(backend: Any, device: Any, generation: int, name: str, device_arg: Any,
               slot: _SessionSlot) -> _Route:
    """The route to ``slot``, kept for the next run with these arguments."""
    route = _Route(generation, name, registry.backend_entries()[name], (name, device_arg), slot)
    key = _route_key(backend, device)
    if key is not None:
        if len(_routes) >= MAX_ROUTES:
            _routes.clear()
        _routes[key] = route
    return route


def run(contract: Any, backend: str = AUTO, device: int | str | None = None, store: Any = None, *,
        persist: bool = False, memo: Memo = None, memo_salt: str = "") -> Result:
    """Run a 901 or 902 contract and store its outputs.

    ``contract``: a contract dict, what a ``hlx.kernels`` helper returns, or the handle of a stored
    contract. ``backend``: a name from ``hlx.backends()`` or "auto". ``device``: an index (int or digit
    string), a UUID or a case-insensitive name substring, among the devices the backend lists (its default
    when None; E_DEVICE_UNKNOWN when none matches). ``store``: where inputs are read and outputs written
    (the default store when None). The contract and the outputs are hashed before ``run`` returns and
    written to the store behind it (they resolve at once in this process; ``hlx.flush()`` or interpreter
    exit makes them durable); ``persist=True`` writes them through before returning. A GPU backend may
    leave large outputs on its device (hashed there): they are downloaded only when read
    (``Result.arrays()``, ``hlx.resolve``), spilled to the store when evicted, and a later run taking their
    handles reads them where they are (docs/STORE.md, "Outputs on the device").

    ``memo`` (docs/DETERMINISM.md): True answers from the memo record of an earlier run with the same
    execution key when one checks, and records this run otherwise; False neither reads nor writes records;
    "verify" runs and compares with the record (E_NONDETERMINISTIC on a mismatch, both records kept);
    "refresh" runs and replaces the record; None (the default) is True when the backend declares every
    kernel of the contract deterministic, else False. ``memo_salt`` is part of the key: runs under
    different salts never share records."""
    start = time.perf_counter()
    if memo is not None and type(memo) is not bool:
        memo = check_mode(memo)
    if not isinstance(memo_salt, str):
        raise HLXError("E_CONFIG", f"memo_salt must be a str, got {type(memo_salt).__name__}")
    store = store if store is not None else cas.get_default_store()
    route = _known_route(backend, device)
    if route is not None:  # a warm run: the backend and session as the last run with these arguments had them
        plan = make_plan(as_contract(contract, store), store, behind=not persist, persist=persist)
    else:
        generation = registry.generation()
        name, device_arg = _choose(backend, device)
        plan = make_plan(as_contract(contract, store), store, behind=not persist, persist=persist)
        route = _new_route(backend, device, generation, name, device_arg, _session(name, device_arg))
    name, slot = route.name, route.slot
    device_name = slot.session.device.name
    debug = log.isEnabledFor(DEBUG)
    if debug:
        log.debug("%s runs on backend %s, device %s (%s)", plan.key, name, device_name,
                  "the best ranked available" if backend == AUTO else "as asked")
    memoized = None if memo is False else _memoized(memo, route, plan, store, memo_salt)
    if memoized is not None:
        looked = time.perf_counter()
        hit = memoized.lookup()
        if hit is not None:
            if debug:
                log.debug("memo hit for %s: execution key %s", plan.key, memoized.key)
            if persist:  # the record's outputs may still be on their way to the store from an earlier run
                store.flush()
            now = time.perf_counter()
            timings = {"memo_ms": (now - looked) * 1e3, "total_ms": (now - start) * 1e3}
            return Result.made(hit.outputs, name, device_name, timings, plan.key, hit.arrays, True, memoized.key,
                               store)
    for ref in plan.input_refs.values():
        if ref.loaded is None and not slot.session.holds(ref.handle):
            ref.array  # on another device: downloaded now, outside this session's lock  # noqa: B018
    execution = _execute(slot, plan, name, store, persist or not writes_behind())
    handles = execution.handles or [None] * len(execution.arrays)
    arrays: list[np.ndarray | None] = []
    outputs = []
    behind = not persist
    for array, handle in zip(execution.arrays, handles):
        if type(array) is not np.ndarray and isinstance(array, DeviceOutput):
            arrays.append(None)  # on the device, known to the store: nothing crosses to the host
            outputs.append(array.handle)
            continue
        if not array.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into shape (1,))
            array = array.copy(order="C")
        array.flags.writeable = False
        arrays.append(array)
        outputs.append(cas.collapse(array, store=store, behind=behind, handle=handle))
    timings = {k: float(v) for k, v in execution.timings.items()}
    if memoized is not None:
        memoized.finish(outputs, slot.session.device, timings, behind=behind)
    timings["total_ms"] = (time.perf_counter() - start) * 1e3
    return Result.made(outputs, name, device_name, timings, plan.key, arrays, False,
                       memoized.key if memoized is not None else None, store)
