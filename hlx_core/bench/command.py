"""``hlx bench SUITE...``: the parser's options, their checks (E_USAGE), and the run: header, cases with
progress, a table per suite, notes, then the CSV and plots asked for."""
from __future__ import annotations

import argparse
import platform
import re
import sys
from pathlib import Path

import numpy as np

from hlx_core.bench import plots, report
from hlx_core.bench.harness import Bench, Options, driver_of
from hlx_core.bench.suites import SUITES
from hlx_core.errors import HLXError
from hlx_core.progress import each
from hlx_core.version import package_version

ALL = "all"
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` subcommand (values are checked by ``options``, so a bad one is a coded error)."""
    p = sub.add_parser("bench", help="benchmarks against torch/cuBLAS, CuPy and NumPy in the same run: "
                                     f"{'|'.join(SUITES)}|{ALL}",
                       description="Measure HLX against its peers in one process and print a table per suite; "
                                   "--csv writes one row per case and implementation, --plot PNGs. --sizes is "
                                   "each suite's own: N of N^3 (gemm, warmstart, power), elements (stream, "
                                   "dispatch), batch sizes (batch).")
    p.add_argument("suite", nargs="+", help=f"one or more of {', '.join(SUITES)}, or {ALL}")
    p.add_argument("--backend", default="auto", help="HLX backend (default auto: the one hlx.run picks)")
    p.add_argument("--device", default=None, help="device of that backend (index, name or UUID)")
    p.add_argument("--sizes", nargs="+", default=None, metavar="N",
                   help="sizes in place of each suite's defaults (integers; K, M, G: binary multiples; commas too)")
    p.add_argument("--repeat", default=None, metavar="N", help="timed samples per case (default: each suite's)")
    p.add_argument("--warmup", default=None, metavar="N", help="untimed samples before them (default 2, quick 1)")
    p.add_argument("--csv", default=None, metavar="PATH", help="write the rows as CSV")
    p.add_argument("--plot", default=None, metavar="DIR", help="write PNG plots there (needs hlx[plot])")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (a CPU device, CI)")
    p.set_defaults(func=cmd_bench)


def _count(text: str, what: str, low: int) -> int:
    if not re.fullmatch(r"\d+", text.strip()) or int(text) < low:
        raise HLXError("E_USAGE", f"{what} must be an integer >= {low}, got {text!r}")
    return int(text)


def parse_sizes(values: list[str]) -> tuple[int, ...]:
    """``["1024", "2k,4K", "64M"]`` -> (1024, 2048, 4096, 67108864); E_USAGE for anything else or < 1."""
    sizes = []
    for item in (part for value in values for part in value.split(",") if part.strip()):
        m = _SIZE.match(item.strip())
        if m is None or int(m.group(1)) < 1:
            raise HLXError("E_USAGE", f"--sizes takes integers >= 1 (K, M, G: binary multiples), got {item!r}")
        sizes.append(int(m.group(1)) * _UNITS[m.group(2).lower()])
    if not sizes:
        raise HLXError("E_USAGE", "--sizes needs at least one size")
    return tuple(sizes)


def options(args: argparse.Namespace) -> Options:
    """The checked options of ``hlx bench`` (E_USAGE naming the first bad one)."""
    names = [s for value in args.suite for s in value.split(",") if s]
    unknown = [s for s in names if s not in SUITES and s != ALL]
    if unknown or not names:
        raise HLXError("E_USAGE", f"unknown benchmark suite {', '.join(map(repr, unknown)) or repr('')}; "
                                  f"choose from {', '.join(SUITES)} or {ALL}")
    suites = tuple(SUITES) if ALL in names else tuple(dict.fromkeys(names))
    return Options(suites=suites, backend=args.backend, device=args.device,
                   sizes=parse_sizes(args.sizes) if args.sizes is not None else None,
                   repeat=_count(args.repeat, "--repeat", 1) if args.repeat is not None else None,
                   warmup=_count(args.warmup, "--warmup", 0) if args.warmup is not None else None,
                   quick=args.quick)


def header(bench: Bench) -> list[str]:
    """What ran where: HLX's backend and device, the peers, the date, and when there is no GPU, that."""
    dev = bench.device
    lines = [f"hlx bench {' '.join(bench.options.suites)}{' --quick' if bench.options.quick else ''}: HLX "
             f"{package_version()} on {bench.backend}, {dev.name} ({dev.kind}), driver {driver_of(dev)}; "
             f"{bench.date}; Python {platform.python_version()}, NumPy {np.__version__}"]
    lines += [f"peer {p.impl}: {p.device}, driver {p.driver} ({p.clock})" for p in bench.peers]
    if not dev.is_gpu:
        lines.append(f"no GPU here: HLX runs on {dev.name}, a {dev.kind} device; the figures show that each suite "
                     "runs, not what a GPU does")
    return lines


def cmd_bench(args: argparse.Namespace) -> int:
    opts = options(args)
    if args.plot is not None:
        plots.check_available()
    bench = Bench(opts)
    try:
        for line in header(bench):
            print(line, flush=True)
        title = f"{bench.device.name}, {bench.date}"
        cases = [case for suite in opts.suites for case in SUITES[suite].cases(bench)]
        bench.warm_up()
        rows: list[report.Row] = []
        for case in each(cases, lambda c: f"{c.suite}: {c.name}"):
            rows.extend(case.run())
    finally:
        bench.close()
    report.with_ratios(rows)
    for suite in opts.suites:
        suite_rows = [r for r in rows if r.suite == suite]
        if suite_rows:
            print(f"\n{suite}")
            report.print_table(suite_rows, sys.stdout)
    for note in bench.notes:
        print(f"note: {note}")
    if args.csv is not None:
        report.write_csv(rows, Path(args.csv))
        print(f"wrote {len(rows)} rows to {args.csv}")
    if args.plot is not None:
        for path in plots.write(rows, Path(args.plot), title):
            print(f"wrote {path}")
    return 0
