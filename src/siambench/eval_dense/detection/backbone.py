"""``build_basic_resnet_backbone``: detectron2's ResNet-18/34 at any width, registered with detectron2.

detectron2's ``build_resnet_backbone`` builds basic-block ResNets only with
a 64-channel res2, so it cannot hold a narrower R18 such as the
quarter-width one siambench pretrains on its embedded data. This builder
makes the same network from detectron2's own parts (``BasicStem``,
``BasicBlock`` stages, ``ResNet``) with the stem and res2 widths of the
config; the config uses it only for R18/R34 of a non-standard width, so
every other run builds its backbone exactly as MoCo's does.

Importing this module imports detectron2 and registers the builder.
"""

from __future__ import annotations

from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.resnet import BasicBlock, BasicStem, ResNet

BASIC_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


@BACKBONE_REGISTRY.register()
def build_basic_resnet_backbone(cfg, input_shape):
    resnets = cfg.MODEL.RESNETS
    stem = BasicStem(in_channels=input_shape.channels, out_channels=resnets.STEM_OUT_CHANNELS, norm=resnets.NORM)
    stages = []
    in_channels, out_channels = resnets.STEM_OUT_CHANNELS, resnets.RES2_OUT_CHANNELS
    for index, num_blocks in enumerate(BASIC_BLOCKS[resnets.DEPTH]):
        first_stride = 1 if index == 0 else 2
        stages.append(ResNet.make_stage(BasicBlock, num_blocks, stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                                        in_channels=in_channels, out_channels=out_channels, norm=resnets.NORM))
        in_channels, out_channels = out_channels, 2 * out_channels
    # ResNet keeps the stages up to the last feature asked for (res4 in a C4 model).
    return ResNet(stem, stages, out_features=resnets.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)
