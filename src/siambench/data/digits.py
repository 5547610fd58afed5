"""scikit-learn's handwritten digits as a tiny labelled image dataset.

The 1797 8x8 images ship inside scikit-learn, so this dataset needs no data
root and no download: it is what smoke tests and the quick local presets run
on. Intensities 0..16 are scaled to uint8 0..255, upsampled to 32x32 with
bilinear interpolation (half-pixel centres, as ``F.interpolate`` with
``align_corners=False``) so that crops and blurs see smooth strokes rather
than 4x4 blocks, and replicated to three channels. Classes are "0".."9".

The splits are stratified and fixed (seed 0): train 1077, val 360,
test 360 images.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .base import ArrayImageDataset
from .registry import DatasetInfo, register_dataset

SIZE = 32
SEED = 0


@lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    scaled = torch.from_numpy(digits.images * (255.0 / 16.0)).float().unsqueeze(1)
    upsampled = F.interpolate(scaled, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    gray = upsampled.round().clamp(0, 255).to(torch.uint8).squeeze(1).numpy()
    images = np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=-1))
    labels = digits.target.astype(np.int64)

    index = np.arange(len(labels))
    rest, test = train_test_split(index, test_size=0.2, stratify=labels, random_state=SEED)
    train, val = train_test_split(rest, test_size=0.25, stratify=labels[rest], random_state=SEED)
    splits = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    return images, labels, splits


def build_digits(split: str, root=None) -> ArrayImageDataset:
    images, labels, splits = _arrays()
    index = splits[split]
    return ArrayImageDataset(images[index], labels[index], [str(d) for d in range(10)])


DIGITS = register_dataset(
    DatasetInfo(
        name="digits",
        build=build_digits,
        splits=("train", "val", "test"),
        num_classes=10,
        readers=("sklearn",),
        layout="none: the images ship with scikit-learn (sklearn.datasets.load_digits).",
        prepare="nothing to prepare; scikit-learn is a dependency.",
        embedded=True,
        eval_size=32,
        eval_crop_fraction=1.0,
        test_split="test",
        val_split="val",
        description="1797 handwritten digits, 8x8 upsampled to 32x32 RGB; splits 1077/360/360.",
    )
)
