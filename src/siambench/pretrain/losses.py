"""The two objectives and the collapse monitor."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def byol_regression_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example ‖q̂ − ẑ‖² of l2-normalised vectors, i.e. 2 − 2·cos (BYOL ``regression_loss``).

    Normalisation uses BYOL's ε: x / max(‖x‖, 1e-6) = x · rsqrt(max(Σx², 1e-12)).
    """
    p = F.normalize(prediction.float(), dim=-1, eps=1e-6)
    z = F.normalize(target.float(), dim=-1, eps=1e-6)
    return 2.0 - 2.0 * (p * z).sum(dim=-1)


def byol_loss(p1, p2, z1_target, z2_target) -> torch.Tensor:
    """Symmetrised BYOL loss, mean over the batch, not halved (range [0, 8])."""
    return (byol_regression_loss(p1, z2_target.detach()) + byol_regression_loss(p2, z1_target.detach())).mean()


def simsiam_loss(p1, p2, z1, z2) -> torch.Tensor:
    """−½(cos(p1, sg z2) + cos(p2, sg z1)), mean over the batch (minimum −1)."""
    return -0.5 * (
        F.cosine_similarity(p1.float(), z2.detach().float(), dim=-1).mean()
        + F.cosine_similarity(p2.float(), z1.detach().float(), dim=-1).mean()
    )


@torch.no_grad()
def collapse_std(z: torch.Tensor) -> float:
    """Std over the batch of the l2-normalised outputs, averaged over channels (SimSiam Fig. 2).

    About 1/√d for well-spread outputs, 0 for a collapsed encoder.
    """
    return F.normalize(z.float(), dim=1).std(dim=0).mean().item()
