"""Oxford 102 Flowers from ``imagelabels.mat`` and ``setid.mat``.

``imagelabels.mat`` holds ``labels``, the 1-based class (1..102) of image
``k`` at position ``k - 1``; ``setid.mat`` holds the 1-based image ids of
each official split in ``trnid``, ``valid`` and ``tstid``. Image ``k`` is
``jpg/image_<k:05d>.jpg``. The files carry no class names; they are taken
from torchvision's ``Flowers102.classes`` (torchvision 0.22 and later) and
are the label numbers ``"1"`` ... ``"102"`` with older versions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset

NUM_CLASSES = 102
SPLIT_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}


def _read_mat(path: Path, key: str) -> np.ndarray:
    """Variable ``key`` of a MATLAB file as a flat array of integers."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise FLOWERS.error(f"{path} is missing.")
    try:
        mat = loadmat(path)
    except (MatReadError, ValueError, IndexError, NotImplementedError, OSError) as exc:
        raise FLOWERS.error(f"{path} is not a readable MATLAB file ({exc}).") from None
    if key not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise FLOWERS.error(f"{path} has no variable {key!r} (found: {found or 'none'}).")
    return np.asarray(mat[key]).astype(np.int64).ravel()


def class_names() -> list[str]:
    """torchvision's species names where it has them, else the label numbers."""
    from torchvision.datasets import Flowers102

    names = getattr(Flowers102, "classes", None)
    if names is not None and len(names) == NUM_CLASSES:
        return list(names)
    return [str(k) for k in range(1, NUM_CLASSES + 1)]


def build_flowers102(split: str, root: Path) -> FileImageDataset:
    labels = _read_mat(root / "imagelabels.mat", "labels")
    ids = _read_mat(root / "setid.mat", SPLIT_KEYS[split])
    if labels.size and not (labels.min() >= 1 and labels.max() <= NUM_CLASSES):
        raise FLOWERS.error(f"{root / 'imagelabels.mat'} has labels outside 1..{NUM_CLASSES}.")
    outside = ids[(ids < 1) | (ids > len(labels))]
    if outside.size:
        raise FLOWERS.error(
            f"{root / 'setid.mat'} lists {outside.size} image ids in {SPLIT_KEYS[split]!r} outside the "
            f"{len(labels)} labelled images, e.g. {outside[:3].tolist()}."
        )
    samples = [(root / "jpg" / f"image_{k:05d}.jpg", int(labels[k - 1]) - 1) for k in ids.tolist()]
    return FLOWERS.listed_files(samples, class_names(), root / "setid.mat")


FLOWERS = register_dataset(
    DatasetInfo(
        name="flowers102",
        benchmark=BenchmarkColumn("Flowers", 12),
        download=TorchvisionDownload("Flowers102", ({"split": "train"},)),
        build=build_flowers102,
        splits=("train", "val", "test"),
        num_classes=NUM_CLASSES,
        metric="mean_per_class",
        readers=("flowers102-mat",),
        layout=(
            "DATA_ROOT/flowers-102/ holding jpg/image_00001.jpg ... jpg/image_08189.jpg, imagelabels.mat "
            "(labels 1..102) and setid.mat (trnid, valid, tstid)."
        ),
        prepare=(
            "run torchvision.datasets.Flowers102(DATA_ROOT, download=True), or download 102flowers.tgz, "
            "imagelabels.mat and setid.mat from https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ into "
            "DATA_ROOT/flowers-102/ and extract the archive there."
        ),
        subdir="flowers-102",
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_split="val",
        split_sizes={"train": 1020, "val": 1020, "test": 6149},
        hf_copy=HFCopy({"train": ("train",), "val": ("validation", "val"), "test": ("test",)}),
        description="Oxford 102 Flowers: 102 flower species, official splits of 1,020/1,020/6,149 images.",
    )
)
