"""BYOL (Grill et al. 2020): an online network predicts a slowly moving target.

Online: encoder → projector → predictor. Target: a copy of encoder and
projector, never trained by gradients, moved after each optimiser step by
ξ ← ξ + (1 − τ_k)(θ − ξ). The target runs BatchNorm in training mode (batch
statistics) and keeps its own running averages, which the EMA does not touch
(PROTOCOLS A.3). The target starts as a copy of the online network; BYOL's
code draws it from a different seed, which its paper calls not significant.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..engine.lars import split_decay_groups
from ..engine.schedules import byol_tau
from ..errors import ConfigError
from ..models import byol_mlp
from ..models.heads import head_size
from .losses import BYOL_LOSS_FORMS, byol_loss
from .method import register_method


@register_method("byol")
class BYOL(nn.Module):
    CONFIG = {"model.projector.hidden_dim": 4096, "model.projector.out_dim": 256, "model.predictor.hidden_dim": 4096,
              "ema.tau_base": 0.996,  # the target's EMA base rate
              "loss.byol_form": "cosine"}  # cosine: 2 − 2·cos | squared_distance: BYOL's JAX code (PROTOCOLS A.4)
    STATE_PARTS = {"projector": "projector", "predictor": "predictor", "target_backbone": "target network",
                   "target_projector": "target projector"}

    def __init__(self, backbone: nn.Module, proj_hidden: int = 4096, proj_out: int = 256, pred_hidden: int = 4096, tau_base: float = 0.996,
                 loss_form: str = "squared_distance"):
        super().__init__()
        self.backbone = backbone
        self.projector = byol_mlp(backbone.num_features, proj_hidden, proj_out)
        self.predictor = byol_mlp(proj_out, pred_hidden, proj_out)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in self.target_parameters():
            p.requires_grad_(False)
        self.tau_base = tau_base
        if loss_form not in BYOL_LOSS_FORMS:
            raise ConfigError(f"loss.byol_form must be one of {', '.join(BYOL_LOSS_FORMS)}; got {loss_form!r}")
        self.loss_form = loss_form

    @classmethod
    def from_config(cls, backbone, cfg):
        if cfg.ema.tau_base is None:
            raise ConfigError("byol needs ema.tau_base, the target's EMA base rate (the paper's: 0.996)")
        proj, pred = cfg.model.projector, cfg.model.predictor
        return cls(backbone, head_size("model.projector.hidden_dim", proj.hidden_dim, "byol"),
                   head_size("model.projector.out_dim", proj.out_dim, "byol"),
                   head_size("model.predictor.hidden_dim", pred.hidden_dim, "byol"), cfg.ema.tau_base, cfg.loss.byol_form)

    def online_parameters(self):
        return [*self.backbone.parameters(), *self.projector.parameters()]

    def target_parameters(self):
        return [*self.target_backbone.parameters(), *self.target_projector.parameters()]

    def forward(self, x1: torch.Tensor, x2: torch.Tensor):
        z1, z2 = self.projector(self.backbone(x1)), self.projector(self.backbone(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        with torch.no_grad():
            t1 = self.target_projector(self.target_backbone(x1))
            t2 = self.target_projector(self.target_backbone(x2))
        return byol_loss(p1, p2, t1, t2, self.loss_form), z1

    def param_groups(self, weight_decay: float, exclude_bias_and_norm: bool, lars: bool):
        parts = {"backbone": self.backbone, "projector": self.projector, "predictor": self.predictor}
        return split_decay_groups(parts, weight_decay, exclude_bias_and_norm, lars)

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> dict:
        """EMA of the target after optimiser step ``step`` (0-based), τ from the cosine schedule."""
        tau = byol_tau(step, total_steps, self.tau_base)
        torch._foreach_lerp_(self.target_parameters(), self.online_parameters(), 1.0 - tau)
        return {"tau": tau}
