"""The house rules of the import structure, read from the source with ``ast``.

No import cycle among the modules of hlx, hlx_core, the built-in plugins and the example backend; hlx_core
never imports the facade or a plugin; a plugin imports hlx_core (or the facade's ``hlx.plugin``) and its
own package only; the codec imports nothing of HLX but ``hlx_core.errors``. Every import counts: inside
functions (a lazy import is still a dependency) and under ``if TYPE_CHECKING:`` (so are annotations).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {  # top-level package -> its folder
    "hlx": ROOT / "hlx",
    "hlx_core": ROOT / "hlx_core",
    "hlx_cpu": ROOT / "plugins" / "hlx_cpu",
    "hlx_vulkan_raw": ROOT / "plugins" / "hlx_vulkan_raw",
    "hlx_wgpu": ROOT / "plugins" / "hlx_wgpu",
    "hlx_backend_example": ROOT / "examples" / "hlx-backend-example" / "hlx_backend_example",
}
PLUGINS = {"hlx_cpu", "hlx_vulkan_raw", "hlx_wgpu", "hlx_backend_example"}


def _modules() -> dict[str, Path]:
    found = {}
    for top, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The HLX modules ``module`` imports (a ``from X import name`` counts X.name when that is a module)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                here = here[:len(here) - node.level + 1]
                base = ".".join(here + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in out if name in MODULES and name != module}


GRAPH = {name: _imported(ast.parse(path.read_text()), name, path.name == "__init__.py")
         for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(GRAPH):
        if v not in index:
            strong(v)
    return found


def test_the_walk_sees_the_whole_house():
    assert {"hlx", "hlx_core.runtime", "hlx_vulkan_raw", "hlx_wgpu", "hlx_cpu"} <= set(MODULES)
    assert "hlx_core.runtime" in GRAPH["hlx"]


def test_no_import_cycle():
    assert _cycles() == []


def test_a_cycle_is_found_when_there_is_one(monkeypatch):
    a, b = "hlx_core.errors", "hlx_core.runtime"
    monkeypatch.setitem(GRAPH, a, GRAPH[a] | {b})
    assert any(a in c and b in c for c in _cycles())


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] == "hlx_core"))
def test_hlx_core_imports_neither_the_facade_nor_a_plugin(module):
    bad = {m for m in GRAPH[module] if m.split(".")[0] != "hlx_core"}
    assert not bad, f"{module} imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.split(".")[0] in PLUGINS))
def test_a_plugin_imports_hlx_core_and_itself_only(module):
    own = module.split(".")[0]
    bad = {m for m in GRAPH[module]
           if m.split(".")[0] not in (own, "hlx_core") and m != "hlx.plugin"}
    assert not bad, f"{module} imports {sorted(bad)}"


def test_the_codec_imports_only_errors():
    codec = [m for m in MODULES if m == "hlx_core.codec" or m.startswith("hlx_core.codec.")]
    assert codec, "hlx_core.codec is a package"
    for module in codec:
        bad = {m for m in GRAPH[module] if not (m in codec or m == "hlx_core.errors")}
        assert not bad, f"{module} imports {sorted(bad)}"

