"""Which ResNet a state dict holds, and whether it holds all of it.

The architecture is read from the tensors' shapes, never from a file name:
the first convolution gives the stem (7×7: ImageNet, 3×3: CIFAR) and the
width (its output channels / 64), ``conv3`` tells bottleneck from basic
blocks, and the number of blocks per stage names the depth. The state dict
is then compared, key by key and shape by shape, with the one that
architecture has; a checkpoint that would load only partly is refused with
the keys that are missing, misshapen or unexpected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from ..errors import CheckpointError
from ..models.resnet import ARCHS, ResNetSpec

NBT = "num_batches_tracked"
_LAYER = re.compile(r"^layer([1-4])\.(\d+)\.")
# A tensor name that belongs to a torchvision ResNet trunk, whatever prefix precedes it.
_BACKBONE_NAME = re.compile(
    r"(^|\.)(conv1\.weight|bn1\.(weight|bias|running_mean|running_var|num_batches_tracked)"
    r"|layer[1-4]\.\d+\.(conv\d|bn\d|downsample\.\d)\.\w+)$"
)
_VIT = re.compile(r"(^|\.)(cls_token|pos_embed|patch_embed\.|blocks\.\d+\.attn\.)")


def explain_unknown(keys, where: str) -> None:
    """Raise the specific error for well-known non-torchvision layouts (ViT, deep stems) under any prefix."""
    keys = [k for k in keys if isinstance(k, str)]
    vit = sorted(k for k in keys if _VIT.search(k))
    if vit:
        blocks = [k for k in vit if ".attn." in k]
        evidence = [k for k in vit if ".attn." not in k][:3] + ([f"blocks.*.attn.* ({len(blocks)} tensors)"]
                                                                 if blocks else [])
        raise CheckpointError(
            f"{where} holds a Vision Transformer ({', '.join(evidence)}), not a ResNet; siambench "
            f"evaluates torchvision ResNets (keys conv1.weight, bn1.*, layer1.0.conv1.weight, ...)."
        )
    deep = sorted(k for k in keys if re.search(r"(^|\.)(stem|conv1)\.\d+\.", k))
    if deep:
        raise CheckpointError(
            f"{where} is not a torchvision ResNet: it has a deep stem of three 3×3 convolutions "
            f"({summarize(deep, limit=4)}), as in ResNetV1c/V1d (mmsegmentation, mmpretrain) or timm's "
            f"resnet50c/d, where torchvision's ResNet starts with one 7×7 conv1 (keys conv1.weight, bn1.*). "
            f"Use a checkpoint of the plain ResNet (mmseg/mmpretrain type='ResNet', timm 'resnet50')."
        )


def looks_like_backbone(key: str) -> bool:
    """True for names such as ``x.layer3.4.conv2.weight`` or ``bn1.running_mean`` under any prefix."""
    return bool(_BACKBONE_NAME.search(key))


@lru_cache(maxsize=32)
def expected_shapes(spec: ResNetSpec) -> dict[str, tuple[int, ...]]:
    """Every tensor of ``spec``'s backbone (no ``fc``) and its shape, in ``state_dict`` order.

    Written out from the layout rather than read from a built model, which
    for a ResNet-200 costs a second even on the meta device; a test holds it
    equal to :class:`~siambench.models.resnet.ResNet`'s state dict.
    """
    block, layout = ARCHS[spec.arch]
    bottleneck = block.__name__ == "Bottleneck"
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(name: str, c: int) -> None:
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{leaf}"] = (c,)
        shapes[f"{name}.{NBT}"] = ()

    inplanes = int(64 * spec.width)
    k = 7 if spec.stem == "imagenet" else 3
    shapes["conv1.weight"] = (inplanes, 3, k, k)
    bn("bn1", inplanes)
    for stage, (blocks, base) in enumerate(zip(layout, (64, 128, 256, 512))):
        planes = int(base * spec.width)
        out = planes * block.expansion
        for b in range(blocks):
            p = f"layer{stage + 1}.{b}"
            if bottleneck:
                convs = [(planes, inplanes, 1), (planes, planes, 3), (out, planes, 1)]
            else:
                convs = [(planes, inplanes, 3), (planes, planes, 3)]
            for i, (co, ci, kk) in enumerate(convs, 1):
                shapes[f"{p}.conv{i}.weight"] = (co, ci, kk, kk)
                bn(f"{p}.bn{i}", co)
            if b == 0 and (stage > 0 or inplanes != out):
                shapes[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1)
                bn(f"{p}.downsample.1", out)
            inplanes = out
    return shapes


def describe(spec: ResNetSpec) -> str:
    width = f"{spec.width:g}×" if spec.width != 1 else "1×"
    return f"{spec.arch} ({width} width, {spec.stem} stem)"


def summarize(keys, universe=None, limit: int = 6) -> str:
    """Name a set of keys briefly: ``layer4.*`` when a whole stage is in it, ``layer3.5.*`` for a whole block."""
    keys = sorted(set(keys), key=_natural)
    universe = set(universe) if universe is not None else None
    parts, seen = [], set()
    for key in keys:
        if key in seen:
            continue
        group = None
        m = _LAYER.match(key)
        if m and universe is not None:
            for prefix in (f"layer{m.group(1)}.", f"layer{m.group(1)}.{m.group(2)}."):
                members = {k for k in universe if k.startswith(prefix)}
                if members and members <= set(keys):
                    group = (f"{prefix}* ({len(members)} tensors)", members)
                    break
        if group:
            parts.append(group[0])
            seen |= group[1]
        else:
            parts.append(key)
            seen.add(key)
    more = len(parts) - limit
    return ", ".join(parts[:limit]) + (f" and {more} more" if more > 0 else "")


def _natural(key: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def infer_spec(tensors: dict[str, torch.Tensor], padding: str = "torch", where: str = "the checkpoint") -> ResNetSpec:
    """The architecture the shapes describe; a clear error when they describe no torchvision ResNet."""
    keys = list(tensors)
    explain_unknown(keys, where)
    avg_down = sorted(k for k in keys if re.match(r"^layer\d\.0\.downsample\.2\.", k))
    if avg_down:
        raise CheckpointError(
            f"{where} is not a torchvision ResNet: its shortcuts average-pool before the 1×1 convolution "
            f"({summarize(avg_down, limit=3)}), as in ResNetV1d; torchvision's shortcut is downsample.0 (conv) "
            f"and downsample.1 (BatchNorm)."
        )
    if "conv1.weight" not in tensors:
        raise CheckpointError(
            f"{where} holds no ResNet: expected torchvision keys conv1.weight, bn1.*, layer1.0.conv1.weight, ... "
            f"but found {len(keys)} tensors such as {summarize(keys, limit=5) or 'none'}."
        )
    conv1 = tuple(tensors["conv1.weight"].shape)
    if len(conv1) != 4 or conv1[1] != 3 or conv1[2] != conv1[3] or conv1[2] not in (3, 7):
        raise CheckpointError(
            f"{where}: conv1.weight has shape {list(conv1)}; a torchvision ResNet has [64·width, 3, 7, 7] "
            f"(ImageNet stem) or [64·width, 3, 3, 3] (CIFAR stem)."
        )
    stem = "imagenet" if conv1[2] == 7 else "cifar"
    width = conv1[0] / 64
    counts = [0, 0, 0, 0]
    bottleneck = False
    for k in keys:
        m = _LAYER.match(k)
        if m:
            stage = int(m.group(1)) - 1
            counts[stage] = max(counts[stage], int(m.group(2)) + 1)
            bottleneck |= k.startswith(f"layer{m.group(1)}.{m.group(2)}.conv3.")
    block = "Bottleneck" if bottleneck else "BasicBlock"
    # The nearest layout by blocks per present stage (absent stages are left to the audit to report), so that
    # a truncated or padded stage is named as missing or unexpected blocks of the architecture it came from.
    order = list(ARCHS)
    arch = min(
        (name for name, (cls, _) in ARCHS.items() if cls.__name__ == block),
        key=lambda n: (sum(abs(a - c) for a, c in zip(ARCHS[n][1], counts) if c), order.index(n)),
    )
    return ResNetSpec(arch, width, stem, padding)


@dataclass
class Audit:
    """The comparison of a state dict with the backbone its shapes describe."""

    spec: ResNetSpec
    expected: int
    found: int
    missing: list[str] = field(default_factory=list)
    misshapen: list[tuple[str, tuple, tuple]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.misshapen or self.unexpected)

    def problem(self, where: str) -> str | None:
        """One paragraph naming everything that did not match, or ``None``."""
        if self.ok:
            return None
        universe = [k for k in expected_shapes(self.spec) if not k.endswith(NBT)]
        parts = []
        if self.missing:
            parts.append(f"missing {summarize(self.missing, universe)}")
        if self.misshapen:
            shown = ", ".join(f"{k} {list(got)} (expected {list(want)})" for k, got, want in self.misshapen[:4])
            more = len(self.misshapen) - 4
            parts.append(f"misshapen {shown}" + (f" and {more} more" if more > 0 else ""))
        if self.unexpected:
            parts.append(f"unexpected backbone tensors {summarize(self.unexpected)}")
        return (
            f"{where}: expected {self.expected} backbone tensors of a {describe(self.spec)}, found {self.found} "
            f"that match: {'; '.join(parts)}. A partial load would evaluate a network other than the one "
            f"published, so nothing was loaded; if the backbone sits under another prefix, pass --prefix "
            f"(and --format to choose the reader)."
        )


def audit(tensors: dict[str, torch.Tensor], spec: ResNetSpec, extra_unexpected=()) -> Audit:
    """Compare ``tensors`` (torchvision names, ``fc`` already set aside) with ``spec``'s backbone."""
    want = expected_shapes(spec)
    required = [k for k in want if not k.endswith(NBT)]
    result = Audit(spec, expected=len(required), found=0)
    for key in required:
        if key not in tensors:
            result.missing.append(key)
        elif tuple(tensors[key].shape) != want[key]:
            result.misshapen.append((key, tuple(tensors[key].shape), want[key]))
        else:
            result.found += 1
    result.filled = [k for k in want if k.endswith(NBT) and k not in tensors]
    result.unexpected = sorted([k for k in tensors if k not in want], key=_natural) + list(extra_unexpected)
    return result
