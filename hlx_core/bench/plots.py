"""PNG plots of a run's rows: one per suite and unit, the cases along x, one bar per implementation
(mean, with the standard deviation as an error bar). matplotlib is an optional extra:
``pip install 'hlx[plot]'``."""
from __future__ import annotations

import re
from pathlib import Path

from hlx_core.bench.report import HIGHER_IS_BETTER, Row
from hlx_core.errors import HLXError


def check_available() -> None:
    """E_DEPENDENCY before anything runs when ``--plot`` is asked for without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise HLXError("E_DEPENDENCY", "hlx bench --plot needs matplotlib: pip install 'hlx[plot]'") from None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def write(rows: list[Row], folder: Path, title: str) -> list[Path]:
    """One PNG per (suite, unit) of ``rows`` in ``folder`` (made if missing); their paths."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HLXError("E_IO", f"cannot make the plot folder {str(folder)!r}: {exc.strerror or exc}") from None
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.suite, row.unit), []).append(row)
    written = []
    for (suite, unit), group in groups.items():
        cases = list(dict.fromkeys(r.case for r in group))
        impls = list(dict.fromkeys(r.impl for r in group))
        width = 0.8 / len(impls)
        fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(cases) + 2), 4.5))
        for i, impl in enumerate(impls):
            by_case = {r.case: r for r in group if r.impl == impl}
            xs = [c for c, case in enumerate(cases) if case in by_case]
            ax.bar([x + (i - (len(impls) - 1) / 2) * width for x in xs],
                   [by_case[cases[x]].stats.mean for x in xs], width,
                   yerr=[by_case[cases[x]].stats.std for x in xs], capsize=2, label=impl)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=8)
        better = "higher" if unit in HIGHER_IS_BETTER else "lower"
        ax.set_ylabel(f"{unit} ({better} is better)")
        ax.set_title(f"hlx bench {suite}: {title}", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{suite}-{_slug(unit.replace('µ', 'u'))}.png"
        try:
            fig.savefig(path, dpi=110)
        except OSError as exc:
            raise HLXError("E_IO", f"cannot write the plot {str(path)!r}: {exc.strerror or exc}") from None
        finally:
            plt.close(fig)
        written.append(path)
    return written
