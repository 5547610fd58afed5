"""Per-step schedules: learning rate and BYOL's target EMA rate."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base: float, final: float = 0.0) -> float:
    """Linear warm-up from 0 over ``warmup_steps``, then cosine from ``base`` to ``final``.

    BYOL's ``learning_schedule``: the cosine spans the steps after warm-up.
    """
    if step < warmup_steps:
        return base * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(step - warmup_steps, decay_steps) / decay_steps
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def byol_tau(step: int, total_steps: int, tau_base: float) -> float:
    """τ_k = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2, with k clipped at K (BYOL §3.3)."""
    k = min(step, total_steps)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0
