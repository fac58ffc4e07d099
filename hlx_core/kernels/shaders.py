"""The 900s of the library's shaders, as the kernel helpers bind them, their handles, and their references.

A library kernel's shader is its committed SPIR-V (``shaders/<stem>.spv``) with its WGSL twin where one
exists. That 900's handle is what identifies the shader a library kernel's NumPy reference describes: a
reference runs only for a stage of that very shader, or of another library shader with the same reference
(gemm's runs the gemm128 shader too: ``KernelSpec.models``), so a custom shader that happens to carry a
library kernel's name never gets the library's results on one backend and its own on another.
"""
from __future__ import annotations

import functools
from typing import Any, Iterable

from hlx_core.codec import encode_chunks
from hlx_core.codec.handle import Buffer, Handle, blake3_digest, tag_of
from hlx_core.contracts.shader import shader_contract
from hlx_shaders import FOLDER

_references: dict[str, Any] = {}  # library shader stem -> the NumPy reference of the kernel it runs
_variants: dict[str, tuple[Any, ...]] = {}  # library shader stem -> its kernel's variants


@functools.lru_cache(maxsize=None)
def library_shader(stem: str) -> dict:
    """The validated 900 of a library shader: the committed SPIR-V, plus its WGSL twin where one exists."""
    files = FOLDER
    wgsl = files / f"{stem}.wgsl"
    return shader_contract((files / f"{stem}.spv").read_bytes(), "main",
                           wgsl_source=wgsl.read_text(encoding="utf-8") if wgsl.is_file() else None)


@functools.lru_cache(maxsize=None)
def library_shader_object(stem: str) -> tuple[Handle, tuple[Buffer, ...]]:
    """The handle and LC-B bytes of a library shader's 900, encoded and hashed once per process."""
    contract = library_shader(stem)
    chunks = tuple(encode_chunks(contract))
    return Handle.from_digest(tag_of(contract), blake3_digest(chunks)), chunks


def record_library(specs: Iterable[Any]) -> None:
    """Note which reference each library shader has, its variants' shaders included, and which kernels
    have variants (``hlx_core.kernels.library`` records its kernels)."""
    for spec in specs:
        _references[spec.shader] = spec.reference
        for variant in spec.variants:
            _references[variant.shader] = spec.reference
        if spec.variants:
            _variants[spec.shader] = tuple(spec.variants)


def library_variants() -> dict[str, tuple[Any, ...]]:
    """Library shader stem -> the ``Variant``s its kernel declares (kernels/variants.py)."""
    return dict(_variants)


def library_reference(stem: str) -> Any:
    """The NumPy reference of the library kernel whose shader is ``stem``, else None."""
    return _references.get(stem)
