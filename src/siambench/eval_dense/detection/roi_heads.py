"""``Res5ROIHeadsExtraNorm``: the C4 box head of MoCo's protocol, registered with detectron2.

Self-supervised features are distributed differently from supervised ones,
so MoCo fine-tunes with normalisation that is trained (SyncBN) everywhere,
new layers included (PROTOCOLS C.5). In a C4 model the only new layer
between the pretrained res5 and the box predictor is this extra norm after
res5, which the per-region res5 stage of ``Res5ROIHeads`` lacks.

detectron2's ``Res5ROIHeads`` builds res5 from bottleneck blocks only. For
R18 and R34 this head builds the basic-block res5 that their backbone has,
so a pretrained R18/R34 res5 is loaded into it rather than left behind.

Importing this module imports detectron2 and registers the head.
"""

from __future__ import annotations

from detectron2.layers import get_norm
from detectron2.modeling.backbone.resnet import BasicBlock, ResNet
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, Res5ROIHeads
from torch import nn

BASIC_RES5_BLOCKS = {18: 2, 34: 3}


def basic_res5(cfg, num_blocks: int) -> tuple[nn.Sequential, int]:
    """res5 of an R18/R34: basic blocks, the first one halving the resolution and doubling res4's channels."""
    in_channels = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS * 4
    blocks = ResNet.make_stage(
        BasicBlock,
        num_blocks,
        stride_per_block=[2] + [1] * (num_blocks - 1),
        in_channels=in_channels,
        out_channels=2 * in_channels,
        norm=cfg.MODEL.RESNETS.NORM,
    )
    return nn.Sequential(*blocks), 2 * in_channels


@ROI_HEADS_REGISTRY.register()
class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """``Res5ROIHeads`` with a norm layer (``MODEL.RESNETS.NORM``) after res5, as ``res5.norm``."""

    @classmethod
    def _build_res5_block(cls, cfg):
        depth = cfg.MODEL.RESNETS.DEPTH
        if depth in BASIC_RES5_BLOCKS:
            res5, out_channels = basic_res5(cfg, BASIC_RES5_BLOCKS[depth])
        else:
            res5, out_channels = super()._build_res5_block(cfg)
        res5.add_module("norm", get_norm(cfg.MODEL.RESNETS.NORM, out_channels))
        return res5, out_channels
