#!/usr/bin/env bash
# Set up an offline NVIDIA host for HLX and run benchmark commands there, logging under $OUT.
# Prepare once here with ../shared/tools/device_prep.sh (it fills .gl/ and .whl/), then on the host:
#   bash benchmarks/gpu_session.sh "python3 benchmarks/bench_gemm.py" "python3 benchmarks/bench_vulkan_overhead.py"
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/site . || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
out=${OUT:-/tmp/out}
mkdir -p "$out"
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u; } | tee "$out/env.txt"
i=0
for cmd in "$@"; do
  i=$((i + 1))
  echo "== $cmd" | tee "$out/run$i.log"
  (cd benchmarks && eval "$cmd") 2>&1 | tee -a "$out/run$i.log"
  # Clocks and throttling after each command: a slow run on a throttled or shared GPU says so.
  nvidia-smi --query-gpu=clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv,noheader 2>/dev/null | sed 's/^/gpu after: /' | tee -a "$out/run$i.log"
done
