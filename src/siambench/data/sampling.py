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


class ReadableView(torch.utils.data.Dataset):
    """What a loader reads: ``view(sample, key)`` of a dataset's samples, ``None`` for an unreadable image.

    The one place where a corrupt image is tolerated: :func:`collate_readable`
    leaves the ``None`` out of the batch. A key is a position in ``indices``
    (every sample by default), or a sampler's ``(index, sample_seed)`` pair,
    whose index is read directly. Subclasses say what a sample becomes.
    """

    def __init__(self, dataset, indices=None):
        self.dataset = dataset
        self.indices = range(len(dataset)) if indices is None else list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, key):
        index = key[0] if isinstance(key, tuple) else self.indices[key]
        try:
            sample = self.dataset[index]
        except CorruptImageError as err:
            return self.unreadable(err)
        return self.view(sample, key)

    def view(self, sample, key):
        raise NotImplementedError

    def unreadable(self, err: CorruptImageError):
        """What an unreadable image gives: ``None``, which :func:`collate_readable` leaves out."""
        return None


def collate_readable(items):
    """Stack each field of the readable samples of a batch (labels by :func:`stack_labels`); ``None`` when none
    could be read."""
    kept = [it for it in items if it is not None]
    if not kept:
        return None
    return tuple(torch.stack(field) if isinstance(field[0], torch.Tensor) else stack_labels(field)
                 for field in zip(*kept))


class CropFlipDataset(ReadableView):
    """``dataset[(index, sample_seed)]`` → a random resized crop, flipped with probability ``flip_p``, and the label.

    Both draws come from ``random.Random(sample_seed)``.
    """

    def __init__(self, dataset, view: ViewConfig, flip_p: float = 0.5):
        super().__init__(dataset)
        self.crop, self.flip_p = RandomCrop(view), flip_p

    def view(self, sample, key):
        image, label = sample
        rng = random.Random(key[1])
        image = self.crop(image, rng)
        if rng.random() < self.flip_p:
            image = image.flip(-1)
        return image, label


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
