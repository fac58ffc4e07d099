# `make demo` and `make test` do all set-up themselves on a fresh Debian machine (as root).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PKGS := mesa-vulkan-drivers libvulkan1 glslang-tools spirv-tools spirv-cross vulkan-validationlayers
SHADER_SRC := $(wildcard shaders/*.comp)
SHADER_SPV := $(SHADER_SRC:.comp=.spv)

.PHONY: demo test sysdeps venv shaders bench clean

demo: sysdeps venv
	$(VENV)/bin/hlx demo

test: sysdeps venv
	$(PY) -m pytest -q

sysdeps:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing system packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages; run as root:"; \
	    echo "  apt-get update && apt-get install -y $$missing"; exit 1; \
	  fi; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

shaders: $(SHADER_SPV)

shaders/%.spv: shaders/%.comp
	glslangValidator -V --target-env vulkan1.1 -o $@ $<

bench: sysdeps venv
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
