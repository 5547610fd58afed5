"""SimSiam (Chen & He 2021): a Siamese network with a predictor and stop-gradient.

One encoder+projector for both views; the predictor's output for one view
regresses the other view's projection, which receives no gradient
(PROTOCOLS B.1). No target network, no momentum.
"""

from __future__ import annotations

import torch
from torch import nn

from ..engine.lars import split_decay_groups
from ..errors import ConfigError
from ..models import simsiam_predictor, simsiam_projector
from ..models.heads import head_size
from .losses import simsiam_loss
from .method import register_method


@register_method("simsiam")
class SimSiam(nn.Module):
    # The official ImageNet heads; the projector's hidden width null is the backbone's, as the official builder has it.
    CONFIG = {"model.projector.hidden_dim": None, "model.projector.out_dim": 2048, "model.projector.num_layers": 3,
              "model.predictor.hidden_dim": 512}
    STATE_PARTS = {"projector": "projector", "predictor": "predictor"}

    def __init__(self, backbone: nn.Module, proj_dim: int = 2048, proj_layers: int = 3, pred_hidden: int = 512,
                 proj_hidden: int | None = None):
        super().__init__()
        self.backbone = backbone
        self.projector = simsiam_projector(backbone.num_features, proj_hidden, proj_dim, proj_layers)
        self.predictor = simsiam_predictor(proj_dim, pred_hidden)

    @classmethod
    def from_config(cls, backbone, cfg):
        """``model.projector.hidden_dim: null`` is the official builder's hidden width, the backbone's."""
        proj = cfg.model.projector
        layers = head_size("model.projector.num_layers", proj.num_layers, "simsiam")
        if layers < 2:
            raise ConfigError(f"simsiam's projector has at least 2 layers; model.projector.num_layers is {layers}")
        return cls(backbone, head_size("model.projector.out_dim", proj.out_dim, "simsiam"), layers,
                   head_size("model.predictor.hidden_dim", cfg.model.predictor.hidden_dim, "simsiam"),
                   head_size("model.projector.hidden_dim", proj.hidden_dim, "simsiam", nullable=True))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        z1, z2 = self.projector(self.backbone(x1)), self.projector(self.backbone(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return simsiam_loss(p1, p2, z1, z2), z1

    def param_groups(self, weight_decay: float, exclude_bias_and_norm: bool, lars: bool):
        # The paper decays every parameter, BN included; the predictor is its own
        # group so that its LR can be held fixed (--fix-pred-lr).
        parts = {"backbone": self.backbone, "projector": self.projector, "predictor": self.predictor}
        return split_decay_groups(parts, weight_decay, exclude_bias_and_norm, lars)

    def after_step(self, step: int, total_steps: int) -> dict:
        return {}
