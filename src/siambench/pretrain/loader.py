"""Two-view batches whose content depends only on (seed, step).

A killed run must resume bit-identically, and a DDP run must see the same
samples as one process with the same global batch. So the sample order is a
permutation drawn from ``(seed, epoch)``, each sample's crops from
``(seed, epoch, position)``, and the device augmentations of a step from
``(seed, step)``: nothing depends on worker count, rank layout or how many
steps ran in this process.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from ..data.sampling import ReadableView, derive_seed
from ..data.transforms import RandomCrop, ViewConfig
from ..errors import CorruptImageError


class TwoViewDataset(ReadableView):
    """``dataset[(index, sample_seed)]`` → two uint8 crops and the label; an unreadable image's path is reported
    as skipped (:func:`collate_views` lists it), or stops the run when ``strict``."""

    def __init__(self, dataset, view1: ViewConfig, view2: ViewConfig, strict: bool = False):
        super().__init__(dataset)
        self.crops = (RandomCrop(view1), RandomCrop(view2))
        self.strict = strict

    def view(self, sample, key):
        image, label = sample
        rng = random.Random(key[1])
        return {"views": (self.crops[0](image, rng), self.crops[1](image, rng)), "label": label}

    def unreadable(self, err: CorruptImageError):
        if self.strict:
            raise err
        return {"skipped": err.path}


def collate_views(items):
    """Stack the readable samples; list the paths of the skipped ones."""
    kept = [it for it in items if "views" in it]
    skipped = [it["skipped"] for it in items if "skipped" in it]
    if not kept:
        return {"view1": None, "view2": None, "labels": None, "skipped": skipped}
    return {
        "view1": torch.stack([it["views"][0] for it in kept]),
        "view2": torch.stack([it["views"][1] for it in kept]),
        "labels": torch.as_tensor([it["label"] for it in kept]),
        "skipped": skipped,
    }


class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, from ``start_step`` on, this rank's micro-batches of ``(index, sample_seed)``.

    Step ``s`` covers positions ``[s·B, (s+1)·B)`` of its epoch's permutation
    (``B`` the global batch, the incomplete tail of an epoch dropped). The
    global batch is cut into ``world_size × accumulate`` contiguous chunks;
    rank ``r`` takes chunks ``r·accumulate … (r+1)·accumulate − 1``, so the
    chunks, in order over ranks, are the global batch.
    """

    def __init__(self, num_samples: int, global_batch: int, seed: int, total_steps: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1, accumulate: int = 1):
        if global_batch % (world_size * accumulate):
            raise ValueError(f"batch_size {global_batch} is not divisible by world_size × accumulate = {world_size * accumulate}")
        self.n, self.batch, self.seed = num_samples, global_batch, seed
        self.steps_per_epoch = num_samples // global_batch
        if self.steps_per_epoch == 0:
            raise ValueError(f"the dataset has {num_samples} samples, fewer than one batch of {global_batch}")
        self.total_steps, self.start_step = total_steps, start_step
        self.rank, self.world, self.accumulate = rank, world_size, accumulate
        self.micro = global_batch // (world_size * accumulate)

    def __len__(self):
        return (self.total_steps - self.start_step) * self.accumulate

    def permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng(derive_seed(self.seed, epoch, 1)).permutation(self.n)

    def __iter__(self):
        epoch, perm = None, None
        for step in range(self.start_step, self.total_steps):
            if step // self.steps_per_epoch != epoch:
                epoch = step // self.steps_per_epoch
                perm = self.permutation(epoch)
            base = (step % self.steps_per_epoch) * self.batch
            for chunk in range(self.rank * self.accumulate, (self.rank + 1) * self.accumulate):
                start = base + chunk * self.micro
                yield [(int(perm[pos]), derive_seed(self.seed, epoch, pos, 2)) for pos in range(start, start + self.micro)]
