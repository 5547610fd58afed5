"""The two objectives and the collapse monitor."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engine.precision import at_least_float32

BYOL_LOSS_FORMS = {
    "squared_distance": "‖x̂ − ŷ‖² of x / max(‖x‖, 1e-6): BYOL's JAX ``regression_loss``; an all-zero row gives ‖ŷ‖² = 1",
    "cosine": "2 − 2·cos(x̂, ŷ): equal to the above except on rows of norm below 1e-6 (an all-zero row gives 2)",
}


def byol_regression_loss(prediction: torch.Tensor, target: torch.Tensor, form: str = "squared_distance") -> torch.Tensor:
    """Per-example BYOL regression loss of l2-normalised vectors (``form``: see :data:`BYOL_LOSS_FORMS`).

    Normalisation uses BYOL's ε: x / max(‖x‖, 1e-6) = x · rsqrt(max(Σx², 1e-12)).
    The two forms differ only on rows whose norm is below ε, where the
    normalised vector is shorter than 1.
    """
    p = F.normalize(at_least_float32(prediction), dim=-1, eps=1e-6)
    z = F.normalize(at_least_float32(target), dim=-1, eps=1e-6)
    if form == "squared_distance":
        return (p - z).square().sum(dim=-1)
    if form == "cosine":
        return 2.0 - 2.0 * (p * z).sum(dim=-1)
    raise ValueError(f"unknown BYOL loss form {form!r}; expected one of {', '.join(BYOL_LOSS_FORMS)}")


def byol_loss(p1, p2, z1_target, z2_target, form: str = "squared_distance") -> torch.Tensor:
    """Symmetrised BYOL loss, mean over the batch, not halved (range [0, 8])."""
    return (byol_regression_loss(p1, z2_target.detach(), form) + byol_regression_loss(p2, z1_target.detach(), form)).mean()


def simsiam_loss(p1, p2, z1, z2) -> torch.Tensor:
    """−½(cos(p1, sg z2) + cos(p2, sg z1)), mean over the batch (minimum −1)."""
    return -0.5 * (
        F.cosine_similarity(at_least_float32(p1), at_least_float32(z2.detach()), dim=-1).mean()
        + F.cosine_similarity(at_least_float32(p2), at_least_float32(z1.detach()), dim=-1).mean()
    )


@torch.no_grad()
def collapse_std(z: torch.Tensor) -> float:
    """Std over the batch of the l2-normalised outputs, averaged over channels (SimSiam Fig. 2).

    About 1/√d for well-spread outputs, 0 for a collapsed encoder.
    """
    return F.normalize(z.float(), dim=1).std(dim=0).mean().item()
