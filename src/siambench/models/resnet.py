"""torchvision ResNets with width multipliers and a CIFAR stem.

Module names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ``fc``), so a state dict from here loads into
``torchvision.models.resnet50()`` and back: this is the canonical backbone
every evaluation builds on. Two additions over torchvision:

* ``width``: every channel count (stem, each stage's planes, hence the
  bottleneck's inner and outer widths) is multiplied, as in SimCLR's and
  BYOL's ResNet-50 (2×), (4×) and ResNet-200 (2×). Fractional widths make the
  small models the embedded default trains on a CPU.
* ``stem="cifar"``: a 3×3 stride-1 first convolution and no max-pool, the
  variant used for 32×32 images (SimSiam App. D, solo-learn, lightly).

* ``padding="tf_same"``: TensorFlow's ``'SAME'`` padding on the strided
  layers, for networks trained in JAX/TF (BYOL's official release). TF pads
  a strided layer asymmetrically (the extra row and column go at the bottom
  and right) where torchvision pads symmetrically, so the same weights see
  inputs shifted by a pixel; this option computes what the original network
  computed. Only the forward changes: the state-dict keys stay torchvision's.

The classifier is dropped by default (``fc`` is ``Identity``): an SSL encoder
returns the pooled features.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
    "resnet200": (Bottleneck, (3, 24, 36, 3)),
}
STEMS = ("imagenet", "cifar")
PADDINGS = ("torch", "tf_same")


@dataclass(frozen=True)
class ResNetSpec:
    """What it takes to rebuild a backbone: stored beside every checkpoint."""

    arch: str = "resnet50"
    width: float = 1.0
    stem: str = "imagenet"
    padding: str = "torch"

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.stem not in STEMS:
            raise ValueError(f"unknown stem {self.stem!r}; expected one of {', '.join(STEMS)}")
        if self.padding not in PADDINGS:
            raise ValueError(f"unknown padding {self.padding!r}; expected one of {', '.join(PADDINGS)}")
        if not self.width > 0 or int(64 * self.width) != 64 * self.width:
            raise ValueError(f"width {self.width} must be positive and make 64·width an integer")

    @property
    def num_features(self) -> int:
        block, _ = ARCHS[self.arch]
        return int(512 * self.width) * block.expansion

    def to_dict(self) -> dict:
        return asdict(self)


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF's ``'SAME'`` padding of one spatial dimension: (before, after), the extra one after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TFSameConv2d(nn.Conv2d):
    """A ``Conv2d`` padded as TF's ``'SAME'`` for the input it receives (its own ``padding`` is 0)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        top, bottom = tf_same_pads(x.shape[-2], kh, sh, dh)
        left, right = tf_same_pads(x.shape[-1], kw, sw, dw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


class TFSameMaxPool2d(nn.MaxPool2d):
    """A ``MaxPool2d`` padded as TF's ``'SAME'``: padded cells never win the max."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        top, bottom = tf_same_pads(x.shape[-2], k, s)
        left, right = tf_same_pads(x.shape[-1], k, s)
        return super().forward(F.pad(x, (left, right, top, bottom), value=float("-inf")))


def _use_tf_same(model: nn.Module) -> None:
    """Swap every strided conv and the max-pool for its TF-'SAME' twin.

    Stride-1 convolutions with odd kernels pad the same way in both
    conventions, so only the strided layers change.
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Conv2d and child.stride != (1, 1):
                new = TFSameConv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                   padding=0, dilation=child.dilation, groups=child.groups, bias=child.bias is not None)
            elif type(child) is nn.MaxPool2d:
                new = TFSameMaxPool2d(child.kernel_size, child.stride, padding=0)
            else:
                continue
            setattr(parent, name, new)


class ResNet(nn.Module):
    """torchvision's ResNet with every channel count scaled by ``width``."""

    def __init__(self, spec: ResNetSpec, num_classes: int = 0, zero_init_residual: bool = False):
        super().__init__()
        block, layers = ARCHS[spec.arch]
        self.spec = spec
        self.inplanes = int(64 * spec.width)
        if spec.stem == "cifar":
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, int(64 * spec.width), layers[0])
        self.layer2 = self._make_layer(block, int(128 * spec.width), layers[1], stride=2)
        self.layer3 = self._make_layer(block, int(256 * spec.width), layers[2], stride=2)
        self.layer4 = self._make_layer(block, int(512 * spec.width), layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = spec.num_features
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        if spec.padding == "tf_same":
            _use_tf_same(self)
        self._init_weights(zero_init_residual)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's initialisation, so that width 1 matches torchvision exactly.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map, before pooling (dense tasks use it)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))


def build_resnet(arch: str = "resnet50", width: float = 1.0, stem: str = "imagenet", padding: str = "torch",
                 **kwargs) -> ResNet:
    """Build a backbone; ``kwargs`` go to :class:`ResNet` (``num_classes``, ``zero_init_residual``)."""
    return ResNet(ResNetSpec(arch, float(width), stem, padding), **kwargs)


def backbone_state_dict(model: ResNet) -> dict[str, torch.Tensor]:
    """The canonical backbone: torchvision keys, no ``fc.*``, tensors detached on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
