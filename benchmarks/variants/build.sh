#!/usr/bin/env bash
# Compile the sgemm128_*, sgemm_splitk_reduce, stream_*, conv2d_* and softmax_* candidates here (*.comp,
# which include *.glsl from here or from ../../shaders/) into their committed .spv and validate them.
set -euo pipefail
cd "$(dirname "$0")"
for src in *.comp; do
  glslangValidator -V --target-env vulkan1.1 -o "${src%.comp}.spv" "$src" >/dev/null || {
    glslangValidator -V --target-env vulkan1.1 -o "${src%.comp}.spv" "$src"; exit 1; }
  spirv-val --target-env vulkan1.1 "${src%.comp}.spv"
done
