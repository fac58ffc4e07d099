"""The hlx command line, through main(argv) and once through the installed console script."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from plugin_fakes import plugins, write_distribution  # noqa: F401 (fixture)

import hlx
from hlx_core.cli import main

SHADERS = Path(__file__).resolve().parents[1] / "shaders"
HANDLE = re.compile(r"&h_[a-z]+_[0-9a-f]{64}")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_devices_and_plugins(plugins, capsys, tmp_path, monkeypatch):
    write_distribution(tmp_path, "hlx-cli-broken",
                       {"hlxt_cli_broken": "import no_such_module_xyz\n",
                        "hlxt_cli_markup": "raise RuntimeError('odd [/] text [bold]kept')\n"},
                       {"clibroken": "hlxt_cli_broken", "climarkup": "hlxt_cli_markup"})
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins("cpu,clibroken,climarkup")
    code, out, _ = _run(capsys, "devices")
    assert code == 0 and "cpu" in out and "available" in out and "NumPy" in out
    code, out, _ = _run(capsys, "plugins")
    assert code == 0
    cpu_line = next(line for line in out.splitlines() if " cpu " in line)
    assert "hlx" in cpu_line and "available" in cpu_line
    broken = next(line for line in out.splitlines() if "clibroken" in line)
    assert "hlx-cli-broken" in broken and "failed (import)" in broken and "no_such_module_xyz" in out
    assert "odd [/] text [bold]kept" in out  # error text is shown as written, never read as markup
    plugins("")
    code, out, _ = _run(capsys, "plugins")
    assert code == 0 and "HLX_PLUGINS is set to an empty string" in out


@pytest.fixture
def relu_shader(capsys) -> str:
    code, out, _ = _run(capsys, "shader", "pack", str(SHADERS / "relu.spv"))
    assert code == 0
    return out.strip()


def test_shader_pack_spv_and_comp_agree(capsys, relu_shader, tmp_path):
    assert HANDLE.fullmatch(relu_shader) and hlx.resolve(relu_shader)["900"]["entry_point"] == "main"
    code, out, _ = _run(capsys, "shader", "pack", str(SHADERS / "relu.comp"))
    assert code == 0 and out.strip() == relu_shader  # the committed SPIR-V is what the source compiles to
    bad = tmp_path / "bad.comp"
    bad.write_text("#version 450\nvoid main() { undefined_thing = 1; }\n")
    code, _, err = _run(capsys, "shader", "pack", str(bad))
    assert code == 1 and err.startswith("error [E_COMPILE]") and "undefined_thing" in err


def test_shader_pack_tells_spirv_from_glsl(capsys, relu_shader, tmp_path):
    """SPIR-V is known by its magic number; GLSL under a suffix that names no stage compiles as compute."""
    (tmp_path / "stream.glsl").write_bytes((SHADERS / "stream.glsl").read_bytes())  # relu.comp includes it
    for name, data in (("relu.glsl", (SHADERS / "relu.comp").read_bytes()),
                       ("relu.bin", (SHADERS / "relu.spv").read_bytes())):
        (tmp_path / name).write_bytes(data)
        code, out, err = _run(capsys, "shader", "pack", str(tmp_path / name))
        assert code == 0 and out.strip() == relu_shader, err
    (tmp_path / "junk.spv").write_bytes(b"not spir-v")
    (tmp_path / "colour.frag").write_text("#version 450\nlayout(location = 0) out vec4 c;\n"
                                          "void main() { c = vec4(1.0); }\n")
    for name, words in (("junk.spv", "a SPIR-V module has at least 20"), ("colour.frag", "Fragment")):
        code, _, err = _run(capsys, "shader", "pack", str(tmp_path / name))
        assert code == 1 and err.startswith("error [E_SPIRV_INVALID]") and words in err, err


def test_shader_pack_reports_binary_input_and_wgsl(capsys, tmp_path):
    """A binary file that is not SPIR-V goes to the GLSL compiler, whose non-UTF-8 echo must not crash the
    command; a --wgsl file that is not UTF-8 text is an E_IO."""
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)) * 4)
    code, _, err = _run(capsys, "shader", "pack", str(tmp_path / "noise.bin"))
    assert code == 1 and err.startswith("error [E_COMPILE]"), err
    (tmp_path / "bad.wgsl").write_bytes(b"\xff\xfe\x80")
    code, _, err = _run(capsys, "shader", "pack", str(SHADERS / "relu.spv"), "--wgsl", str(tmp_path / "bad.wgsl"))
    assert code == 1 and err.startswith("error [E_IO]") and "not UTF-8" in err, err


def _relu_json(shader: str, values: list[float], tmp_path: Path) -> dict:
    np.save(tmp_path / "x.npy", np.asarray(values, np.float32))
    n = len(values)
    return {"901": {"kernel_name": "relu", "shader_handle": shader, "dispatch": [1, 1, 1],
                    "bindings": [{"$npy": "x.npy"}, {"output": {"dtype": "float32", "shape": [n]}}],
                    "push_constants": {"$bytes": base64.b64encode(np.uint32(n).tobytes()).decode()}}}


def _output_handle(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("output 0:")]
    return HANDLE.search(line).group(0)


def test_run_json_lcb_and_handle(plugins, capsys, relu_shader, tmp_path, rng):
    plugins("cpu")
    x = rng.standard_normal(37).astype(np.float32)
    contract = _relu_json(relu_shader, x.tolist(), tmp_path)
    (tmp_path / "relu.json").write_text(json.dumps(contract))
    code, out, err = _run(capsys, "run", str(tmp_path / "relu.json"), "--backend", "cpu", "--print")
    assert code == 0, err
    handle = _output_handle(out)
    assert np.array_equal(hlx.resolve(handle), np.maximum(x, 0)) and "timings:" in out and "host_ms" in out
    contract_handle = re.search(r"ran (&h_contract_[0-9a-f]{64}) on cpu", out).group(1)
    # The same contract as LC-B bytes, with the tensor spelled inline.
    lcb = dict(contract["901"], bindings=[hlx.collapse(x), contract["901"]["bindings"][1]],
               push_constants=np.uint32(37).tobytes())
    (tmp_path / "relu.lcb").write_bytes(hlx.encode({"901": lcb}))
    code, out, _ = _run(capsys, "run", str(tmp_path / "relu.lcb"))
    assert code == 0 and _output_handle(out) == handle
    code, out, _ = _run(capsys, "run", contract_handle, "--backend", "cpu", "--device", "0")
    assert code == 0 and _output_handle(out) == handle
    inline = dict(contract["901"], bindings=[{"$tensor": x.tolist(), "dtype": "float32"},
                                             contract["901"]["bindings"][1]])
    (tmp_path / "inline.json").write_text(json.dumps({"901": inline}))
    code, out, _ = _run(capsys, "run", str(tmp_path / "inline.json"), "--backend", "cpu")
    assert code == 0 and _output_handle(out) == handle


def test_run_on_a_named_backend_probes_and_imports_only_that(relu_shader, tmp_path, rng):
    """`hlx run --backend cpu` in a fresh process: the other backends stay unprobed, so neither GPU binding
    (vulkan, wgpu) is imported, and rich is not imported either."""
    x = rng.standard_normal(5).astype(np.float32)
    (tmp_path / "relu.json").write_text(json.dumps(_relu_json(relu_shader, x.tolist(), tmp_path)))
    code = ("import sys\n"
            "from hlx_core import registry\n"
            "from hlx_core.cli import main\n"
            f"assert main(['run', {str(tmp_path / 'relu.json')!r}, '--backend', 'cpu']) == 0\n"
            "probed = sorted(n for n, e in registry.backend_entries().items() if e._availability is not None)\n"
            "print(probed, sorted(m for m in ('vulkan', 'wgpu', 'rich') if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if k != "HLX_PLUGINS"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "['cpu'] []"


@pytest.mark.parametrize("content, argv, code_prefix", [
    (None, ("--backend", "cpu"), "error [E_IO]"),
    ("{not json", ("--backend", "cpu"), "error [E_LC_PARSE]"),
    ('{"901": {"kernel_name": "x"}}', ("--backend", "cpu"), "error [E_CONTRACT_FIELD_MISSING] at 901."),
    ('{"901": {}}', ("--backend", "nosuch"), "error [E_BACKEND_UNKNOWN]"),
    ('{"901": {"push_constants": {"$bytes": "%%%"}}}', ("--backend", "cpu"), "error [E_CONTRACT_FIELD_TYPE]"),
    ('{"901": {"bindings": [{"$npy": 5}]}}', ("--backend", "cpu"), "error [E_CONTRACT_FIELD_TYPE] at 901.bindings[0]"),
    ('{"901": {"bindings": [{"$file": null}]}}', ("--backend", "cpu"), "error [E_CONTRACT_FIELD_TYPE]"),
    ('{"901": {"bindings": [{"$tensor": [[1], [2, 3]]}]}}', ("--backend", "cpu"), "error [E_CONTRACT_FIELD_TYPE]"),
    ('{"901": {}}', ("--backend", "cpu", "--device", "9"), "error [E_DEVICE_UNKNOWN]"),
    ("[" * 100_000 + "]" * 100_000, ("--backend", "cpu"), "error [E_DEPTH_EXCEEDED]"),
    ('{"901": ' + "[" * 600 + "]" * 600 + "}", ("--backend", "cpu"), "error [E_DEPTH_EXCEEDED]"),
])
def test_run_errors(plugins, capsys, tmp_path, content, argv, code_prefix):
    plugins("cpu")
    file = tmp_path / "c.json"
    if content is not None:
        file.write_text(content)
    code, out, err = _run(capsys, "run", str(file), *argv)
    assert code == 1 and err.startswith(code_prefix) and "Traceback" not in err


def _contract_with(folder: Path, spelling: dict) -> Path:
    """A contract in ``folder`` whose one binding is ``spelling``: reading it is all the run gets to."""
    folder.mkdir(exist_ok=True)
    (folder / "c.json").write_text(json.dumps({"901": {"bindings": [spelling]}}))
    return folder / "c.json"


def _fake_npy(path: Path, shape: tuple[int, ...], data: bytes = b"") -> None:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": shape})
        f.write(data)


def _touch(path: Path) -> Path:
    path.touch()
    return path


@pytest.mark.parametrize("make, key, code_prefix, words", [
    (lambda d: "/dev/zero", "$file", "error [E_IO] at 901.bindings[0]", "character device"),
    (lambda d: "/dev/zero", "$npy", "error [E_IO] at 901.bindings[0]", "character device"),
    (lambda d: os.mkfifo(d / "fifo") or "fifo", "$file", "error [E_IO] at 901.bindings[0]", "FIFO"),
    (lambda d: os.mkfifo(d / "fifo") or "fifo", "$npy", "error [E_IO] at 901.bindings[0]", "FIFO"),
    (lambda d: (d / "sub").mkdir() or "sub", "$file", "error [E_IO] at 901.bindings[0]", "directory"),
    (lambda d: os.truncate(_touch(d / "big.bin"), 64 << 30) or "big.bin", "$file",  # sparse: no disk used
     "error [E_SIZE_EXCEEDED] at 901.bindings[0]", str(64 << 30)),
    (lambda d: os.truncate(_touch(d / "big.npy"), 64 << 30) or "big.npy", "$npy",
     "error [E_SIZE_EXCEEDED] at 901.bindings[0]", "over the size limit"),
    (lambda d: _fake_npy(d / "huge.npy", (1 << 40,)) or "huge.npy", "$npy",  # claims 4 TiB, holds none
     "error [E_IO] at 901.bindings[0]", f"({4 << 40} bytes) but the file holds 0 bytes"),
    (lambda d: _fake_npy(d / "short.npy", (2, 3), bytes(20)) or "short.npy", "$npy",
     "error [E_IO] at 901.bindings[0]", "holds 20 bytes"),
    (lambda d: _fake_npy(d / "neg.npy", (-1,), bytes(8)) or "neg.npy", "$npy", "error [E_IO]", "claims"),
    (lambda d: np.save(d / "obj.npy", np.array([{}]), allow_pickle=True) or "obj.npy", "$npy",
     "error [E_IO]", "never unpickled"),
    (lambda d: (d / "junk.npy").write_bytes(b"\x93NUMPY junk") and "junk.npy", "$npy", "error [E_IO]",
     "not a .npy file"),
    (lambda d: "missing.npy", "$npy", "error [E_IO] at 901.bindings[0]", "No such file"),
])
def test_run_reads_only_bounded_regular_files(plugins, capsys, tmp_path, make, key, code_prefix, words):
    """Devices, FIFOs and directories are refused at once (a FIFO's open never blocks), a file over the size
    limit before a byte of it is read, a .npy header that claims more than its file holds before mapping."""
    plugins("cpu")
    folder = tmp_path / "c"
    folder.mkdir()
    name = make(folder)
    contract = _contract_with(folder, {key: name})
    allow = ["--allow-path", "/dev"] if name.startswith("/dev/") else []
    code, _, err = _run(capsys, "run", str(contract), "--backend", "cpu", *allow)
    assert code == 1 and err.startswith(code_prefix) and words in err and "Traceback" not in err, err


def test_run_size_limit_and_special_files_for_the_contract_itself(plugins, capsys, tmp_path):
    """The contract file and shader pack's inputs are read the same way: regular files within the limit."""
    plugins("cpu")
    os.mkfifo(tmp_path / "fifo.json")
    for argv, words in ((("run", str(tmp_path / "fifo.json")), "FIFO"), (("run", "/dev/zero"), "character device"),
                        (("run", str(tmp_path)), "directory"), (("shader", "pack", "/dev/zero"), "character device"),
                        (("shader", "pack", str(SHADERS / "relu.spv"), "--wgsl", "/dev/zero"), "character device")):
        code, _, err = _run(capsys, *argv)
        assert code == 1 and err.startswith("error [E_IO]") and words in err, (argv, err)
    contract = _contract_with(tmp_path / "c", {"$file": "pc.bin"})
    (tmp_path / "c" / "pc.bin").write_bytes(bytes(2000))
    previous = hlx.set_limits(1000)
    try:
        code, _, err = _run(capsys, "run", str(contract), "--backend", "cpu")
        assert code == 1 and err.startswith("error [E_SIZE_EXCEEDED] at 901.bindings[0]") and "2000 bytes" in err
        contract.write_text(json.dumps({"901": {"kernel_name": "x" * 1000}}))
        code, _, err = _run(capsys, "run", str(contract), "--backend", "cpu")
        assert code == 1 and err.startswith("error [E_SIZE_EXCEEDED]") and "c.json holds" in err, err
    finally:
        hlx.set_limits(previous)


def test_npy_inputs_are_memory_mapped(tmp_path):
    from hlx_core.input_files import load_npy
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    np.save(tmp_path / "e.npy", np.zeros((0, 5), np.int16))
    loaded = load_npy(tmp_path / "x.npy")
    assert isinstance(loaded, np.memmap) and not loaded.flags.writeable and np.array_equal(loaded, x)
    assert np.array_equal(load_npy(tmp_path / "f.npy"), x)
    assert load_npy(tmp_path / "e.npy").shape == (0, 5)
    assert hlx.collapse(load_npy(tmp_path / "f.npy")) == hlx.collapse(x)


@pytest.mark.parametrize("number, code_prefix", [
    ("9" * 5000, "error [E_TYPE]"),
    ("-" + "9" * 5000, "error [E_TYPE]"),
    (str(2**64), "error [E_TYPE]"),
    (str(-(2**63) - 1), "error [E_TYPE]"),
    ("NaN", "error [E_FLOAT_SPECIAL]"),
    ("-Infinity", "error [E_FLOAT_SPECIAL]"),
    ("1e999", "error [E_FLOAT_SPECIAL]"),
    (str(2**64 - 1), "error [E_CONTRACT_FIELD_TYPE] at 901.dispatch"),  # in range: the contract's checks judge it
    (str(-(2**63)), "error [E_CONTRACT_FIELD_TYPE] at 901.dispatch"),
])
def test_run_json_numbers_outside_lcb(plugins, capsys, tmp_path, number, code_prefix):
    plugins("cpu")
    (tmp_path / "c.json").write_text('{"901": {"kernel_name": "relu", "shader_handle": "&h_contract_' + "0" * 64
                                     + '", "bindings": [], "dispatch": [' + number + ', 1, 1]}}')
    code, _, err = _run(capsys, "run", str(tmp_path / "c.json"), "--backend", "cpu")
    assert code == 1 and err.startswith(code_prefix) and "Traceback" not in err, err


@pytest.mark.parametrize("spelling, words", [
    ({"$tensor": 1, "dtype": "(100000000000,)f8"}, "not one LC-B holds"),  # a subarray dtype: 800 GB
    ({"$tensor": [1], "dtype": "O"}, "not one LC-B holds"),
    ({"$tensor": [1], "dtype": "U8"}, "not one LC-B holds"),
    ({"$tensor": [1], "dtype": 5}, "not one LC-B holds"),
    ({"$tensor": [1], "dtype": "nosuch"}, "not one LC-B holds"),
    ({"$tensor": [300], "dtype": "int8"}, "out of bounds"),
])
def test_run_tensor_dtypes(plugins, capsys, tmp_path, spelling, words):
    plugins("cpu")
    contract = _contract_with(tmp_path, spelling)
    code, _, err = _run(capsys, "run", str(contract), "--backend", "cpu")
    assert code == 1 and err.startswith("error [E_CONTRACT_FIELD_TYPE] at 901.bindings[0]") and words in err, err


def test_run_confines_named_files_to_the_contracts_folder(plugins, capsys, relu_shader, tmp_path, rng):
    """$file and $npy names resolve (symlinks included) inside the contract's folder; `..`, absolute paths
    and symlinks leading elsewhere are refused unless --allow-path names a folder holding the target."""
    plugins("cpu")
    x = rng.standard_normal(9).astype(np.float32)
    outside, folder = tmp_path / "outside", tmp_path / "contract"
    outside.mkdir()
    folder.mkdir()
    contract = _relu_json(relu_shader, x.tolist(), outside)  # x.npy lies outside the contract's folder
    (outside / "pc.bin").write_bytes(np.uint32(9).tobytes())
    (folder / "link.npy").symlink_to(outside / "x.npy")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(outside)
    (folder / "pc.bin").write_bytes(np.uint32(9).tobytes())
    np.save(folder / "inside.npy", x)
    expected = None
    for npy, pc in (("inside.npy", "pc.bin"), (str(folder / "inside.npy"), "./sub/../pc.bin")):
        spelled = dict(contract["901"], bindings=[{"$npy": npy}, contract["901"]["bindings"][1]],
                       push_constants={"$file": pc})
        (folder / "relu.json").write_text(json.dumps({"901": spelled}))
        code, out, err = _run(capsys, "run", str(folder / "relu.json"), "--backend", "cpu")
        assert code == 0, err
        assert expected in (None, _output_handle(out))
        expected = _output_handle(out)
    assert np.array_equal(hlx.resolve(expected), np.maximum(x, 0))
    escapes = [("../outside/x.npy", "pc.bin"), (str(outside / "x.npy"), "pc.bin"), ("link.npy", "pc.bin"),
               ("sub/up/x.npy", "pc.bin"), ("inside.npy", "../outside/pc.bin"), ("inside.npy", "/etc/passwd")]
    for npy, pc in escapes:
        spelled = dict(contract["901"], bindings=[{"$npy": npy}, contract["901"]["bindings"][1]],
                       push_constants={"$file": pc})
        (folder / "relu.json").write_text(json.dumps({"901": spelled}))
        code, _, err = _run(capsys, "run", str(folder / "relu.json"), "--backend", "cpu")
        assert code == 1 and err.startswith("error [E_IO]") and "outside the folders" in err, (npy, pc, err)
        assert "--allow-path" in err
    (tmp_path / "link.json").symlink_to(folder / "relu.json")  # names resolve from the linked file's folder
    code, out, err = _run(capsys, "run", str(tmp_path / "link.json"), "--backend", "cpu")
    assert code == 1 and "outside the folders" in err and str(folder) in err, err
    for npy, pc in escapes[:5]:  # allowed explicitly, the same runs read the same bytes
        spelled = dict(contract["901"], bindings=[{"$npy": npy}, contract["901"]["bindings"][1]],
                       push_constants={"$file": pc})
        (folder / "relu.json").write_text(json.dumps({"901": spelled}))
        code, out, err = _run(capsys, "run", str(folder / "relu.json"), "--backend", "cpu",
                              "--allow-path", str(tmp_path / "elsewhere"), "--allow-path", str(outside))
        assert code == 0 and _output_handle(out) == expected, (npy, pc, err)


def test_run_help_documents_allow_path(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--allow-path DIR" in out and "repeatable" in out


def _age(store_dir: Path, seconds: float) -> None:
    """Make every file of the store look last used ``seconds`` ago."""
    then = time.time() - seconds
    for f in (store_dir / "objects").rglob("*"):
        if f.is_file():
            os.utime(f, (then, then))


def test_cache_commands(capsys, rng, _isolated_home, monkeypatch):
    monkeypatch.setenv("HLX_STORE_MAX_BYTES", "1G")
    for _ in range(3):
        hlx.collapse(rng.standard_normal(1000))
    (_isolated_home / "vulkan" / "pipeline-cache").mkdir(parents=True)
    (_isolated_home / "vulkan" / "pipeline-cache" / "dev.bin").write_bytes(bytes(1500))
    code, out, _ = _run(capsys, "cache", "stats")
    assert code == 0 and "3 object(s)" in out and str(_isolated_home) in out
    (vulkan,) = [line for line in out.splitlines() if "vulkan/" in line]
    assert [cell.strip() for cell in vulkan.split("│")[2:4]] == ["1", "1.5 KiB"]
    (cap,) = [line for line in out.splitlines() if "store cap" in line]
    assert cap.split("│")[3].strip() == "1.0 GiB"
    code, out, _ = _run(capsys, "cache", "gc", "--max-bytes", "10K")
    assert code == 0 and "removed 0 object(s); 3 left" in out  # all used within the default 60 s grace
    _age(_isolated_home, 120)
    code, out, _ = _run(capsys, "cache", "gc", "--max-bytes", "10K")
    assert code == 0 and "removed 2 object(s); 1 left" in out
    code, _, err = _run(capsys, "cache", "gc")
    assert code == 1 and err.startswith("error [E_USAGE]")
    code, out, _ = _run(capsys, "cache", "clear")
    assert code == 0 and "removed 1 object(s)" in out
    assert hlx.get_default_store().stats()["objects"] == 0


def test_cache_gc_units_and_grace(capsys, rng, _isolated_home):
    handles = [hlx.collapse(rng.standard_normal(1000)) for _ in range(3)]
    code, out, _ = _run(capsys, "cache", "gc", "--max-bytes", "1G", "--grace-seconds", "0")
    assert code == 0 and "removed 0 object(s); 3 left" in out
    code, out, _ = _run(capsys, "cache", "gc", "--max-bytes", "0.5 KiB", "--grace-seconds", "3600")
    assert code == 0 and "removed 0 object(s); 3 left" in out and "last 3600 s" in out
    code, out, _ = _run(capsys, "cache", "gc", "--max-bytes", "0", "--grace-seconds", "0")
    assert code == 0 and "removed 3 object(s); 0 left" in out
    assert not any(hlx.get_default_store().contains(h) for h in handles)
    for argv in (("--max-bytes", "lots"), ("--max-bytes", "-1"), ("--max-bytes", "1G", "--grace-seconds", "-1"),
                 ("--max-bytes", "1G", "--grace-seconds", "nan")):
        with pytest.raises(SystemExit) as exit_:
            main(["cache", "gc", *argv])
        assert exit_.value.code == 2 and "expected" in capsys.readouterr().err


def test_cache_stats_counts_and_gc_reclaims_temp_files(capsys, rng, _isolated_home, monkeypatch):
    """A killed writer leaves a temp file: stats counts it, gc removes it once it is stale."""
    monkeypatch.delenv("HLX_STORE_MAX_BYTES", raising=False)
    handle = hlx.collapse(rng.standard_normal(100))
    folder = hlx.get_default_store().object_path(handle).parent
    (folder / ".tmp-killed").write_bytes(bytes(3000))
    code, out, _ = _run(capsys, "cache", "stats")
    (temps,) = [line for line in out.splitlines() if "temp files" in line]
    assert code == 0 and [cell.strip() for cell in temps.split("│")[2:4]] == ["1", "2.9 KiB"]
    (cap,) = [line for line in out.splitlines() if "store cap" in line]
    assert cap.split("│")[3].strip() == "10.0 GiB"  # the documented default
    code, out, _ = _run(capsys, "cache", "gc", "--max-bytes", "1G")
    assert code == 0 and "1 left" in out and "1 temp file(s)" in out  # a writer may still be writing it
    _age(_isolated_home, 2 * 3600)
    code, out, _ = _run(capsys, "cache", "gc", "--max-bytes", "1G")
    assert code == 0 and "1 left" in out and "0 temp file(s)" in out


def test_demo_small(plugins, capsys):
    plugins("cpu")
    code, out, _ = _run(capsys, "demo", "--size", "96", "--backend", "cpu")
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│ cpu")]
    assert len(rows) == 2 and all("✓ reference" in r and "NumPy float64" in r for r in rows) and "gemm 96³" in out
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--size", "0"])
    assert exit_.value.code == 2 and "integer >= 1" in capsys.readouterr().err


def test_console_script_reports_errors_without_traceback(tmp_path):
    script = shutil.which("hlx", path=str(Path(sys.executable).parent))
    assert script, "the hlx console script is installed next to the interpreter"
    proc = subprocess.run([script, "run", str(tmp_path / "missing.json")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error [E_IO]") and "Traceback" not in proc.stderr
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("hlx ")


def test_the_readme_json_example_runs(plugins, capsys, relu_shader, tmp_path):
    plugins("cpu")
    readme = (SHADERS.parent / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```json\n(.*?)```", readme, re.DOTALL)
    (tmp_path / "relu.json").write_text(example.replace("&h_contract_…", relu_shader))
    code, out, err = _run(capsys, "run", str(tmp_path / "relu.json"), "--print")
    assert code == 0, err
    assert np.array_equal(hlx.resolve(_output_handle(out)), np.array([1, 0, 3, 0], np.float32))


def test_readme_opens_with_the_setup_commands():
    """`make demo` and `make test` open the README, and both set up what the README says they do."""
    root = SHADERS.parent
    lines = (root / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "```sh" and lines[1].startswith("make demo ") and lines[2].startswith("make test ")
    makefile = (root / "Makefile").read_text(encoding="utf-8")
    (packages,) = re.findall(r"^APT_PKGS := (.+)$", makefile, re.MULTILINE)
    assert f"`{packages}`" in " ".join(lines[:12])
    for target in ("demo", "test"):
        assert re.search(rf"^{target}: sysdeps venv$", makefile, re.MULTILINE), target
    assert "pip install -q -e '.[test]'" in makefile
    assert (root / ".ci" / "run").read_text(encoding="utf-8").strip().endswith("make test")
