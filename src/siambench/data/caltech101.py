"""Caltech-101 with the transfer benchmark's 102 classes and seeded 30-per-class split.

Caltech-101 has no official split. The transfer protocol (PROTOCOLS C.3)
trains on 30 random images per class and tests on the rest, counting
``BACKGROUND_Google`` as a class: 30 x 102 = 3,060 training images.
torchvision's ``Caltech101`` drops that folder, so this reader lists the
folders itself. The draw of each class depends only on the seed, the
class's index and its sorted file names, so every copy of the dataset
gives the same split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .base import IMAGE_EXTENSIONS, FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset
from .splits import Holdout

BACKGROUND = "BACKGROUND_Google"


def class_images(root: Path) -> dict[str, list[Path]]:
    """Each class folder's images, classes and files sorted by name (Python string order)."""
    categories = root / "101_ObjectCategories"
    if not categories.is_dir():
        raise CALTECH101.error(f"{categories} does not exist")
    folders = sorted(e.name for e in os.scandir(categories) if e.is_dir() and not e.name.startswith("."))
    if BACKGROUND not in folders:
        raise CALTECH101.error(
            f"{categories} has no {BACKGROUND}/ folder; the protocol counts it as one of the 102 classes"
        )
    classes = {}
    for name in folders:
        files = sorted(
            f for f in os.listdir(categories / name) if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        )
        classes[name] = [categories / name / f for f in files]
    return classes


def draw_train(num_images: int, train_per_class: int, seed: int, class_index: int) -> np.ndarray:
    """Sorted positions, in the class's sorted file list, of its training images."""
    rng = np.random.default_rng([seed, class_index])
    return np.sort(rng.permutation(num_images)[:train_per_class])


def _check_options(seed, train_per_class) -> None:
    for key, value in (("seed", seed), ("train_per_class", train_per_class)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"caltech101: {key} must be a non-negative integer, got {value!r}")
    if train_per_class == 0:
        raise ConfigError("caltech101: train_per_class must be at least 1")


def build_caltech101(split: str, root: Path, seed: int = 0, train_per_class: int = 30) -> FileImageDataset:
    _check_options(seed, train_per_class)
    classes = class_images(root)
    want_train = split == "train"
    samples = []
    for index, (name, files) in enumerate(classes.items()):
        if len(files) <= train_per_class:
            raise CALTECH101.error(
                f"class folder {name}/ has {len(files)} images, but train_per_class={train_per_class} needs "
                f"more than that to leave test images (every class of the real dataset has at least 31)"
            )
        train = set(draw_train(len(files), train_per_class, seed, index).tolist())
        samples.extend((path, index) for i, path in enumerate(files) if (i in train) == want_train)
    return FileImageDataset(samples, list(classes))


CALTECH101 = register_dataset(
    DatasetInfo(
        name="caltech101",
        benchmark=BenchmarkColumn("Caltech-101", 11),
        download=TorchvisionDownload("Caltech101", ({},)),
        build=build_caltech101,
        splits=("train", "test"),
        num_classes=102,
        metric="mean_per_class",
        readers=("caltech101",),
        layout=(
            "DATA_ROOT/caltech101/101_ObjectCategories/<class>/image_0001.jpg ..., 102 class folders "
            "including BACKGROUND_Google (9,144 images)."
        ),
        prepare=(
            "run torchvision.datasets.Caltech101(DATA_ROOT, download=True) once (it extracts "
            "101_ObjectCategories into DATA_ROOT/caltech101/ and leaves BACKGROUND_Google on disk), or "
            "download caltech-101.zip from https://data.caltech.edu/records/mzrjq-6wc02 and extract the "
            "101_ObjectCategories.tar.gz inside it into DATA_ROOT/caltech101/."
        ),
        subdir="caltech101",
        description=(
            "Caltech-101 with BACKGROUND_Google kept as a class: 102 classes, indexed in sorted folder-name "
            "order (Python string order, so capitals first: 0 BACKGROUND_Google, 1 Faces, 2 Faces_easy, "
            "3 Leopards, 4 Motorbikes, 5 accordion, 6 airplanes, ..., 101 yin_yang; index k+1 is "
            "torchvision's class k). There is no official split; siambench's preset draws train_per_class=30 "
            "images of each class with seed=0 (numpy default_rng([seed, class index]) over the class's "
            "sorted file names), 3,060 in all, and tests on the remaining 6,084. The validation split is "
            "5 images per class held out from train (2,550 / 510)."
        ),
        defaults={"seed": 0, "train_per_class": 30},
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_holdout=Holdout(per_class=5),
        split_sizes={"train": 3060, "test": 6084},
        hf_copy=HFCopy(unmappable="the protocol's split is a seeded draw over each class's sorted file names, "
                                   "which copies do not keep"),
    )
)
