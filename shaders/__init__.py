"""Kernel library shaders: GLSL sources, committed SPIR-V, WGSL variants (package data)."""
