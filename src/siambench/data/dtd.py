"""DTD, the Describable Textures Dataset, with its ten official partitions.

``labels/<split><partition>.txt`` names one image per line as
``<class>/<file>`` (the file is ``images/<class>/<file>``); each partition
splits every class 40/40/40 into train, val and test. Classes are the
sorted names of those found in the partition's three files, so every split
of a partition numbers them alike; on the full dataset this is the 47
classes in the order torchvision's ``DTD`` uses.

The archive unpacks to ``dtd/images`` and ``dtd/labels``; torchvision's
download puts that ``dtd/`` folder inside another one, so both
``DATA_ROOT/dtd/labels`` and ``DATA_ROOT/dtd/dtd/labels`` are accepted.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset

PARTITIONS = range(1, 11)


def _data_folder(root: Path) -> Path:
    for folder in (root, root / "dtd"):
        if (folder / "labels").is_dir():
            return folder
    raise DTD.error(f"{root / 'labels'} is missing.")


def _entries(path: Path) -> list[tuple[str, str]]:
    """The ``(class, file)`` pairs listed in one label file."""
    if not path.is_file():
        raise DTD.error(f"{path} is missing.")
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, _, file = line.strip().partition("/")
        if not name or not file:
            raise DTD.error(f"line {number} of {path} is {line!r}; expected <class>/<file>.")
        entries.append((name, file))
    return entries


def _partition(value) -> int:
    if str(value).strip() not in {str(p) for p in PARTITIONS}:
        raise ConfigError(f"dtd: partition must be an integer from 1 to 10, got {value!r}.")
    return int(value)


def build_dtd(split: str, root: Path, partition=1) -> FileImageDataset:
    partition = _partition(partition)
    data = _data_folder(root)
    listed = {s: _entries(data / "labels" / f"{s}{partition}.txt") for s in DTD.splits}
    classes = sorted({name for entries in listed.values() for name, _ in entries})
    index = {name: i for i, name in enumerate(classes)}
    samples = [(data / "images" / name / file, index[name]) for name, file in listed[split]]
    return DTD.listed_files(samples, classes, data / "labels" / f"{split}{partition}.txt")


DTD = register_dataset(
    DatasetInfo(
        name="dtd",
        benchmark=BenchmarkColumn("DTD", 9),
        download=TorchvisionDownload("DTD", ({"split": "train"},)),
        build=build_dtd,
        splits=("train", "val", "test"),
        num_classes=47,
        metric="top1",
        readers=("dtd-labels",),
        layout=(
            "DATA_ROOT/dtd/ (or DATA_ROOT/dtd/dtd/, as torchvision's download leaves it) holding "
            "images/<class>/<file>.jpg and labels/{train,val,test}<N>.txt for partitions N = 1..10 "
            "(one <class>/<file>.jpg per line)."
        ),
        prepare=(
            "run torchvision.datasets.DTD(DATA_ROOT, download=True), or download dtd-r1.0.1.tar.gz from "
            "https://www.robots.ox.ac.uk/~vgg/data/dtd/ and extract it under the data root."
        ),
        subdir="dtd",
        defaults={"partition": 1},
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_split="val",
        split_sizes={"train": 1880, "val": 1880, "test": 1880},
        hf_copy=HFCopy(unmappable="all ten official splits have 1,880 images in each part, so a copy's row "
                                   "counts cannot show that it holds split 1"),
        description="DTD: 47 texture classes, 120 images each; partition 1 of the official train/val/test splits.",
    )
)
