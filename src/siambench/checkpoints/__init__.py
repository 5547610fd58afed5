"""Checkpoints: the canonical backbone file, readers and exporters."""

from .backbone import BACKBONE_FILE, META_FILE, load_backbone, save_backbone

__all__ = ["BACKBONE_FILE", "META_FILE", "load_backbone", "save_backbone"]
