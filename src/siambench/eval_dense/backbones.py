"""The encoder as dense heads see it: the conv5 feature map, optionally dilated.

Dense protocols keep the canonical backbone's weights and change only how
conv5 is applied. MoCo's and BYOL's segmentation FCN (PROTOCOLS C.6) runs
conv5 with stride 1 and dilation 2 (output stride 16), which is
torchvision's ``replace_stride_with_dilation=[False, False, True]``;
:func:`dilate_layer4` makes that change on a built network, so no weight
moves and the state-dict keys stay torchvision's.
"""

from __future__ import annotations

from torch import nn

from ..data.transforms import Normalize
from ..errors import ConfigError
from ..models import ResNet

OUTPUT_STRIDES = (16, 32)


def _spatial_convs(block: nn.Module) -> list[nn.Conv2d]:
    """The block's 3×3 convolutions (BasicBlock: conv1, conv2; Bottleneck: conv2)."""
    return [m for m in block.children() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]


def dilate_layer4(model: ResNet) -> ResNet:
    """Turn conv5 (``layer4``) into its stride-1, dilation-2 variant, in place, exactly as torchvision does.

    torchvision's rule: the first block loses its stride (its 3×3 and the
    shortcut's 1×1 run at stride 1) and keeps dilation 1; every later
    block's 3×3 convolutions get dilation 2 and padding 2. torchvision has
    no dilated BasicBlock; here the rule covers both of its 3×3
    convolutions, so small ResNet-18/34 models run the same protocol.
    TF-'SAME' convolutions compute their padding from stride and dilation,
    so only plain convolutions get an explicit padding.
    """
    for i, block in enumerate(model.layer4):
        for conv in _spatial_convs(block):
            if i == 0:
                conv.stride = (1, 1)
            else:
                conv.dilation = (2, 2)
                if type(conv) is nn.Conv2d:
                    conv.padding = (2, 2)
        if block.downsample is not None:
            block.downsample[0].stride = (1, 1)
        block.stride = 1
    return model


def feature_extractor(backbone, output_stride: int = 32) -> ResNet:
    """A fresh copy of the canonical ``backbone``'s ResNet whose ``forward_features`` has ``output_stride``.

    16 dilates conv5 (:func:`dilate_layer4`), 32 is the network as trained.
    The strides assume the ImageNet stem; the CIFAR stem does not
    downsample, so its maps are 4× finer.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ConfigError(f"model.output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}")
    model = backbone.build_model()
    return dilate_layer4(model) if output_stride == 16 else model


def input_normalizer(backbone) -> Normalize:
    """The input scaling the encoder was trained with: the canonical backbone's ``input_stats``."""
    return Normalize(*backbone.input_stats)
