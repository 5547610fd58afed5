"""Image-folder readers: any ``root/<class>/<image>`` tree, and ImageNet.

Classes are the sorted names of the class folders, as in torchvision's
``ImageFolder``, so label indices agree with models and tools built on it.
When a root holds ``train/``, ``val/`` and ``test/`` folders, the classes are
those found in any of them, so that a class missing from one split does not
shift the labels of the others. Hidden files and folders are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetNotFoundError
from .base import IMAGE_EXTENSIONS, FileImageDataset
from .registry import DatasetInfo, register_dataset

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",)}


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _entries(directory: str) -> list[os.DirEntry]:
    with os.scandir(directory) as it:
        return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)


def _subdirs(directory: Path) -> list[str]:
    return [e.name for e in _entries(str(directory)) if e.is_dir()]


def list_images(directory: str | Path, recursive: bool = True) -> list[str]:
    """Image files under ``directory``, depth first, sorted by name at each level."""
    found: list[str] = []
    for entry in _entries(str(directory)):
        if entry.is_dir():
            if recursive:
                found.extend(list_images(entry.path))
        elif _is_image(entry.name):
            found.append(entry.path)
    return found


def split_dirs(root: Path) -> dict[str, Path]:
    """The split folders (``train``, ``val``, ``test``) present directly under ``root``."""
    present = {}
    for split, names in SPLIT_FOLDERS.items():
        for name in names:
            if (root / name).is_dir():
                present[split] = root / name
                break
    return present


def scan_folder(directory: Path, classes: list[str] | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    """``(samples, classes)`` for a class-folder tree, or for a flat unlabelled folder.

    With ``classes`` given, each class folder that exists under ``directory``
    is read with that class's index. Without, the class folders are found;
    when there are none the folder's own images are read with label ``-1``.
    """
    if classes is None:
        classes = _subdirs(directory)
    if not classes:
        return [(p, -1) for p in list_images(directory, recursive=False)], []
    samples = []
    for index, name in enumerate(classes):
        if (directory / name).is_dir():
            samples.extend((p, index) for p in list_images(directory / name))
    return samples, classes


def _no_images(info: DatasetInfo, directory: Path, what: str = "no image files") -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"dataset {info.name!r}: {directory} has {what} "
        f"(image extensions: {', '.join(IMAGE_EXTENSIONS)}). "
        f"Expected layout: {info.layout} To prepare it: {info.prepare}"
    )


def _split_folder(info: DatasetInfo, root: Path, split: str) -> tuple[Path, list[str] | None]:
    """The folder holding ``split`` and, for split layouts, the classes shared by all splits."""
    splits = split_dirs(root)
    if not splits:
        if split != "train":
            raise DatasetNotFoundError(
                f"dataset {info.name!r}: {root} has no {split}/ folder, so it has only the split "
                f"'train' (the whole folder). Expected layout: {info.layout}"
            )
        return root, None
    if split not in splits:
        raise DatasetNotFoundError(
            f"dataset {info.name!r}: {root} has no {'/ or '.join(SPLIT_FOLDERS[split])}/ folder for "
            f"split {split!r} (found: {', '.join(sorted(splits))}). Expected layout: {info.layout}"
        )
    classes = sorted({name for path in splits.values() for name in _subdirs(path)})
    return splits[split], classes


def build_imagefolder(split: str, root: Path) -> FileImageDataset:
    info = IMAGEFOLDER
    directory, classes = _split_folder(info, root, split)
    samples, classes = scan_folder(directory, classes)
    if not samples:
        raise _no_images(info, directory)
    return FileImageDataset(samples, classes)


def build_imagenet(split: str, root: Path) -> FileImageDataset:
    info = IMAGENET
    directory = root / split
    if not directory.is_dir():
        raise DatasetNotFoundError(
            f"dataset 'imagenet': {directory} does not exist. Expected layout: {info.layout} "
            f"To prepare it: {info.prepare}"
        )
    classes = _subdirs(root / "train") if (root / "train").is_dir() else _subdirs(directory)
    if not classes or not _subdirs(directory):
        loose = list_images(directory, recursive=False)
        what = f"{len(loose)} images but no <wnid>/ class folders" if loose else "no <wnid>/ class folders"
        raise _no_images(info, directory, what)
    samples, classes = scan_folder(directory, classes)
    if not samples:
        raise _no_images(info, directory)
    return FileImageDataset(samples, classes)


IMAGEFOLDER = register_dataset(
    DatasetInfo(
        name="imagefolder",
        build=build_imagefolder,
        splits=("train", "val", "test"),
        num_classes=None,
        readers=("imagefolder",),
        layout=(
            "a folder of class folders, root/<class>/<image> (or a flat folder of unlabelled "
            "images), optionally split into root/train/, root/val/ and root/test/."
        ),
        prepare="put the images in one folder per class and pass its path with path=DIR.",
        subdir="imagefolder",
        description="Any image-folder tree; classes are the sorted class-folder names.",
    )
)

IMAGENET = register_dataset(
    DatasetInfo(
        name="imagenet",
        build=build_imagenet,
        splits=("train", "val"),
        num_classes=1000,
        readers=("imagefolder",),
        layout="ILSVRC-2012 as root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG, 1000 wnid folders in each.",
        prepare=(
            "download ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz "
            "from image-net.org; extract the train tar and each per-class tar inside it into "
            "train/<wnid>/; then move the flat validation images into val/<wnid>/ folders, either with "
            "the usual valprep.sh script or by constructing torchvision.datasets.ImageNet(root, "
            "split='val') once, which parses the devkit's ground truth and sorts them."
        ),
        subdir="imagenet",
        description="ImageNet-1k (ILSVRC-2012), 1.28M training and 50k validation images.",
    )
)
