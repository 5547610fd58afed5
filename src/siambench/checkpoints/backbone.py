"""The canonical backbone file that every evaluation starts from.

``backbone.pth`` is a plain torchvision ResNet state dict without ``fc.*``
(loadable with ``torch.load(weights_only=True)`` and
``torchvision.models.resnet50().load_state_dict(sd, strict=False)`` with only
``fc.*`` missing), and ``meta.json`` beside it says how to rebuild the
network: architecture, width, stem, padding convention, where it came from,
and the sha256 of ``backbone.pth``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..engine.io import save_json, save_torch, sha256_file
from ..errors import CheckpointError
from ..models import ResNetSpec
from .audit import expected_shapes

BACKBONE_FILE = "backbone.pth"
META_FILE = "meta.json"


def save_backbone(out_dir: str | Path, state_dict: dict[str, torch.Tensor], spec: ResNetSpec, **meta) -> Path:
    """Write ``backbone.pth`` and ``meta.json`` into ``out_dir``; returns the ``.pth`` path."""
    out_dir = Path(out_dir)
    state_dict = {k: v.detach().cpu().contiguous() for k, v in state_dict.items() if not k.startswith("fc.")}
    path = save_torch(state_dict, out_dir / BACKBONE_FILE)
    save_json(
        {
            "format": "siambench-backbone",
            **spec.to_dict(),
            **meta,
            "num_tensors": len(state_dict),
            "sha256": sha256_file(path),
        },
        out_dir / META_FILE,
    )
    return path


def read_meta(meta_path: Path) -> dict:
    """A ``meta.json`` as a dict; a file that is not one JSON object is one clear error."""
    size = meta_path.stat().st_size
    if size > 16 << 20:
        raise CheckpointError(f"{meta_path} is {size} bytes; a siambench meta.json is a few kilobytes of JSON.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{meta_path} is not valid JSON ({exc}); expected the JSON object that pretraining writes beside "
            f"{BACKBONE_FILE}."
        ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{meta_path} holds a JSON {type(meta).__name__}; expected the JSON object that pretraining writes "
            f"beside {BACKBONE_FILE}."
        )
    return meta


def load_backbone(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a backbone file (or the folder holding it) and its ``meta.json``; checks the hash and the keys."""
    path = Path(path)
    if path.is_dir():
        path = path / BACKBONE_FILE
    meta_path = path.with_name(META_FILE)
    if not path.is_file():
        raise CheckpointError(f"no backbone file at {path}; expected {BACKBONE_FILE} written by `siambench pretrain`.")
    if not meta_path.is_file():
        raise CheckpointError(f"{path} has no {META_FILE} beside it, so its architecture is unknown.")
    meta = read_meta(meta_path)
    digest = sha256_file(path)
    if meta.get("sha256") != digest:
        raise CheckpointError(f"{path} does not match its {META_FILE}: sha256 {digest}, expected {meta.get('sha256')}.")
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    try:
        spec = ResNetSpec(meta["arch"], float(meta["width"]), meta["stem"], meta.get("padding", "torch"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta_path} does not describe a ResNet ({type(exc).__name__}: {exc}).") from None
    expected = set(expected_shapes(spec))
    missing, unexpected = expected - set(state_dict), set(state_dict) - expected
    if missing or unexpected:
        raise CheckpointError(
            f"{path} is not a complete {spec.arch} (width {spec.width}, {spec.stem} stem): "
            f"{len(missing)} missing keys (e.g. {sorted(missing)[:3]}), {len(unexpected)} unexpected (e.g. {sorted(unexpected)[:3]})."
        )
    return state_dict, meta
