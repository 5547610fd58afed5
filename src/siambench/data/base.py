"""Dataset base classes shared by every reader.

A dataset yields ``(image, label)`` where ``image`` is a ``uint8`` tensor of
shape ``(3, H, W)`` in RGB and ``label`` an ``int`` (``-1`` when the dataset
has no labels). Keeping images as uint8 until the device keeps loader
workers cheap; every float conversion and augmentation after the crop runs
batched (see :mod:`siambench.data.transforms`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import CorruptImageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def decode_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a ``(3, H, W)`` uint8 RGB tensor.

    Raises :class:`CorruptImageError` for a file that does not decode, so
    callers can skip and count it rather than crash mid-epoch.
    """
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            array = np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(path, exc) from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class ImageDataset(torch.utils.data.Dataset):
    """A labelled (or unlabelled) image dataset.

    Subclasses set ``classes`` (list of names, empty if unlabelled) and
    ``targets`` (one int per sample, ``-1`` if unlabelled) and implement
    :meth:`load`.
    """

    classes: list[str] = []
    targets: list[int] = []

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def has_labels(self) -> bool:
        return len(self.classes) > 0

    def __len__(self) -> int:
        return len(self.targets)

    def load(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int):
        return self.load(index), self.targets[index]


class FileImageDataset(ImageDataset):
    """Images read from files, one ``(path, label)`` pair per sample."""

    def __init__(self, samples: list[tuple[Path, int]], classes: list[str]):
        self.samples = [(Path(p), int(y)) for p, y in samples]
        self.targets = [y for _, y in self.samples]
        self.classes = list(classes)

    def load(self, index: int) -> torch.Tensor:
        return decode_image(self.samples[index][0])

    def describe(self, index: int) -> str:
        return str(self.samples[index][0])


class ArrayImageDataset(ImageDataset):
    """Images held in memory as one ``(N, H, W, 3)`` uint8 array."""

    def __init__(self, images: np.ndarray, targets, classes: list[str]):
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}")
        self.images = images
        self.targets = [int(t) for t in targets]
        self.classes = list(classes)

    def load(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.images[index])).permute(2, 0, 1)

    def describe(self, index: int) -> str:
        return f"sample {index}"
