"""Schedules, for pretraining and evaluations alike: learning rates, BYOL's target EMA rate, and how many steps a
run has."""

from __future__ import annotations

import math

LR_UPDATES = {
    "step": "the cosine is evaluated at every optimiser step (BYOL's JAX code)",
    "epoch": "the cosine is evaluated once per epoch, at its first step (SimSiam's adjust_learning_rate)",
}
STEP_RULES = {
    "per_epoch": "epochs × (N // batch): whole epochs of full batches",
    "jax": "epochs × N // batch, warm-up warmup_epochs × N // batch (BYOL's JAX config)",
}


def scale_lr(lr: float, batch_size: int, reference_batch: int | None) -> float:
    """The linear scaling rule: ``lr`` is stated for ``reference_batch`` and applied as ``lr × batch / reference``;
    with no reference (``null`` in a preset) it is applied as written. The evaluations' one key for it is
    ``optim.lr_scale_batch`` (depth's ``schedule.reference_batch`` scales its steps as well)."""
    return lr * batch_size / reference_batch if reference_batch else float(lr)


def cosine_decay(peak: float, step: int, total: int) -> float:
    """Cosine from ``peak`` at step 0 to 0 at ``total``, no warm-up (the evaluations' fine-tuning and probes)."""
    return peak * 0.5 * (1.0 + math.cos(math.pi * step / total))


def step_decay(base: float, position: float, milestones, gamma: float) -> float:
    """``base × gamma^k``, k the number of ``milestones`` that ``position`` (a step or an epoch) has reached."""
    return base * gamma ** sum(position >= m for m in milestones)


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base: float, final: float = 0.0) -> float:
    """Linear warm-up from 0 over ``warmup_steps``, then cosine from ``base`` to ``final``.

    BYOL's ``learning_schedule``: the cosine spans the steps after warm-up.
    """
    if step < warmup_steps:
        return base * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(step - warmup_steps, decay_steps) / decay_steps
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def learning_rate(step: int, total_steps: int, warmup_steps: int, base: float, steps_per_epoch: int,
                  lr_update: str = "step") -> float:
    """The LR at ``step`` under ``lr_update`` (see :data:`LR_UPDATES`).

    With ``"epoch"`` every step of an epoch gets the rate of the epoch's first
    step, measured in epochs: SimSiam sets ``lr·½(1 + cos(π·epoch/epochs))``
    before each epoch, so the last epoch still trains at a positive rate.
    """
    if lr_update == "step":
        return warmup_cosine(step, total_steps, warmup_steps, base)
    if lr_update == "epoch":
        epoch = step // steps_per_epoch
        epochs = total_steps / steps_per_epoch
        warmup_epochs = warmup_steps / steps_per_epoch
        return warmup_cosine(epoch, epochs, warmup_epochs, base)
    raise ValueError(f"unknown lr_update {lr_update!r}; expected one of {', '.join(LR_UPDATES)}")


def epochs_to_steps(epochs: float, num_examples: int, batch_size: int, step_rule: str = "per_epoch") -> int:
    """Optimiser steps in ``epochs`` passes over ``num_examples`` (see :data:`STEP_RULES`).

    The rules differ when the batch does not divide the dataset: BYOL's
    1000 ImageNet epochs at 4096 are 312,784 steps under ``jax``, 312,000
    under ``per_epoch``.
    """
    if step_rule == "per_epoch":
        return round(epochs * (num_examples // batch_size))
    if step_rule == "jax":
        return int(epochs * num_examples) // batch_size
    raise ValueError(f"unknown step_rule {step_rule!r}; expected one of {', '.join(STEP_RULES)}")


def byol_tau(step: int, total_steps: int, tau_base: float) -> float:
    """τ_k = 1 − (1 − τ_base)·(cos(πk/K) + 1)/2, with k clipped at K (BYOL §3.3)."""
    k = min(step, total_steps)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0
