"""The ``hlx`` command line: devices, plugins, run, demo, cache, verify-determinism, shader pack.

Every HLXError ends the command with ``error [E_CODE]: message`` on stderr and exit status 1 (no
traceback); usage errors exit with 2, as argparse does.

``hlx run FILE`` reads a contract as LC-B bytes or as JSON, whose one-key maps ``$bytes``, ``$file``,
``$tensor`` and ``$npy`` stand for bytes and tensors (hlx_core/input_files.py, which also bounds what is read:
regular files only, at most the codec's size limit, named files confined to the contract's folder and the
``--allow-path`` folders).

Handles are written as plain strings (``"&h_tensor_…"``). ``hlx run`` prints plain lines and never imports
rich, so a run from the shell costs what the run costs; the listing commands print rich tables.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from hlx_core import parity_cli, runtime
from hlx_core.cas import api as cas
from hlx_core.determinism import cmd_verify_determinism
from hlx_core.errors import HLXError, SpirvError
from hlx_core.input_files import load_contract, read_file, read_text
from hlx_core.registry import ALLOWLIST_ENV
from hlx_core.settings import hlx_home, parse_bytes

if TYPE_CHECKING:
    from rich.console import Console

# -- commands ------------------------------------------------------------------------------------------

def _console() -> Console:
    """rich's console, for the commands that print tables (rich is imported by them alone). Handles are
    long: never wrap them when the output goes to a file or a pipe."""
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else 200)


def _backend_table(title: str, columns: Sequence[str], rows: Callable[[dict], list[tuple[str, ...]]]) -> int:
    """Print ``rows(info)`` for every entry of ``runtime.backend_info()`` as one table (``devices`` and
    ``plugins``), with a hint when there is nothing to list."""
    from rich.table import Table
    console = _console()
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    infos = runtime.backend_info()
    for info in infos:
        for row in rows(info):
            table.add_row(*row)
    console.print(table)
    if not infos:
        console.print("no backend plugins were loaded: HLX_PLUGINS is set to an empty string"
                      if os.environ.get(ALLOWLIST_ENV) is not None else
                      "no backend plugins are installed (entry-point group hlx.backends)", markup=False)
    return 0


def _device_rows(info: dict) -> list[tuple[str, ...]]:
    from rich.markup import escape
    if not info["available"]:
        return [(escape(info["name"]), "-", "-", "-", f"[red]unavailable[/]: {escape(str(info['reason']))}")]
    return [(escape(info["name"]), str(d["index"]), escape(d["name"]), d["kind"], "[green]available[/]")
            for d in info["devices"] or [{"index": "-", "name": "(default)", "kind": "-"}]]


def _plugin_rows(info: dict) -> list[tuple[str, ...]]:
    from rich.markup import escape
    if "error" in info:
        status = f"[red]failed ({info['stage']})[/]: {escape(info['error'])}"
    elif info["available"]:
        status = f"[green]available[/] ({len(info['devices'])} device(s))"
    else:
        status = f"[yellow]unavailable[/]: {escape(str(info['reason']))}"
    # A failed plugin without a distribution is an HLX_PLUGINS name with no entry point, not code.
    distribution = info["distribution"] or ("-" if "error" in info else "(registered in code)")
    return [(escape(info["name"]), escape(info["plugin"]), escape(distribution), escape(info["version"]), status)]


def cmd_devices(args: argparse.Namespace) -> int:
    return _backend_table("HLX backends and devices", ("backend", "device", "name", "kind", "status"), _device_rows)


def cmd_plugins(args: argparse.Namespace) -> int:
    return _backend_table("HLX plugins (entry-point group hlx.backends)",
                          ("backend", "plugin", "distribution", "version", "status"), _plugin_rows)


def cmd_run(args: argparse.Namespace) -> int:
    store = cas.get_default_store()
    contract = load_contract(args.file, store, args.allow_path)
    result = runtime.run(contract, backend=args.backend, device=args.device, store=store)
    memo = ", answered from its memo record" if result.memo_hit else ""
    print(f"ran {result.contract} on {result.backend} ({result.device}){memo}")
    for i, (handle, array) in enumerate(zip(result.outputs, result.arrays())):
        print(f"output {i}: {handle} {array.dtype}{list(array.shape)}")
    print("timings: " + ", ".join(f"{k} {v:.3f} ms" for k, v in sorted(result.timings.items())))
    if args.print:
        for i, array in enumerate(result.arrays()):
            print(f"array {i}:\n{np.array2string(array, threshold=200)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hlx_core.demo import run_demo
    rows = run_demo(size=args.size, backends=args.backend, console=_console())
    return 0 if rows and all(r.match for r in rows) else 1


def cmd_cache(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table
    console = _console()
    store = cas.get_default_store()
    if args.action == "stats":
        stats = store.stats()
        table = Table(title=escape(f"HLX_HOME = {hlx_home()}"))
        for col, justify in (("what", "left"), ("files", "right"), ("size", "right")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        table.add_row(escape(f"store {store!r}"), f"{stats['objects']} object(s)", _size(stats["bytes"]))
        if "temp_files" in stats:
            table.add_row("store temp files (writes in progress, or left by a killed writer)",
                          str(stats["temp_files"]), _size(stats["temp_bytes"]))
        cap = getattr(store, "max_bytes", None)
        if cap is not None:
            table.add_row("store cap (HLX_STORE_MAX_BYTES)", "-", _size(cap) if cap else "none")
        for name, files, size in _other_caches(hlx_home(), store):
            table.add_row(escape(name), str(files), _size(size))
        console.print(table)
    elif args.action == "gc":
        if args.max_bytes is None:
            raise HLXError("E_USAGE", "hlx cache gc needs --max-bytes N (evicts least recently used first)")
        from hlx_core.memo import records as memo
        removed, dropped = memo.gc(store, args.max_bytes, keep_memo=args.keep_memo, grace_seconds=args.grace_seconds)
        stats = store.stats()
        temps = f", {stats['temp_files']} temp file(s)" if "temp_files" in stats else ""
        kept = "what memo records name is kept" if args.keep_memo else f"{dropped} memo record(s) dropped"
        console.print(f"removed {len(removed)} object(s); {stats['objects']} left, {_size(stats['bytes'])}{temps} "
                      f"(objects used in the last {args.grace_seconds:g} s are kept; {kept})", markup=False)
    else:
        from hlx_core.memo import records as memo
        console.print(f"removed {store.clear()} object(s) and {memo.clear(store)} memo record(s) from {store!r}",
                      markup=False)
    return 0


def _other_caches(home: Path, store: Any) -> list[tuple[str, int, int]]:
    """(folder, files, bytes) for what else lies under ``home`` (the backends' pipeline caches), leaving out
    the default store's own folder."""
    store_dir = getattr(store, "path", None)
    found = []
    for folder in sorted(p for p in home.glob("*") if p.is_dir()):
        if store_dir is not None and folder.resolve() == Path(store_dir).resolve() / "objects":
            continue
        sizes = [f.stat().st_size for f in folder.rglob("*") if f.is_file()]
        found.append((f"{folder.name}/", len(sizes), sum(sizes)))
    return found


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# Suffixes glslangValidator reads the shader stage from; any other GLSL file is compiled as a compute shader.
GLSL_STAGE_SUFFIXES = {".comp", ".vert", ".tesc", ".tese", ".geom", ".frag", ".mesh", ".task", ".rgen",
                       ".rint", ".rahit", ".rchit", ".rmiss", ".rcall"}
SPIRV_MAGIC = (b"\x03\x02\x23\x07", b"\x07\x23\x02\x03")  # little- and big-endian words


def compile_glsl(source: Path) -> bytes:
    """Compile a GLSL shader with glslangValidator (Debian package glslang-tools), as ``make shaders`` does;
    a file whose suffix names no stage (``.glsl``, say) is compiled as a compute shader."""
    tool = shutil.which("glslangValidator")
    if tool is None:
        raise SpirvError("E_SPIRV_COMPILE", "glslangValidator not found; install it with "
                                            "`apt-get install glslang-tools`")
    stage = [] if source.suffix in GLSL_STAGE_SUFFIXES else ["-S", "comp"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "shader.spv"
        proc = subprocess.run([tool, "-V", "--target-env", "vulkan1.1", *stage, "-o", str(out), str(source)],
                              capture_output=True, text=True, errors="replace")
        if proc.returncode != 0:
            raise SpirvError("E_SPIRV_COMPILE", f"glslangValidator failed on {source}:\n"
                                                f"{(proc.stdout + proc.stderr).strip()}")
        return out.read_bytes()


def cmd_shader_pack(args: argparse.Namespace) -> int:
    from hlx_core.contracts.shader import shader_contract
    source = Path(args.file)
    data = read_file(source)
    spirv = data if source.suffix == ".spv" or data[:4] in SPIRV_MAGIC else compile_glsl(source)
    wgsl = read_text(Path(args.wgsl)) if args.wgsl else None
    contract = shader_contract(spirv, entry_point=args.entry_point, wgsl_source=wgsl)
    print(cas.collapse(contract))
    return 0


# -- entry point ---------------------------------------------------------------------------------------

def _version() -> str:
    try:
        return metadata.version("hlx")
    except metadata.PackageNotFoundError:
        return "unknown"


def _bytes(text: str) -> int:
    try:
        return parse_bytes(text, "--max-bytes")
    except HLXError:
        raise argparse.ArgumentTypeError(f"expected a size such as 1000000, 512M or 10G, got {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _positive(text: str) -> int:
    value = int(text) if text.strip().lstrip("+").isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hlx", description="HLX: deterministic, content-addressed GPU "
                                                             "compute (Vulkan, wgpu, NumPy reference).")
    parser.add_argument("--version", action="version", version=f"hlx {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("devices", help="backends and their devices").set_defaults(func=cmd_devices)
    sub.add_parser("plugins", help="backend plugins, their distributions, failures").set_defaults(func=cmd_plugins)

    p = sub.add_parser("run", help="run a contract file (LC-B or JSON) or a stored contract's handle")
    p.add_argument("file", help="contract file (.lcb or .json) or a contract handle")
    p.add_argument("--backend", default="auto", help="backend name or 'auto' (default)")
    p.add_argument("--device", default=None, help="device index or name substring")
    p.add_argument("--print", action="store_true", help="also print the output arrays")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="a folder (or file) whose files a JSON contract's $file and $npy may name, besides the "
                        "contract's own folder (repeatable); other paths, symlinks resolved, are refused")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="MLP pipeline and a GEMM on every available backend")
    p.add_argument("--size", type=_positive, default=1024, help="GEMM size N for N×N×N (default 1024)")
    p.add_argument("--backend", action="append", help="only this backend (repeatable)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("cache", help="the store under $HLX_HOME: stats, gc, clear")
    p.add_argument("action", choices=("stats", "gc", "clear"))
    p.add_argument("--max-bytes", type=_bytes, default=None, metavar="SIZE",
                   help="gc: evict until at most SIZE remains (bytes, or with a unit: 512M, 1G; binary units)")
    p.add_argument("--grace-seconds", type=_seconds, default=60.0, metavar="S",
                   help="gc: keep objects used in the last S seconds, which a running process may still "
                        "need (default 60)")
    p.add_argument("--keep-memo", action="store_true",
                   help="gc: keep every object a memo record names (default: drop the records whose objects go)")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("parity", help="a contract on several backends against the CPU reference: bit for bit "
                                      "where the kernels are exact, within their tolerance elsewhere")
    p.add_argument("file", help="contract file (.lcb or .json) or a contract handle")
    p.add_argument("--backend", action="append", help="only this backend (repeatable; default: every available)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="a folder whose files a JSON contract's $file and $npy may name (as for hlx run)")
    p.set_defaults(func=parity_cli.cmd_parity)

    p = sub.add_parser("conformance", help="the conformance kit: every library kernel and pipeline on backends "
                                           "against the CPU reference (needs pytest)")
    p.add_argument("backend", nargs="+", help="backend name(s)")
    p.add_argument("-k", default=None, metavar="EXPR", help="only the cases pytest's -k EXPR selects")
    p.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    p.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    p.set_defaults(func=parity_cli.cmd_conformance)

    p = sub.add_parser("verify-determinism", help="run a contract N times, also in fresh processes, and count the "
                                                  "distinct output handles (exit 0 only when there is one)")
    p.add_argument("file", help="contract file (.lcb or .json) or a contract handle")
    p.add_argument("--runs", type=_positive, default=10, help="runs in this process and in each fresh one (default 10)")
    p.add_argument("--backend", default="auto", help="backend name or 'auto' (default)")
    p.add_argument("--device", default=None, help="device index or name substring")
    p.add_argument("--processes", type=int, default=0, metavar="P", help="fresh processes that run it too (default 0)")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="a folder whose files a JSON contract's $file and $npy may name (as for hlx run)")
    p.set_defaults(func=cmd_verify_determinism)

    shader = sub.add_parser("shader", help="shader tools").add_subparsers(dest="shader_command", required=True,
                                                                          metavar="ACTION")
    p = shader.add_parser("pack", help="a SPIR-V module (or GLSL source, compiled) as a 900 in the store; "
                                       "prints its handle")
    p.add_argument("file", help="FILE.spv, or GLSL such as FILE.comp (compiled with glslangValidator)")
    p.add_argument("--entry-point", default="main")
    p.add_argument("--wgsl", default=None, help="WGSL source for backends that cannot take the SPIR-V")
    p.set_defaults(func=cmd_shader_pack)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HLXError as exc:
        where = f" at {exc.path}" if exc.path else ""
        print(f"error [{exc.code}]{where}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
