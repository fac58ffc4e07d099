"""The scale-out API: ``hlx.executor``, ``hlx.run_many`` and ``hlx.as_completed``.

Where contracts run is a spec: ``"local"`` (this process, one worker thread per device; the default),
``"dask+local://?workers=N"`` (a LocalCluster of N processes, for tests and laptops), ``"dask://host:port"``
(a running scheduler), or a ``distributed.Client``; ``HLX_CLUSTER`` gives the spec when none is passed.
Results, handles and memo keys do not depend on where a contract ran.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import as_completed as _as_completed
from typing import Any

from hlx_core.cas.store import Store
from hlx_core.errors import HLXError
from hlx_core.memo.policy import Memo
from hlx_core.runtime import AUTO, Result
from hlx_core.scale.base import Executor
from hlx_core.scale.local import LocalExecutor
from hlx_core.scale.shared_store import open_store

ENV_CLUSTER = "HLX_CLUSTER"
LOCAL = "local"


def default_spec() -> str:
    """``HLX_CLUSTER`` when set (and not empty), else ``"local"``."""
    return os.environ.get(ENV_CLUSTER, "").strip() or LOCAL


def executor(spec: Any = None, store: Store | str | None = None) -> Executor:
    """An executor for ``spec`` (see the module's docstring); use it as a context manager, which closes
    it (and any cluster it started). ``store``: where inputs are read and outputs stored, a Store or an
    fsspec URL of a store the whole cluster shares (``file:///mnt/hlx``, ``s3://bucket/hlx``); the default
    store when None."""
    spec = default_spec() if spec is None else spec
    opened = open_store(store)
    if isinstance(spec, str):
        if spec == LOCAL:
            return LocalExecutor(opened)
        if spec.startswith("dask+local://"):
            dask_executor = _dask()
            return dask_executor.DaskExecutor.local(dask_executor.parse_local(spec), opened)
        if spec.startswith("dask://"):
            dask_executor = _dask()
            return dask_executor.DaskExecutor.connect("tcp://" + spec.removeprefix("dask://"), opened)
        raise HLXError("E_EXECUTOR", f"unknown executor {spec!r}: expected 'local', 'dask+local://?workers=N', "
                                     f"'dask://host:port' or a distributed.Client (also as {ENV_CLUSTER})")
    if type(spec).__name__ == "Client" and hasattr(spec, "scheduler_info"):
        return _dask().DaskExecutor(spec, opened)
    raise HLXError("E_EXECUTOR", f"an executor spec is a str or a distributed.Client, got {type(spec).__name__}")


def _dask() -> Any:
    """The Dask executor's module, or E_DEPENDENCY when distributed is not installed."""
    try:
        from hlx_core.scale import dask_executor
    except ImportError as exc:
        raise HLXError("E_DEPENDENCY", f"a Dask executor needs distributed: pip install 'hlx[dist]' ({exc})") from exc
    return dask_executor


def run_many(contracts: Iterable[Any], backend: str = AUTO, executor: Executor | Any = None, *,
             memo: Memo = None, memo_salt: str = "", store: Store | str | None = None,
             progress: bool = False) -> list[Result]:
    """Every contract's Result in input order, run where ``executor`` says: an Executor (left open), or a
    spec for one made and closed here (None: ``HLX_CLUSTER``, else local). ``progress`` shows on stderr
    how many contracts have finished (a bar on a terminal, a line each otherwise)."""
    if isinstance(executor, Executor):
        return executor.run_many(contracts, backend, memo=memo, memo_salt=memo_salt, progress=progress)
    with _make(executor, store) as made:
        return made.run_many(contracts, backend, memo=memo, memo_salt=memo_salt, progress=progress)


def _make(spec: Any, store: Store | str | None) -> Executor:
    """``executor(spec, store)``, under a name run_many's ``executor`` argument does not hide."""
    return executor(spec, store)


def as_completed(futures: Iterable[Future[Result]], timeout: float | None = None) -> Iterator[Future[Result]]:
    """The futures as they finish (``concurrent.futures.as_completed``: executors' futures are theirs)."""
    return _as_completed(futures, timeout=timeout)
