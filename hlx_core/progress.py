"""Progress of long work on stderr (a benchmark's cases, ``hlx.run_many``'s contracts): rich's bar on a
terminal (rich is a dependency of HLX), one plain line per step otherwise (a log file or CI keeps a
readable record, no control codes)."""
from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Callable, TypeVar

T = TypeVar("T")


@contextmanager
def progress(total: int, counts: str = "started") -> Iterator[Callable[[str], None]]:
    """A context giving ``step(label)``, called as each of ``total`` steps starts (``counts="started"``:
    the bar counts the steps before it) or as each finishes (``counts="finished"``: it counts this one)."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        bar = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=Console(stderr=True), transient=True)
        task = bar.add_task("", total=total)
        started = [False]

        def step(label: str) -> None:
            if started[0] or counts == "finished":
                bar.advance(task)
            started[0] = True
            bar.update(task, description=label)

        with bar:
            yield step
        return
    done = [0]

    def line(label: str) -> None:
        done[0] += 1
        print(f"[{done[0]}/{total}] {label}", file=sys.stderr, flush=True)

    yield line


def each(items: Sequence[T], label: Callable[[T], str]) -> Iterator[T]:
    """``items`` one by one, the progress shown as each starts."""
    with progress(len(items)) as step:
        for item in items:
            step(label(item))
            yield item
