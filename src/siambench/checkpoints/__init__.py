"""Checkpoints: the canonical backbone, readers of every published layout, the key audit, exporters.

``load(path)`` is the one entry point evaluations use: it detects the
format, extracts the backbone, infers the architecture from the shapes,
audits every key and returns a :class:`CanonicalBackbone`.
"""

from .backbone import BACKBONE_FILE, META_FILE, load_backbone, save_backbone
from .canonical import CanonicalBackbone, examine, load
from .export import EXPORTERS, export
from .formats import FORMATS

__all__ = [
    "BACKBONE_FILE",
    "EXPORTERS",
    "FORMATS",
    "META_FILE",
    "CanonicalBackbone",
    "examine",
    "export",
    "load",
    "load_backbone",
    "save_backbone",
]
