"""The committed SPIR-V is what `make shaders` builds from the committed GLSL: rebuild each shader into a
temporary folder with the Makefile's own command and compare the bytes."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHADERS = ROOT / "shaders"
SOURCES = sorted(SHADERS.glob("*.comp"))


def _makefile_command(src: Path, out: Path) -> list[str]:
    """The recipe of the Makefile's `shaders/%.spv: shaders/%.comp` rule with $@ and $< filled in."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^shaders/%\.spv: shaders/%\.comp\n\t(.+)$", text, re.MULTILINE)
    assert match, "the Makefile lost its shaders/%.spv rule"
    return [str(out) if w == "$@" else str(src) if w == "$<" else w for w in shlex.split(match.group(1))]


def test_every_source_has_spirv_and_back() -> None:
    assert SOURCES, "no shaders/*.comp found"
    # shaders/build_coopmat.py builds the cooperative-matrix modules (tests/test_coopmat_shaders.py)
    spv = {p.stem for p in SHADERS.glob("*.spv") if "_coopmat" not in p.stem}
    comp = {p.stem for p in SOURCES}
    assert comp == spv, f"missing .spv: {sorted(comp - spv)}; .spv without source: {sorted(spv - comp)}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_spirv_is_fresh(src: Path, tmp_path: Path) -> None:
    assert shutil.which("glslangValidator"), "glslangValidator is missing (apt-get install glslang-tools)"
    out = tmp_path / f"{src.stem}.spv"
    proc = subprocess.run(_makefile_command(src, out), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"{src.name} does not compile:\n{proc.stdout}{proc.stderr}"
    assert out.read_bytes() == (SHADERS / f"{src.stem}.spv").read_bytes(), (
        f"shaders/{src.stem}.spv is stale: run `make shaders` and commit the result")
