"""Seeded batches and crops whose content depends only on (seed, epoch, position).

Training loops (pretraining, the linear probe, fine-tuning) draw their
sample order from ``(seed, epoch)`` and each sample's augmentation from
``(seed, epoch, position)``, so a run is reproducible on the CPU whatever
the number of loader workers, and a resumed run replays what it missed.
Samplers yield ``(index, sample_seed)`` pairs, which the datasets here take
as keys.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch

from ..errors import ConfigError, CorruptImageError
from .transforms import RandomCrop, ViewConfig


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers, stable across runs and machines."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> np.uint64(1))


class CropFlipDataset(torch.utils.data.Dataset):
    """``dataset[(index, sample_seed)]`` → a random resized crop, flipped with probability ``flip_p``, and the label.

    Both draws come from ``random.Random(sample_seed)``. An unreadable image
    gives ``None``, which :func:`collate_images` leaves out.
    """

    def __init__(self, dataset, view: ViewConfig, flip_p: float = 0.5):
        self.dataset, self.crop, self.flip_p = dataset, RandomCrop(view), flip_p

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, sample_seed = key
        try:
            image, label = self.dataset[index]
        except CorruptImageError:
            return None
        rng = random.Random(sample_seed)
        image = self.crop(image, rng)
        if rng.random() < self.flip_p:
            image = image.flip(-1)
        return image, label


def collate_images(items):
    """Stack the readable ``(image, label)`` pairs of a batch; ``None`` when none could be read."""
    kept = [it for it in items if it is not None]
    if not kept:
        return None
    images, labels = zip(*kept)
    return torch.stack(images), stack_labels(labels)


def stack_labels(labels) -> torch.Tensor:
    """Class indices ``(B,)``, or multi-label vectors (VOC2007's) ``(B, C)``."""
    if isinstance(labels[0], np.ndarray):
        return torch.from_numpy(np.stack(labels))
    return torch.as_tensor(labels)


class EpochBatches(torch.utils.data.Sampler):
    """Batches of ``(index, sample_seed)`` for ``epochs`` passes over ``indices``.

    Each epoch is a permutation seeded by ``(seed, epoch)``. ``drop_last``
    drops an epoch's incomplete final batch; else every image is seen once
    an epoch, as the PyTorch reference loaders do.
    """

    def __init__(self, indices, batch_size: int, epochs: int, seed: int, drop_last: bool = False):
        self.indices = np.asarray(indices)
        self.batch, self.epochs, self.seed, self.drop_last = batch_size, epochs, seed, drop_last
        n = len(self.indices)
        self.steps_per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)

    def __len__(self):
        return self.epochs * self.steps_per_epoch

    def __iter__(self):
        n = len(self.indices)
        for epoch in range(self.epochs):
            perm = np.random.default_rng(derive_seed(self.seed, epoch, 1)).permutation(n)
            for step in range(self.steps_per_epoch):
                positions = range(step * self.batch, min((step + 1) * self.batch, n))
                yield [(int(self.indices[perm[p]]), derive_seed(self.seed, epoch, p, 2)) for p in positions]


class RankBatches(torch.utils.data.Sampler):
    """This process's contiguous share of each global batch that ``batches`` yields.

    Every rank draws the same global batches from the same seed, so the
    ranks together see exactly the samples (and, through the sample seeds,
    the augmentations) that one process would. The global batch must split
    evenly into ``world_size`` shares of ``accumulate`` micro-batches each.
    """

    def __init__(self, batches: EpochBatches, rank: int, world_size: int, accumulate: int = 1):
        if accumulate < 1 or batches.batch % (accumulate * world_size):
            raise ConfigError(f"the batch of {batches.batch} must split evenly into {world_size} process(es) × "
                              f"schedule.accumulate={accumulate} micro-batches")
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            share = len(batch) // self.world_size
            yield batch[self.rank * share:(self.rank + 1) * share]
