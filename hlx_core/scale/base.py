"""What every place to run contracts offers: ``submit`` returning a ``concurrent.futures.Future`` of an
``hlx.Result``, ``run_many`` in input order, and a context manager that closes it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from concurrent.futures import Future, as_completed
from typing import Any

from hlx_core.cas.store import Store
from hlx_core.errors import HLXError
from hlx_core.memo.policy import Memo
from hlx_core.progress import progress as show_progress
from hlx_core.runtime import AUTO, Result


class Executor(ABC):
    """Runs contracts somewhere; results, handles and memo keys do not depend on where. ``store`` is where
    inputs are read and outputs end up (as for ``hlx.run``)."""

    store: Store
    closed: bool = False

    @abstractmethod
    def _submit(self, contract: Any, backend: str, memo: Memo, memo_salt: str) -> Future[Result]:
        """Start one contract; the Future's result is what ``hlx.run`` would return for it."""

    @abstractmethod
    def _close(self) -> None:
        """Release threads, clients and clusters this executor started."""

    def submit(self, contract: Any, backend: str = AUTO, *, memo: Memo = None, memo_salt: str = "") -> Future[Result]:
        """Start ``contract`` (a dict, a helper's return value or a stored contract's handle) and return its
        Future at once; ``.result()`` is its ``hlx.Result`` or raises the HLXError ``hlx.run`` would."""
        if self.closed:
            raise HLXError("E_EXECUTOR", f"{self!r} is closed")
        return self._submit(contract, backend, memo, memo_salt)

    def run_many(self, contracts: Iterable[Any], backend: str = AUTO, *, memo: Memo = None,
                 memo_salt: str = "", progress: bool = False) -> list[Result]:
        """Every contract's Result, in input order (all are submitted before the first is awaited);
        ``progress`` shows on stderr how many have finished."""
        futures = [self.submit(c, backend, memo=memo, memo_salt=memo_salt) for c in contracts]
        if progress:
            order = {f: k for k, f in enumerate(futures)}
            with show_progress(len(futures), counts="finished") as step:
                for f in as_completed(futures):
                    step(f"contract {order[f]} done")
        return [f.result() for f in futures]

    def close(self) -> None:
        """Finish what was submitted and release everything; idempotent."""
        if not self.closed:
            self.closed = True
            self._close()

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
