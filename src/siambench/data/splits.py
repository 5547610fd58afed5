"""Held-out validation splits: one seeded rule, one draw, wherever images are held out.

Where a dataset has no official validation split, the transfer protocol
(PROTOCOLS C.3) holds one out of the training images with a fixed size:
5,000 images for CIFAR-10, 20 per class for Pets. A :class:`Holdout` names that rule once, in the
dataset's registry entry, and :func:`holdout_indices` draws it from the
training labels alone, so the split never depends on which images happen
to decode and is reproducible from the index list (the draws are tested
on full-size label lists without any images). The evaluations that hold
images out for their own sweep (the linear probe's LR, semi-supervised
fine-tuning's validation images, segmentation) draw with the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class Holdout:
    """How many training images become validation images, drawn with ``seed``.

    Exactly one of ``count`` (images drawn uniformly from the whole split)
    or ``per_class`` (the same number from every class) is set.
    """

    count: int | None = None
    per_class: int | None = None
    seed: int = 0

    def __post_init__(self):
        if (self.count is None) == (self.per_class is None):
            raise ValueError("a Holdout sets exactly one of count and per_class")

    def describe(self) -> str:
        rule = f"{self.count} images drawn uniformly" if self.count is not None else f"{self.per_class} images per class"
        return f"{rule} held out from the training split (seed {self.seed})"


def holdout_indices(targets, rule: Holdout) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, val)`` indices into ``targets`` (the training split's class indices) following ``rule``.

    ``targets`` may be the number of images where ``rule`` draws a count. Asking for more images than a class
    (or the split) has is an error naming the class, not a smaller split.
    """
    targets = np.zeros(targets) if isinstance(targets, int) else np.asarray(targets)
    rng = np.random.default_rng(rule.seed)
    if rule.count is not None:
        if not 0 < rule.count <= len(targets):
            raise ConfigError(f"cannot hold out {rule.count} of {len(targets)} images")
        val = rng.permutation(len(targets))[: rule.count]
    else:
        val = []
        for c in np.unique(targets):
            members = np.flatnonzero(targets == c)
            if rule.per_class > len(members):
                raise ConfigError(
                    f"class {c} has {len(members)} training images; the held-out split needs {rule.per_class} of them"
                )
            val.append(rng.permutation(members)[: rule.per_class])
        val = np.concatenate(val)
    val = np.sort(val.astype(np.int64))
    return np.setdiff1d(np.arange(len(targets)), val), val


def selection_split(info, train_targets, val_fraction: float = 0.2, seed: int = 0):
    """``(train, val, description)``: the held-out split of a dataset without an official one.

    The registry's rule (``info.val_holdout``) when there is one, else
    ``val_fraction`` of the training images drawn with ``seed``.
    """
    rule = info.val_holdout or Holdout(count=int(round(len(train_targets) * val_fraction)), seed=seed)
    train, val = holdout_indices(train_targets, rule)
    return train, val, rule.describe()
