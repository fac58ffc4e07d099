"""The ``hlx`` command line (also ``python -m hlx``): devices, plugins, run, show, bench, demo, cache,
verify-determinism, shader pack and info.

Every HLXError ends the command with ``error [E_CODE]: message`` on stderr and exit status 1 (no
traceback); usage errors exit with 2, as argparse does.

``hlx run FILE`` reads a contract as LC-B bytes or as JSON, whose one-key maps ``$bytes``, ``$file``,
``$tensor`` and ``$npy`` stand for bytes and tensors (hlx_core/input_files.py, which also bounds what is read:
regular files only, at most the codec's size limit, named files confined to the contract's folder and the
``--allow-path`` folders).

Handles are written as plain strings (``"&h_tensor_…"``); on the command line the leading ``&`` may be left
out, since the shell reads it as "run in the background". ``--json`` on devices, plugins, run, cache stats
and shader info prints one JSON document instead of text, for scripts. ``hlx run`` prints plain lines and never imports
rich, so a run from the shell costs what the run costs; the listing commands print rich tables.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from hlx_core import parity_cli, runtime
from hlx_core.bench.command import add_parser as add_bench_parser
from hlx_core.cas import api as cas
from hlx_core.codec.handle import Handle, is_handle
from hlx_core.compile import spirv_from_file
from hlx_core.determinism import cmd_verify_determinism
from hlx_core.errors import HLXError
from hlx_core.input_files import load_contract, read_text
from hlx_core.log import setup as setup_logging
from hlx_core.registry import ALLOWLIST_ENV
from hlx_core.scale.worker import cmd_worker
from hlx_core.settings import hlx_home, parse_bytes
from hlx_core.version import package_version

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


def _print_json(value: Any) -> int:
    print(json.dumps(value, indent=2))
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    if args.json:
        return _print_json([{k: info[k] for k in ("name", "available", "reason", "devices")}
                            for info in runtime.backend_info()])
    return _backend_table("HLX backends and devices", ("backend", "device", "name", "kind", "status"), _device_rows)


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.json:
        return _print_json([{k: v for k, v in info.items() if k != "devices"} | {"devices": len(info["devices"])}
                            for info in runtime.backend_info()])
    return _backend_table("HLX plugins (entry-point group hlx.backends)",
                          ("backend", "plugin", "distribution", "version", "status"), _plugin_rows)


def cmd_run(args: argparse.Namespace) -> int:
    store = cas.get_default_store()
    contract = load_contract(args.file, store, args.allow_path)
    result = runtime.run(contract, backend=args.backend, device=args.device, store=store)
    if args.json:
        return _print_json({
            "contract": result.contract, "backend": result.backend, "device": result.device,
            "memo_hit": result.memo_hit, "exec_key": result.exec_key, "timings_ms": result.timings,
            "outputs": [{"handle": h, "dtype": str(a.dtype), "shape": list(a.shape),
                         **({"array": a.tolist()} if args.print else {})}
                        for h, a in zip(result.outputs, result.arrays())]})
    memo = ", answered from its memo record" if result.memo_hit else ""
    print(f"ran {result.contract} on {result.backend} ({result.device}){memo}")
    for i, (handle, array) in enumerate(zip(result.outputs, result.arrays())):
        print(f"output {i}: {handle} {array.dtype}{list(array.shape)}")
    print("timings: " + ", ".join(f"{k} {v:.3f} ms" for k, v in sorted(result.timings.items())))
    if args.print:
        for i, array in enumerate(result.arrays()):
            print(f"array {i}:\n{np.array2string(array, threshold=200)}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """What a handle names: a tensor's dtype, shape and values (``--out`` saves it as .npy), else the value."""
    value = cas.resolve(Handle(args.handle))
    if args.out is not None:
        if not isinstance(value, np.ndarray):
            raise HLXError("E_USAGE", f"--out saves a tensor; {args.handle} holds a {type(value).__name__}")
        np.save(args.out, value, allow_pickle=False)
        print(f"saved {value.dtype}{list(value.shape)} to {args.out}")
        return 0
    if isinstance(value, np.ndarray):
        print(f"{args.handle}: tensor {value.dtype}{list(value.shape)}")
        print(np.array2string(value, threshold=200))
    else:
        print(f"{args.handle}: {type(value).__name__}")
        print(json.dumps(_shown(value), indent=2))
    return 0


def _shown(value: Any) -> Any:
    """A stored value as JSON can print it: bytes and tensors summarised, handles as their text."""
    if isinstance(value, dict):
        return {str(k): _shown(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, np.ndarray):
        return f"<tensor {value.dtype}{list(value.shape)}>"
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    from hlx_core.demo import run_demo
    rows = run_demo(size=args.size, backends=args.backend, console=_console())
    return 0 if rows and all(r.match for r in rows) else 1


def cmd_cache(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table
    console = _console()
    store = cas.get_default_store()
    if args.json and args.action != "stats":
        raise HLXError("E_USAGE", "--json is for hlx cache stats")
    if args.action == "stats" and args.json:
        return _print_json({"home": str(hlx_home()), "store": repr(store), **store.stats(),
                            "max_bytes": getattr(store, "max_bytes", None),
                            "caches": [{"folder": name, "files": files, "bytes": size}
                                       for name, files, size in _other_caches(hlx_home(), store)]})
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


def cmd_shader_pack(args: argparse.Namespace) -> int:
    from hlx_core.contracts.shader import shader_contract
    source = Path(args.file)
    spirv = spirv_from_file(source)
    wgsl = read_text(Path(args.wgsl)) if args.wgsl else None
    contract = shader_contract(spirv, entry_point=args.entry_point, wgsl_source=wgsl)
    print(cas.collapse(contract))
    return 0


def cmd_shader_info(args: argparse.Namespace) -> int:
    """The reflection of every entry point of a shader: what backends and ``hlx.Kernel`` read from it."""
    from hlx_core.spirv.reflect import reflect
    entries = [_reflection(e) for e in reflect(spirv_from_file(Path(args.file)))]
    if args.json:
        return _print_json(entries)
    for entry in entries:
        print(f"entry point {entry.pop('name')!r} ({entry.pop('execution_model')})")
        for key, value in entry.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                print(f"  {key}:")
                for item in value:
                    print("    " + ", ".join(f"{k}={v}" for k, v in item.items()))
            else:
                print(f"  {key}: {value}")
    return 0


def _reflection(entry: Any) -> dict[str, Any]:
    """An EntryPoint as plain data (the spec-constant expressions behind the workgroup size left out)."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value
    return {f.name: plain(getattr(entry, f.name)) for f in dataclasses.fields(entry)
            if f.name not in ("workgroup_exprs", "extra")} | {"workgroup_spec_ids": sorted(entry.workgroup_spec_ids)}


# -- entry point ---------------------------------------------------------------------------------------

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
    parser.add_argument("--version", action="version", version=f"hlx {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name, func, text in (("devices", cmd_devices, "backends and their devices"),
                             ("plugins", cmd_plugins, "backend plugins, their distributions, failures")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(func=func)

    p = sub.add_parser("run", help="run a contract file (LC-B or JSON) or a stored contract's handle")
    p.add_argument("file", help="contract file (.lcb or .json) or a contract handle")
    p.add_argument("--backend", default="auto", help="backend name or 'auto' (default)")
    p.add_argument("--device", default=None, help="device index or name substring")
    p.add_argument("--print", action="store_true", help="also print the output arrays")
    p.add_argument("--json", action="store_true", help="print the result as JSON (with --print, the arrays too)")
    p.add_argument("--allow-path", action="append", default=[], metavar="DIR",
                   help="a folder (or file) whose files a JSON contract's $file and $npy may name, besides the "
                        "contract's own folder (repeatable); other paths, symlinks resolved, are refused")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("show", help="what a handle names in the store: a tensor's dtype, shape and values, or "
                                    "the value")
    p.add_argument("handle", help="a handle (the leading & may be left out)")
    p.add_argument("--out", default=None, metavar="FILE.npy", help="save the tensor as a .npy file")
    p.set_defaults(func=cmd_show)

    add_bench_parser(sub)  # hlx_core/bench/command.py

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
    p.add_argument("--json", action="store_true", help="stats: print JSON instead of a table")
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

    p = sub.add_parser("worker", help="one Dask worker per device of a backend, for hlx.executor('dask://…') "
                                      "(needs hlx[dist]; docs/SCALE.md)")
    p.add_argument("scheduler", help="the Dask scheduler: dask://host:port (or tcp://host:port)")
    p.add_argument("--backend", default="auto", help="backend name or 'auto' (default)")
    p.add_argument("--devices", default="all", help="'all' (default) or a comma-separated list of device "
                                                    "indices or UUIDs")
    p.add_argument("--store", default=None, metavar="URL", help="a store the cluster shares (file://…, s3://…)")
    p.add_argument("--home", default=None, metavar="DIR",
                   help="where each worker's HLX_HOME goes (default $HLX_HOME/workers/<device>)")
    p.add_argument("--dry-run", action="store_true", help="print each worker's environment and command, start none")
    p.set_defaults(func=cmd_worker)

    shader = sub.add_parser("shader", help="shader tools").add_subparsers(dest="shader_command", required=True,
                                                                          metavar="ACTION")
    p = shader.add_parser("pack", help="a SPIR-V module (or GLSL source, compiled) as a 900 in the store; "
                                       "prints its handle")
    p.add_argument("file", help="FILE.spv, or GLSL such as FILE.comp (compiled with glslangValidator)")
    p.add_argument("--entry-point", default="main")
    p.add_argument("--wgsl", default=None, help="WGSL source for backends that cannot take the SPIR-V")
    p.set_defaults(func=cmd_shader_pack)
    p = shader.add_parser("info", help="the reflection of a shader: entry points, workgroup size, bindings, "
                                       "push constants, specialization constants")
    p.add_argument("file", help="FILE.spv, or GLSL such as FILE.comp (compiled with glslangValidator)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_shader_info)
    return parser


def _with_ampersand(text: str) -> str:
    """A handle given without its leading ``&`` (which the shell would read as "background"), with it;
    anything else, an existing file above all, as given."""
    if not is_handle(text) and is_handle("&" + text) and not Path(text).exists():
        return "&" + text
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for attr in ("file", "handle"):
        if hasattr(args, attr):
            setattr(args, attr, _with_ampersand(getattr(args, attr)))
    try:
        setup_logging()
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
