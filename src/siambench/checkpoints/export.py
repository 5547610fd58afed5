"""Writing the canonical backbone in the format each consumer reads.

One :class:`Exporter` per target, in :data:`EXPORTERS`. Each writes
atomically (a reader never sees half a file) and returns the paths written
and notes for the user: what the consumer cannot represent (TF 'SAME'
padding, un-normalised input) is said, not hidden.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..engine.io import atomic_write, save_torch
from ..errors import CheckpointError
from .canonical import CanonicalBackbone
from .d2_names import to_detectron2

MMSEG_DEPTHS = (18, 34, 50, 101, 152)
TORCHVISION_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass(frozen=True)
class Exporter:
    name: str
    summary: str
    write: Callable[[CanonicalBackbone, Path], tuple[list[Path], list[str]]]


EXPORTERS: dict[str, Exporter] = {}


def register(exporter: Exporter) -> Exporter:
    EXPORTERS[exporter.name] = exporter
    return exporter


def export(backbone: CanonicalBackbone, to: str, out: str | Path) -> tuple[list[Path], list[str]]:
    """Write ``backbone`` for ``to`` (a key of :data:`EXPORTERS`) at ``out``; returns (paths, notes)."""
    if to not in EXPORTERS:
        raise CheckpointError(f"unknown export target {to!r}; choose one of {', '.join(EXPORTERS)}.")
    paths, notes = EXPORTERS[to].write(backbone, Path(out))
    return paths, _common_notes(backbone, to) + notes


def _common_notes(backbone: CanonicalBackbone, to: str) -> list[str]:
    notes = []
    if backbone.spec.padding == "tf_same" and to != "safetensors":
        notes.append(
            f"this network was trained with TensorFlow 'SAME' padding; {to} pads strided layers symmetrically, "
            f"which shifts their outputs by a pixel (small for BYOL R50: 74.6 vs 74.4 top-1 reported by "
            f"byol-convert). siambench's own model (padding='tf_same') reproduces the original exactly."
        )
    if backbone.meta.get("input_normalization") == "none":
        notes.append("the model expects un-normalised RGB in [0, 1]: configure the consumer with mean 0, std 1 "
                     "(std 255 for 0-255 pixels) instead of the ImageNet statistics.")
    return notes


def _meta_strings(backbone: CanonicalBackbone) -> dict[str, str]:
    meta = {k: v for k, v in backbone.meta.items() if k not in ("source_meta",)}
    return {"format": "siambench-backbone", **{k: str(v) for k, v in backbone.spec.to_dict().items()},
            "siambench": json.dumps(meta, sort_keys=True, default=str)}


def _require(backbone: CanonicalBackbone, to: str, *, stem: bool = True, width: bool = False, archs=None) -> None:
    spec = backbone.spec
    if stem and spec.stem != "imagenet":
        raise CheckpointError(f"{to} has no CIFAR-stem ResNet (3×3 conv1, no max-pool); export to safetensors or "
                              f"torchvision and build it with siambench.models.build_resnet(..., stem='cifar').")
    if width and spec.width != 1:
        raise CheckpointError(f"{to}'s ResNet has a fixed 64-channel stem, so a {spec.width:g}× wide {spec.arch} "
                              f"cannot be expressed; export to safetensors or torchvision instead.")
    if archs is not None and spec.arch not in archs:
        raise CheckpointError(f"{to} has no {spec.arch}; it builds {', '.join(archs)}.")


def _write_torchvision(backbone: CanonicalBackbone, out: Path):
    notes = []
    spec = backbone.spec
    if spec.arch not in TORCHVISION_ARCHS or spec.width != 1 or spec.stem != "imagenet":
        notes.append(f"torchvision.models has no {spec.arch} with {spec.width:g}× width and a {spec.stem} stem: "
                     f"the keys are torchvision's, but build the network with siambench.models.build_resnet"
                     f"('{spec.arch}', {spec.width:g}, '{spec.stem}').")
    else:
        notes.append(f"load with torchvision.models.{spec.arch}().load_state_dict(sd, strict=False): "
                     f"only fc.weight and fc.bias are missing.")
    return [save_torch(dict(backbone.state_dict), out)], notes


def _write_safetensors(backbone: CanonicalBackbone, out: Path):
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in backbone.state_dict.items()}
    return [atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata=_meta_strings(backbone)))], []


def detectron2_model(backbone: CanonicalBackbone) -> dict:
    """The object detectron2's ``DetectionCheckpointer`` reads from a ``.pkl`` (numpy arrays, renamed keys)."""
    return {
        "model": {to_detectron2(k): v.detach().cpu().numpy() for k, v in backbone.state_dict.items()},
        "__author__": "siambench",
        "matching_heuristics": True,
    }


def _write_detectron2(backbone: CanonicalBackbone, out: Path):
    _require(backbone, "detectron2")
    obj = detectron2_model(backbone)

    def write(tmp):
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=4)

    spec = backbone.spec
    notes = [f"in the detectron2 config set MODEL.RESNETS.DEPTH {spec.arch.removeprefix('resnet')}, "
             f"MODEL.RESNETS.STRIDE_IN_1X1 False, INPUT.FORMAT RGB and the torchvision PIXEL_MEAN/PIXEL_STD "
             f"(PROTOCOLS C.5, the *_moco.yaml settings)."]
    if spec.width != 1:
        notes.append(f"for {spec.width:g}× width also set MODEL.RESNETS.STEM_OUT_CHANNELS {int(64 * spec.width)}, "
                     f"RES2_OUT_CHANNELS {int(256 * spec.width)} and WIDTH_PER_GROUP {int(64 * spec.width)}.")
    return [atomic_write(out, write)], notes


MMSEG_TEMPLATE = "fcn-d8_4xb4-20k_voc12aug-512x512.py.tmpl"


def mmseg_config(backbone: CanonicalBackbone, checkpoint: Path) -> str:
    """mmselfsup's VOC12aug FCN-D8 benchmark config with this backbone (type='ResNet', V1b, style='pytorch').

    A complete mmsegmentation config (no ``_base_`` files): the shipped
    template with the depth, widths, input normalisation and checkpoint
    path of ``backbone`` filled in.
    """
    from importlib.resources import files
    from string import Template

    spec = backbone.spec
    raw = backbone.meta.get("input_normalization") == "none"
    template = Template(files("siambench.configs").joinpath("mmseg", MMSEG_TEMPLATE).read_text())
    return template.substitute(
        source=f"{checkpoint.name} (a {backbone.meta.get('source_format')} checkpoint, sha256 "
               f"{str(backbone.meta.get('sha256', '?'))[:12]}...)",
        arch=spec.arch,
        width=f"{spec.width:g}",
        depth=spec.arch.removeprefix("resnet"),
        stem_channels=int(64 * spec.width),
        c5=spec.num_features,
        c4=spec.num_features // 2,
        mean="[0.0, 0.0, 0.0]" if raw else "[123.675, 116.28, 103.53]",
        std="[255.0, 255.0, 255.0]" if raw else "[58.395, 57.12, 57.375]",
        checkpoint=repr(str(checkpoint.resolve())),
    )


def _write_mmseg(backbone: CanonicalBackbone, out: Path):
    _require(backbone, "mmsegmentation", archs=tuple(f"resnet{d}" for d in MMSEG_DEPTHS))
    meta = {"author": "siambench", "source_format": str(backbone.meta.get("source_format")),
            "sha256": str(backbone.meta.get("sha256")), "arch": backbone.spec.arch, "width": backbone.spec.width}
    ckpt = save_torch({"state_dict": dict(backbone.state_dict), "meta": meta}, out)
    config = out.with_suffix(".py") if out.suffix != ".py" else out.with_name(out.stem + "_config.py")
    text = mmseg_config(backbone, ckpt)
    atomic_write(config, lambda tmp: Path(tmp).write_text(text))
    return [ckpt, config], [f"{config.name} is mmselfsup's VOC12aug FCN-D8 benchmark with this backbone: run it "
                            "with mmsegmentation's tools/train.py, or take its backbone into your own config."]


def _write_timm(backbone: CanonicalBackbone, out: Path):
    _require(backbone, "timm", width=True, archs=("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                                                   "resnet200"))
    if out.suffix == ".safetensors":
        paths, _ = _write_safetensors(backbone, out)
    else:
        paths = [save_torch(dict(backbone.state_dict), out)]
    note = (f"timm.create_model('{backbone.spec.arch}', num_classes=0, checkpoint_path='{out}') loads it "
            f"strictly; with a classifier, load_state_dict(strict=False) misses only fc.weight and fc.bias.")
    return paths, [note]


register(Exporter("torchvision", "state dict with torchvision names, no fc (.pth)", _write_torchvision))
register(Exporter("safetensors", "safetensors with the architecture and provenance in its metadata",
                  _write_safetensors))
register(Exporter("detectron2", "detectron2 .pkl: numpy arrays renamed by PROTOCOLS C.5, matching_heuristics",
                  _write_detectron2))
register(Exporter("mmseg", "mmsegmentation checkpoint {state_dict, meta} plus a ResNet (V1b) config snippet",
                  _write_mmseg))
register(Exporter("timm", "state dict for timm.create_model('resnetXX') (.pth, or .safetensors by suffix)",
                  _write_timm))
