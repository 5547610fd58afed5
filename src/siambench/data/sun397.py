"""SUN397 with its official train/test partitions.

The transfer protocol trains on ``Training_01.txt`` and tests on
``Testing_01.txt`` (50 images per class each), not on all 108,754 images,
which is all torchvision's ``SUN397`` can load. Class indices follow
``ClassName.txt``; a class is the image's folder path, which for some
classes has two levels (``/a/apartment_building/outdoor``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, register_dataset
from .splits import Holdout

PARTITIONS = range(1, 11)
SPLIT_FILES = {"train": "Training", "test": "Testing"}


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise SUN397.error(f"{path} is missing")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_classes(root: Path) -> list[str]:
    """Class paths (``/a/abbey``) in the order of ``ClassName.txt``, which fixes the label indices."""
    return _lines(root / "ClassName.txt")


def partition_file(root: Path, split: str, partition: int) -> Path:
    if isinstance(partition, bool) or not isinstance(partition, int) or partition not in PARTITIONS:
        raise ConfigError(f"sun397: partition must be an integer from 1 to 10 (the official splits), got {partition!r}")
    return root / "Partitions" / f"{SPLIT_FILES[split]}_{partition:02d}.txt"


def read_partition(root: Path, listing: Path, class_paths: list[str]) -> list[tuple[Path, int]]:
    """``(image path, class index)`` for each line (``/a/abbey/sun_xxx.jpg``) of a partition file."""
    index = {c: i for i, c in enumerate(class_paths)}
    samples = []
    for line in _lines(listing):
        class_path = line.rsplit("/", 1)[0]
        if class_path not in index:
            raise SUN397.error(f"{listing} lists {line}, whose class {class_path} is not in ClassName.txt")
        samples.append((root / line.lstrip("/"), index[class_path]))
    return samples


def build_sun397(split: str, root: Path, partition: int = 1) -> FileImageDataset:
    class_paths = read_classes(root)
    samples = read_partition(root, partition_file(root, split, partition), class_paths)
    # Names without the letter folder, as torchvision's SUN397 has them.
    return FileImageDataset(samples, [c[3:] for c in class_paths])


SUN397 = register_dataset(
    DatasetInfo(
        name="sun397",
        benchmark=BenchmarkColumn("SUN397", 5),
        build=build_sun397,
        splits=("train", "test"),
        num_classes=397,
        readers=("sun397",),
        layout=(
            "DATA_ROOT/SUN397/ holding ClassName.txt (one class path a line, /a/abbey), the images as "
            "<letter>/<class path>/sun_*.jpg (some class paths have two levels, /a/apartment_building/outdoor) "
            "and Partitions/Training_01.txt ... Training_10.txt and Testing_01.txt ... Testing_10.txt "
            "(one image path a line, /a/abbey/sun_aaalbzqrimafwbiv.jpg)."
        ),
        prepare=(
            "download SUN397.tar.gz from http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz (or run "
            "torchvision.datasets.SUN397(DATA_ROOT, download=True)) and extract it under the data root, then "
            "download http://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip and extract its "
            "Training_NN.txt and Testing_NN.txt files into DATA_ROOT/SUN397/Partitions/."
        ),
        subdir="SUN397",
        description=(
            "SUN397 scene recognition, official partition N (option partition, default 1): train is "
            "Training_0N.txt and test Testing_0N.txt, 50 images per class each (19,850 each); the "
            "validation split is 10 images per class held out from train. Class indices follow ClassName.txt."
        ),
        defaults={"partition": 1},
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_holdout=Holdout(per_class=10),
        split_sizes={"train": 19850, "test": 19850},
        hf_copy=HFCopy(unmappable="all ten official partitions have 19,850 + 19,850 images, so a copy's row "
                                   "counts cannot show that it holds partition 1"),
    )
)
