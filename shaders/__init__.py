"""Kernel library shaders: GLSL sources, committed SPIR-V, WGSL variants (package data)."""
from pathlib import Path

#: The folder of the files (the package is installed unzipped). Read through this rather than
#: ``importlib.resources``, which costs a new process ~5 ms to import (it brings tempfile and zipfile).
FOLDER = Path(__file__).parent
