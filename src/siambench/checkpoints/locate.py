"""Checkpoint names that are not paths: ``SCHEME:REST`` → the local file they stand for.

Every command that takes a checkpoint resolves it here first, so a scheme
works in ``eval``, ``eval-all``, ``ckpt inspect`` and ``ckpt convert`` alike.
Each scheme is one entry, ``name → "module:function"``; the function takes
the part after the colon and returns a local path (a file or a run folder).
Modules are imported only when their scheme is used.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import CheckpointError

SCHEMES: dict[str, tuple[str, str]] = {}


def register_scheme(name: str, target: str, summary: str) -> None:
    """Make ``name:REST`` resolve through ``target`` (``"package.module:function"``)."""
    SCHEMES[name] = (target, summary)


def split_scheme(spec: str | Path) -> tuple[str, str] | None:
    """``(scheme, rest)`` when ``spec`` names a registered scheme and no such file exists, else None."""
    text = str(spec)
    scheme, sep, rest = text.partition(":")
    if not sep or scheme not in SCHEMES or Path(text).exists():
        return None
    return scheme, rest


def locate(spec: str | Path) -> Path:
    """The local path ``spec`` stands for: itself, or what its scheme resolves it to."""
    parts = split_scheme(spec)
    if parts is None:
        return Path(spec)
    scheme, rest = parts
    if not rest:
        raise CheckpointError(f"{spec!r} names no checkpoint: expected {scheme}:NAME ({SCHEMES[scheme][1]}).")
    module, function = SCHEMES[scheme][0].split(":")
    return Path(getattr(importlib.import_module(module), function)(rest))


register_scheme("random", "siambench.checkpoints.random_init:materialize", "random init, ARCH[@WIDTH][,seed=S]")
register_scheme("zoo", "siambench.zoo.download:fetch", "a published checkpoint, see siambench zoo list")
