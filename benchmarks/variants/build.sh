#!/usr/bin/env bash
# Compile every candidate shader here (*.comp, which may include *.glsl) into its committed .spv.
set -euo pipefail
cd "$(dirname "$0")"
for src in *.comp; do
  glslangValidator -V --target-env vulkan1.1 -o "${src%.comp}.spv" "$src" >/dev/null || {
    glslangValidator -V --target-env vulkan1.1 -o "${src%.comp}.spv" "$src"; exit 1; }
done
spirv-val --target-env vulkan1.1 *.spv 2>/dev/null || for f in *.spv; do spirv-val --target-env vulkan1.1 "$f"; done
