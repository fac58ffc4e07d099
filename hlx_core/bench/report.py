"""The rows of a benchmark run: printed as a table, written as CSV, and the ratio of each HLX row to the
peer of its case.

One row per (case, implementation). ``ratio`` is the HLX row's mean over its case's peer row's mean in
the row's unit: above 1 is faster for a throughput (TFLOP/s, GB/s), slower for a time or an energy
(µs, ms, s, J). The peer of a case is its first peer row (torch before cupy before numpy); peer rows
carry no ratio.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from hlx_core.bench.timing import Stats
from hlx_core.errors import HLXError

COLUMNS = ("suite", "case", "impl", "clock", "device", "driver", "date", "n", "mean", "std", "min", "max",
           "unit", "ratio", "vs")
HIGHER_IS_BETTER = frozenset({"TFLOP/s", "GB/s"})


@dataclass
class Row:
    """One measured implementation of one case. ``peer`` marks the rows HLX is compared with."""

    suite: str
    case: str
    impl: str
    clock: str
    device: str
    driver: str
    stats: Stats
    unit: str
    peer: bool = False
    ratio: float | None = None
    vs: str = ""
    date: str = field(default="")

    def values(self) -> dict[str, str]:
        s = self.stats
        return {"suite": self.suite, "case": self.case, "impl": self.impl, "clock": self.clock,
                "device": self.device, "driver": self.driver, "date": self.date, "n": str(s.n),
                "mean": _num(s.mean), "std": _num(s.std), "min": _num(s.min), "max": _num(s.max),
                "unit": self.unit, "ratio": "" if self.ratio is None else _num(self.ratio), "vs": self.vs}


def _num(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.6g}"


def with_ratios(rows: list[Row]) -> list[Row]:
    """``rows`` with each HLX row's ratio against the first peer row of its (suite, case)."""
    first_peer: dict[tuple[str, str], Row] = {}
    for row in rows:
        if row.peer:
            first_peer.setdefault((row.suite, row.case), row)
    for row in rows:
        ref = first_peer.get((row.suite, row.case))
        if not row.peer and ref is not None and ref.stats.mean and not math.isnan(ref.stats.mean):
            row.ratio, row.vs = row.stats.mean / ref.stats.mean, ref.impl
    return rows


def write_csv(rows: list[Row], path: Path) -> None:
    """The rows as CSV with a header line of COLUMNS (E_IO when the file cannot be written)."""
    try:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(row.values())
    except OSError as exc:
        raise HLXError("E_IO", f"cannot write the CSV {str(path)!r}: {exc.strerror or exc}") from None


def print_table(rows: list[Row], out: TextIO) -> None:
    """The rows of one suite as aligned text: case, impl, mean ± std [min, max] unit, ratio."""
    if not rows:
        return
    case_w = max(len(r.case) for r in rows)
    impl_w = max(len(r.impl) for r in rows)
    for row in rows:
        s = row.stats
        ratio = f"{row.ratio:6.2f}x vs {row.vs}" if row.ratio is not None else ""
        print(f"  {row.case:<{case_w}}  {row.impl:<{impl_w}}  {s.mean:10.4g} ± {s.std:<9.3g} "
              f"[{s.min:.4g}, {s.max:.4g}] {row.unit:<8} {ratio}", file=out)
