"""LARS as BYOL's optimiser applies it (PROTOCOLS A.5).

Per parameter, in this order: add ``weight_decay · θ`` to the gradient, scale
the result by the trust ratio ``eta · ‖θ‖ / ‖update‖`` when both norms are
positive (else by 1), accumulate heavy-ball momentum (no dampening, no
Nesterov), and step by ``−lr``. Parameter groups with ``lars_exclude=True``
(biases and every BatchNorm parameter in BYOL) get neither decay nor
adaptation: give those groups ``weight_decay=0``.

timm's ``Lars`` is close but not the same: its trust ratio divides by
``‖g‖ + wd·‖θ‖`` (the LARS paper's bound) instead of the norm of the decayed
update, so it is not used. ``clip_lr`` is solo-learn's option: the adapted
rate never exceeds the group's rate (``ratio = min(ratio / lr, 1)``).
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


class LARS(Optimizer):
    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 1e-3, clip_lr: bool = False):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, clip_lr=clip_lr, lars_exclude=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd, eta, momentum = group["lr"], group["weight_decay"], group["eta"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad
                if not group["lars_exclude"]:
                    if wd != 0:
                        update = update.add(p, alpha=wd)
                    param_norm = torch.linalg.vector_norm(p)
                    update_norm = torch.linalg.vector_norm(update)
                    ratio = torch.where(
                        (param_norm > 0) & (update_norm > 0),
                        eta * param_norm / update_norm.clamp_min(torch.finfo(update_norm.dtype).tiny),
                        torch.ones_like(param_norm),
                    )
                    if group["clip_lr"] and lr > 0:
                        ratio = torch.clamp(ratio / lr, max=1.0)
                    update = update.mul(ratio)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = update.clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(update)
                p.add_(state["momentum_buffer"], alpha=-lr)
        return loss


def split_decay_groups(modules: dict[str, torch.nn.Module], weight_decay: float, exclude_bias_and_norm: bool, lars: bool):
    """Parameter groups: weights, and (optionally) the excluded biases and norm parameters.

    A parameter is excluded when it is one-dimensional: in these networks that
    is exactly every bias and every BatchNorm scale and offset, BYOL's filter.
    ``modules`` names parts so that a group can be found again (SimSiam's fixed
    predictor LR); each group carries ``name``.
    """
    groups = []
    for name, module in modules.items():
        params = [p for p in module.parameters() if p.requires_grad]
        if exclude_bias_and_norm:
            decay = [p for p in params if p.ndim > 1]
            excluded = [p for p in params if p.ndim <= 1]
        else:
            decay, excluded = params, []
        if decay:
            groups.append({"name": name, "params": decay, "weight_decay": weight_decay})
        if excluded:
            group = {"name": name, "params": excluded, "weight_decay": 0.0}
            if lars:
                group["lars_exclude"] = True
            groups.append(group)
    return groups
