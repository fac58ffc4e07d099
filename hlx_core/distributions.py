"""Installed distributions' entry points and versions, read without ``importlib.metadata`` where that gives
the same answer.

``importlib.metadata`` costs a new process ~10 ms to import (it brings the email package) and ~8 ms to
parse every installed distribution's entry points (a few hundred here), where loading plugins needs only
the ``entry_points.txt`` of the few that declare ``hlx.backends``, and the version only hlx's metadata. So
the folders on ``sys.path`` are read as ``importlib.metadata`` reads them: in order, their ``*.dist-info``
and ``*.egg-info`` folders, the first distribution of a (normalized) name winning. Where that would not
see what ``importlib.metadata`` sees (a zip or ``.egg`` on ``sys.path``, a finder of distributions other
than the path's), ``importlib.metadata`` is asked instead.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import os
import re
import sys
from collections.abc import Iterator
from functools import cached_property, reduce
from pathlib import Path
from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")


class _Unsupported(Exception):
    """A place on the search path only ``importlib.metadata`` reads."""


class DistributionRef:
    """The distribution a plugin came from: its metadata folder, or what ``importlib.metadata`` found, whose
    name and version are read on first use (only listings and messages show them); or, for a plugin
    registered in code, just the ``name`` given."""

    def __init__(self, path: str | None = None, dist: Any = None, name: str | None = None) -> None:
        self._path, self._dist = path, dist
        if name is not None:
            self.name, self.version = name, ""

    @cached_property
    def _metadata(self) -> Any:
        if self._dist is None and self._path is not None:
            from importlib import metadata  # here: only a listing or a message asks

            self._dist = metadata.PathDistribution(Path(self._path))
        return self._dist

    @cached_property
    def name(self) -> str:
        dist = self._metadata
        return (dist.metadata["Name"] or "") if dist is not None else ""

    @cached_property
    def version(self) -> str:
        dist = self._metadata
        return (dist.version or "") if dist is not None else ""


class EntryPoint:
    """``name = value`` of a group; ``load()`` imports ``module[:attr.attr]`` as ``importlib.metadata``
    does (extras in brackets are ignored)."""

    __slots__ = ("name", "value", "dist")

    def __init__(self, name: str, value: str, dist: DistributionRef) -> None:
        self.name, self.value, self.dist = name, value, dist

    def load(self) -> Any:
        module, _, attrs = self.value.split("[", 1)[0].partition(":")
        return reduce(getattr, filter(None, attrs.strip().split(".")), importlib.import_module(module.strip()))


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of every distribution on ``sys.path``, in ``importlib.metadata``'s
    order."""
    try:
        found: list[EntryPoint] = []
        for _, path in _folders():
            text = _read(path, "entry_points.txt")
            if text is not None and f"[{group}]" in text:
                dist = DistributionRef(path)
                found += [EntryPoint(k, v, dist) for k, v in _section(text, group)]
        return found
    except _Unsupported:
        from importlib import metadata

        return [EntryPoint(ep.name, ep.value, DistributionRef(dist=getattr(ep, "dist", None)))
                for ep in metadata.entry_points(group=group)]


def version(distribution: str) -> str | None:
    """The version of the installed ``distribution`` (``importlib.metadata.version``), None when none is."""
    wanted = _normalize(distribution)
    try:
        for name, path in _folders():
            if name == wanted:
                text = _read(path, "METADATA") or _read(path, "PKG-INFO") or ""
                found = _header(text, "Version")
                if found is None:
                    raise _Unsupported(path)
                return found
        return None
    except _Unsupported:
        from importlib import metadata

        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return None


def _folders() -> Iterator[tuple[str, str]]:
    """(normalized name, metadata folder) of each distribution on ``sys.path``, the first of a name only."""
    if any(f is not importlib.machinery.PathFinder and hasattr(f, "find_distributions") for f in sys.meta_path):
        raise _Unsupported("a finder of its own distributions")
    seen: set[str] = set()
    for root in sys.path:
        folder = root or "."
        try:
            children = os.listdir(folder)
        except NotADirectoryError:
            raise _Unsupported(folder) from None  # a zip on sys.path
        except OSError:  # missing or unreadable: importlib.metadata skips it too
            continue
        if folder.lower().endswith(".egg"):
            raise _Unsupported(folder)
        for child in children:
            low = child.lower()
            if low.endswith(_SUFFIXES):
                name = _normalize(low.rpartition(".")[0].partition("-")[0])
                if name not in seen:
                    seen.add(name)
                    yield name, os.path.join(folder, child)


def _normalize(name: str) -> str:
    """PEP 503 normalization with underscores, as ``importlib.metadata`` compares names."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _read(folder: str, name: str) -> str | None:
    try:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):  # no such file, an egg-info that is a file itself, or not text
        return None


def _header(text: str, field: str) -> str | None:
    """A field of a metadata file's header (the lines before the first blank one)."""
    for line in text.splitlines():
        if not line.strip():
            break
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == field.lower():
            return value.strip()
    return None


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` pairs of ``[group]`` in an ``entry_points.txt`` (comments and blanks skipped)."""
    pairs, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside:
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs
