"""Backbones (torchvision ResNets, width multipliers, CIFAR stem) and MLP heads."""

from .heads import byol_mlp, simsiam_predictor, simsiam_projector
from .resnet import ARCHS, STEMS, ResNet, ResNetSpec, backbone_state_dict, build_resnet

__all__ = [
    "ARCHS",
    "STEMS",
    "ResNet",
    "ResNetSpec",
    "backbone_state_dict",
    "build_resnet",
    "byol_mlp",
    "simsiam_predictor",
    "simsiam_projector",
]
