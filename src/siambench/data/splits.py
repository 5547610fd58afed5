"""Held-out validation splits: one seeded rule per dataset, the same draw every time.

Where a dataset has no official validation split, the transfer protocol
(PROTOCOLS C.3) holds one out of the training images with a fixed size:
5,000 images for CIFAR-10, 20 per class for Pets, the per-class counts of
the test set for Birdsnap. A :class:`Holdout` names that rule once, in the
dataset's registry entry, and :func:`holdout_indices` draws it from the
training labels alone, so the split never depends on which images happen
to decode and is reproducible from the index list (the draws are tested
on full-size label lists without any images).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class Holdout:
    """How many training images become validation images, drawn with ``seed``.

    Exactly one of ``count`` (images drawn uniformly from the whole split),
    ``per_class`` (the same number from every class) or ``like_test`` (each
    class gives as many images as it has in the test split) is set.
    """

    count: int | None = None
    per_class: int | None = None
    like_test: bool = False
    seed: int = 0

    def __post_init__(self):
        if sum(x is not None and x is not False for x in (self.count, self.per_class, self.like_test or None)) != 1:
            raise ValueError("a Holdout sets exactly one of count, per_class, like_test")

    def describe(self) -> str:
        if self.count is not None:
            rule = f"{self.count} images drawn uniformly"
        elif self.per_class is not None:
            rule = f"{self.per_class} images per class"
        else:
            rule = "per class as many images as the test split has"
        return f"{rule} held out from the training split (seed {self.seed})"


def holdout_indices(targets, rule: Holdout, test_targets=None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, val)`` indices into ``targets`` following ``rule``.

    ``targets`` are the training split's class indices; ``test_targets``
    are needed only by ``like_test``. Asking for more images than a class
    (or the split) has is an error naming the class, not a smaller split.
    """
    targets = np.asarray(targets)
    rng = np.random.default_rng(rule.seed)
    if rule.count is not None:
        if not 0 < rule.count < len(targets):
            raise ConfigError(f"cannot hold out {rule.count} of {len(targets)} training images")
        val = rng.permutation(len(targets))[: rule.count]
    else:
        if rule.like_test:
            if test_targets is None:
                raise ValueError("Holdout(like_test=True) needs the test split's targets")
            wanted = Counter(int(t) for t in np.asarray(test_targets))
        else:
            wanted = {int(c): rule.per_class for c in np.unique(targets)}
        val = []
        for c in sorted(wanted):
            members = np.flatnonzero(targets == c)
            if wanted[c] > len(members):
                raise ConfigError(
                    f"class {c} has {len(members)} training images; the held-out split needs {wanted[c]} of them"
                )
            val.append(rng.permutation(members)[: wanted[c]])
        val = np.concatenate(val) if val else np.zeros(0, dtype=np.int64)
    val = np.sort(val.astype(np.int64))
    train = np.setdiff1d(np.arange(len(targets)), val)
    return train, val
