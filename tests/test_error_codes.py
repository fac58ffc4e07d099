"""One list of error codes: every code the source raises is declared in hlx_core.errors.CODES, every declared
code is raised somewhere, docs/ERRORS.md's table lists exactly CODES, in order, with their meanings, and no page
of the docs names a code CODES does not declare."""
from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

from hlx_core.errors import CODES

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("hlx", "hlx_core", "plugins", "examples")
DOC = ROOT / "docs" / "ERRORS.md"
CODE = re.compile(r"^E_[A-Z0-9_]+$")
ROW = re.compile(r"^\|\s*`(E_[A-Z0-9_]+)`\s*\|(.*)\|(.*)\|\s*$")
DOC_MENTION = re.compile(r"\bE_[A-Z0-9_]*[A-Z0-9]\b")


def _source_files() -> list[Path]:
    files = []
    for top in SOURCE_DIRS:
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if not {"build", ".venv"} & set(rel.parts) and not any(p.endswith(".egg-info") for p in rel.parts):
                files.append(path)
    return files


def _codes_list_node(tree: ast.Module) -> ast.AST | None:
    """The ``CODES = {...}`` literal of hlx_core/errors.py: naming a code there is declaring it, not using it."""
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "CODES":
            return node
    return None


@functools.lru_cache(maxsize=1)
def _uses() -> dict[str, tuple[str, ...]]:
    """Code -> the places ("file:line") the source names it: every string constant that is a whole code, which
    covers raise sites, module constants, dict values (the VkResult table), defaults and f-string parts."""
    found: dict[str, list[str]] = defaultdict(list)
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        skip = _codes_list_node(tree) if rel == "hlx_core/errors.py" else None
        declared = {id(n) for n in ast.walk(skip)} if skip is not None else set()
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.match(node.value)
                    and id(node) not in declared):
                found[node.value].append(f"{rel}:{node.lineno}")
    return {code: tuple(places) for code, places in found.items()}


def _doc_rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            rows.append((m.group(1), m.group(2).strip(), m.group(3).strip()))
    return rows


def _listing(codes: dict[str, tuple[str, ...]]) -> str:
    return "\n".join(f"  {code}: {', '.join(places)}" for code, places in sorted(codes.items()))


def test_every_code_in_the_source_is_declared():
    undeclared = {code: places for code, places in _uses().items() if code not in CODES}
    assert not undeclared, ("codes raised in the source but not declared in hlx_core.errors.CODES "
                            "(declare them, or use the declared name):\n" + _listing(undeclared))


def test_every_declared_code_is_raised():
    dead = sorted(set(CODES) - set(_uses()))
    assert not dead, f"codes in hlx_core.errors.CODES that no source file raises (remove them): {', '.join(dead)}"


def test_the_docs_table_lists_exactly_the_codes():
    rows = _doc_rows()
    listed = [code for code, _by, _meaning in rows]
    missing = [code for code in CODES if code not in listed]
    extra = [code for code in listed if code not in CODES]
    twice = sorted({code for code in listed if listed.count(code) > 1})
    assert not (missing or extra or twice), (
        f"docs/ERRORS.md is out of step with hlx_core.errors.CODES: missing {missing}, not in CODES {extra}, "
        f"listed twice {twice}")
    assert listed == list(CODES), "docs/ERRORS.md lists the codes in another order than CODES"
    wrong = [f"  {code}: the table says {meaning!r}, CODES says {CODES[code]!r}"
             for code, _by, meaning in rows if meaning.replace("`", "") != CODES[code]]
    assert not wrong, "docs/ERRORS.md's meanings differ from CODES (backticks aside):\n" + "\n".join(wrong)
    unattributed = [code for code, by, _meaning in rows if not by]
    assert not unattributed, f"docs/ERRORS.md rows without a 'raised by': {unattributed}"


def test_the_docs_name_only_declared_codes():
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md",
             *sorted((ROOT / "examples").glob("*/README.md"))]
    stale: dict[str, list[str]] = defaultdict(list)
    for page in pages:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for code in DOC_MENTION.findall(line):
                if code not in CODES:
                    stale[code].append(f"{page.relative_to(ROOT).as_posix()}:{number}")
    assert not stale, ("the docs name codes that hlx_core.errors.CODES does not declare:\n"
                       + _listing({code: tuple(places) for code, places in stale.items()}))
