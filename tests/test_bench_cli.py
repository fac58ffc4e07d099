"""``hlx bench``: every suite that can run here (lavapipe, the cpu backend) runs with --quick and tiny sizes
and writes a well-formed CSV, one row per case and implementation; bad suites and options are coded
errors; a wrong result is refused, not timed; plots are PNGs where matplotlib is installed. No figure is
asserted: speed is the benchmarks' business, not the tests'."""
from __future__ import annotations

import csv
import math
import re
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

from hlx_core.bench import nvml, report
from hlx_core.bench.command import parse_sizes
from hlx_core.bench.report import COLUMNS, Row
from hlx_core.bench.suites import gemm as gemm_suite
from hlx_core.bench.timing import Stats
from hlx_core.cli import main
from hlx_core.errors import HLXError

DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _bench(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    for row in rows:
        assert all(row[k] for k in ("suite", "case", "impl", "clock", "device", "driver", "unit")), row
        assert DATE.match(row["date"]), row
        assert int(row["n"]) >= 1
        mean, std, low, high = (float(row[k]) for k in ("mean", "std", "min", "max"))
        assert all(math.isfinite(v) for v in (mean, std, low, high)) and std >= 0, row
        assert low <= mean * (1 + 1e-9) and mean <= high * (1 + 1e-9), row
        assert row["ratio"] == "" or float(row["ratio"]) > 0
        assert (row["ratio"] == "") == (row["vs"] == ""), row
    keys = [(r["suite"], r["case"], r["impl"]) for r in rows]
    assert len(keys) == len(set(keys)), "one row per case and implementation"
    return rows


def _half_dtypes() -> list[str]:
    found = []
    for name in ("float16", "bfloat16"):
        dtype = gemm_suite.numpy_dtype(name)
        try:
            gemm_suite.gemm(np.ones((2, 2), dtype), np.ones((2, 2), dtype))
        except HLXError:
            continue
        found.append(name)
    return found


# suite -> (arguments, the cases its rows must name)
SUITES = {
    "gemm": (["--sizes", "24", "40"], lambda: {f"{d} {n}^3" for d in ["float32", *_half_dtypes()] for n in (24, 40)}),
    # softmax over whole rows of 1024, transpose of the squarest 54 x 55
    "stream": (["--sizes", "3000"], lambda: {"add 3000", "mul 3000", "saxpy 3000", "relu 3000", "softmax 2048",
                                             "transpose 2970", "reduce_sum 3000",
                                             "conv2d x[2, 8, 16, 16] w[8, 8, 3, 3]"}),
    "dispatch": (["--sizes", "256", "--repeat", "2"], lambda: {"add 256 to host", "add 256 on device"}),
    "warmstart": (["--sizes", "32", "--repeat", "1"],
                  lambda: {f"{k} 32^3, {m}" for k in ("warm", "cold") for m in ("process", "to result")}),
    "batch": (["--sizes", "1", "5"], lambda: {f"batch {b}, {k} run" for b in (1, 5) for k in ("first", "warm")}),
}


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_a_suite_runs_here_and_writes_one_row_per_case(suite, capsys, tmp_path):
    args, cases = SUITES[suite]
    path = tmp_path / "out.csv"
    code, out, err = _bench(capsys, suite, "--quick", "--warmup", "1", *args, "--csv", str(path))
    assert code == 0, err
    assert "no GPU here" in out or "gpu" in out  # the header says what it ran on
    rows = _rows(path)
    assert {r["suite"] for r in rows} == {suite}
    assert {r["case"] for r in rows} == cases()
    hlx_rows = [r for r in rows if r["impl"].startswith("hlx ")]
    assert {r["case"] for r in hlx_rows} == cases(), "HLX measured in every case"
    assert f"wrote {len(rows)} rows" in out


def test_the_cpu_backend_is_timed_by_the_wall_clock(capsys, tmp_path):
    path = tmp_path / "cpu.csv"
    code, out, err = _bench(capsys, "gemm", "--backend", "cpu", "--quick", "--sizes", "16", "--csv", str(path))
    assert code == 0, err
    ours = [r for r in _rows(path) if r["impl"] == "hlx cpu"]
    assert ours and {r["clock"] for r in ours} == {"wall"}
    assert "hlx cpu" in out and "on cpu" in out


def test_power_says_why_it_skips_without_nvml(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(nvml, "library", lambda: None)
    path = tmp_path / "power.csv"
    code, out, err = _bench(capsys, "power", "--quick", "--csv", str(path))
    assert code == 0, err
    assert "power: skipped, NVML is not available" in out
    assert _rows(path) == []


def test_the_device_warms_up_after_the_header_and_right_before_the_first_case(monkeypatch):
    """The warm-up runs once, after the header (and the peers it starts) and before any case: warmed when the
    session opened, a GPU idled through the header and its first case ran at half speed."""
    import dataclasses

    from hlx_core.bench import command, harness

    events: list[str] = []
    real_header, real_cases = command.header, gemm_suite.cases

    def header(bench):
        lines = real_header(bench)
        events.append("header")
        return lines

    def cases(bench):
        return [dataclasses.replace(c, run=lambda run=c.run: events.append("case") or run()) for c in real_cases(bench)]

    monkeypatch.setattr(command, "header", header)
    monkeypatch.setattr(gemm_suite, "cases", cases)
    monkeypatch.setattr(harness.Bench, "warm_up", lambda self: events.append("warm-up"))
    assert main(["bench", "gemm", "--quick", "--sizes", "8,16"]) == 0
    assert events[:2] == ["header", "warm-up"] and len(events) > 3 and set(events[2:]) == {"case"}


def test_a_wrong_result_is_refused_not_timed(capsys, monkeypatch):
    """The gemm suite checks HLX's product against float64 before timing it: a contract for b @ a fails."""
    real = gemm_suite.gemm
    monkeypatch.setattr(gemm_suite, "gemm", lambda a, b, store=None: real(b, a, store=store))
    code, _, err = _bench(capsys, "gemm", "--quick", "--sizes", "8")
    assert code == 1 and "error [E_BENCH]" in err and "differs from NumPy's float64" in err


@pytest.mark.parametrize("argv", [
    ["nosuch"], ["gemm,nosuch"], [""],
    ["gemm", "--sizes", "0"], ["gemm", "--sizes", "abc"], ["gemm", "--sizes", "-3"], ["gemm", "--sizes", ","],
    ["gemm", "--repeat", "0"], ["gemm", "--repeat", "x"], ["gemm", "--warmup", "-1"],
])
def test_bad_suites_and_options_are_usage_errors(argv, capsys):
    code, out, err = _bench(capsys, *argv)
    assert code == 1 and "error [E_USAGE]" in err, err
    assert out == "", "nothing runs before the options are checked"


def test_an_unwritable_csv_is_an_io_error(capsys, tmp_path):
    code, _, err = _bench(capsys, "dispatch", "--quick", "--repeat", "1", "--csv", str(tmp_path / "no" / "x.csv"))
    assert code == 1 and "error [E_IO]" in err


def test_plots_are_pngs(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "plots"
    code, out, err = _bench(capsys, "dispatch", "batch", "--quick", "--repeat", "2", "--sizes", "2",
                            "--plot", str(folder))
    assert code == 0, err
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == ["batch-ms.png", "dispatch-us.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    assert all(f"wrote {p}" in out for p in pngs)


def test_plot_without_matplotlib_names_the_extra(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    code, out, err = _bench(capsys, "dispatch", "--plot", str(tmp_path))
    assert code == 1 and "error [E_DEPENDENCY]" in err and "hlx[plot]" in err and out == ""


def test_sizes_take_binary_units_and_commas():
    assert parse_sizes(["1024", "2k,4K", "64M", "1g"]) == (1024, 2048, 4096, 64 << 20, 1 << 30)


def test_stats_and_ratios(rng):
    values = list(rng.random(7) + 0.5)
    s = Stats.of(values)
    assert (s.mean, s.std, s.min, s.max, s.n) == (statistics.fmean(values), statistics.stdev(values), min(values),
                                                  max(values), 7)
    assert Stats.of([3.0]).std == 0.0

    def row(case: str, impl: str, mean: float, peer: bool) -> Row:
        return Row("s", case, impl, "wall", "d", "v", Stats(mean, 0.0, mean, mean, 1), "ms", peer=peer)

    rows = report.with_ratios([row("a", "hlx", 3.0, False), row("a", "torch", 2.0, True), row("a", "numpy", 6.0, True),
                               row("b", "hlx", 1.0, False)])
    assert (rows[0].ratio, rows[0].vs) == (1.5, "torch"), "against the first peer of the case"
    assert rows[1].ratio is None and rows[2].ratio is None and rows[3].ratio is None
