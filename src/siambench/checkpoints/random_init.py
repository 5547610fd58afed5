"""``random:ARCH[@WIDTH][,seed=S][,stem=cifar][,padding=tf_same]``: a random-init backbone as a checkpoint.

Every self-supervised table has a "random init" row. This scheme makes it a
checkpoint name like any other (``--ckpt random:resnet50``,
``eval-all --baseline random``): the backbone is built with torchvision's
initialisation from ``torch.manual_seed(S)`` and written once, as a
siambench backbone folder (``backbone.pth`` + ``meta.json``), under
``$SIAMBENCH_CACHE/random/``. The same spec gives the same file, and the
same weights as ``siambench pretrain --random-init`` of a preset with that
architecture and seed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..engine.io import sha256_file
from ..engine.paths import cache_dir
from ..errors import CheckpointError
from ..models import ResNetSpec, backbone_state_dict, build_resnet
from .backbone import BACKBONE_FILE, META_FILE, save_backbone

SYNTAX = "random:ARCH[@WIDTH][,seed=S][,stem=imagenet|cifar][,padding=torch|tf_same], e.g. random:resnet18@0.25,seed=1"
OPTIONS = ("seed", "stem", "padding")


def parse(rest: str) -> tuple[ResNetSpec, int]:
    """``(spec, seed)`` of the part after ``random:``."""
    head, *options = rest.split(",")
    arch, _, width = head.partition("@")
    fields = {"seed": "0", "stem": "imagenet", "padding": "torch"}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in OPTIONS:
            raise CheckpointError(f"random:{rest}: {option!r} is not an option; expected {', '.join(OPTIONS)} "
                                  f"as key=value ({SYNTAX}).")
        fields[key] = value
    try:
        seed = int(fields["seed"])
        spec = ResNetSpec(arch, float(width) if width else 1.0, fields["stem"], fields["padding"])
    except ValueError as err:
        raise CheckpointError(f"random:{rest} is not a random-init spec: {err} ({SYNTAX}).") from None
    if seed < 0:
        raise CheckpointError(f"random:{rest}: the seed must be 0 or more, got {seed}.")
    return spec, seed


def spec_name(spec: ResNetSpec, seed: int = 0) -> str:
    """The canonical ``random:`` name of ``spec`` and ``seed`` (defaults left out)."""
    name = f"random:{spec.arch}" + (f"@{spec.width:g}" if spec.width != 1.0 else "")
    if spec.stem != "imagenet":
        name += f",stem={spec.stem}"
    if spec.padding != "torch":
        name += f",padding={spec.padding}"
    return name + (f",seed={seed}" if seed else "")


def _folder_name(spec: ResNetSpec, seed: int) -> str:
    extra = "".join(f"_{v}" for v, default in ((spec.stem, "imagenet"), (spec.padding, "torch")) if v != default)
    return f"{spec.arch}_w{spec.width:g}{extra}_seed{seed}"


def _complete(folder: Path) -> bool:
    try:
        meta = json.loads((folder / META_FILE).read_text())
        return meta.get("sha256") == sha256_file(folder / BACKBONE_FILE)
    except (OSError, json.JSONDecodeError):
        return False


def write_random_backbone(out_dir: str | Path, spec: ResNetSpec, seed: int = 0) -> Path:
    """Write the random-init backbone of ``spec`` drawn from ``seed`` into ``out_dir``; returns ``backbone.pth``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_resnet(spec.arch, spec.width, spec.stem, spec.padding)
    return save_backbone(out_dir, backbone_state_dict(model), model.spec, method="random-init",
                         source_format="random-init", name=spec_name(spec, seed), random_init=True, seed=seed,
                         steps=0, epochs=0,
                         init=f"torchvision's ResNet initialisation after torch.manual_seed({seed}), never trained")


def materialize(rest: str) -> Path:
    """The folder of the backbone ``random:rest`` names, written on first use (the scheme's entry point)."""
    spec, seed = parse(rest)
    parent = cache_dir("random")
    folder = parent / _folder_name(spec, seed)
    if _complete(folder):
        return folder
    # Written beside its place and renamed, so a concurrent or killed writer never leaves half a folder.
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{folder.name}."))
    try:
        write_random_backbone(tmp, spec, seed)
        if folder.exists() and not _complete(folder):
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _complete(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
