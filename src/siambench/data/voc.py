"""PASCAL VOC devkit location and VOC2007 multi-label classification.

Labels come from the devkit's per-class files ``ImageSets/Main/<class>_<set>.txt``,
where each image is marked 1 (present), 0 (present but every instance is
difficult) or -1 (absent). The dataset keeps those raw values as an int8
vector per image; the 11-point mAP of the transfer protocol counts 0 as
negative, and keeping it lets a record say which images were difficult.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetNotFoundError
from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


def voc_root(root: str | Path, year: str | int, info: DatasetInfo | None = None) -> Path:
    """``<root>/VOCdevkit/VOC<year>``, where the official tar files and torchvision's VOC datasets put it.

    ``info`` is the registry entry asking, whose layout and prepare text the
    error repeats; without it the error describes the devkit in general.
    """
    path = Path(root) / "VOCdevkit" / f"VOC{year}"
    if path.is_dir():
        return path
    if info is not None:
        hint = f"Expected layout: {info.layout} To prepare it: {info.prepare}"
    else:
        hint = (
            f"Expected layout: {root}/VOCdevkit/VOC{year}/ holding JPEGImages/, Annotations/ and ImageSets/, as "
            f"the official tar files from http://host.robots.ox.ac.uk/pascal/VOC/ extract. To prepare it: extract "
            f"them into {root}/, or run torchvision.datasets.VOCDetection({str(root)!r}, year='{year}', download=True)."
        )
    raise DatasetNotFoundError(f"PASCAL VOC{year} was expected in {path}, which does not exist. {hint}")


def _lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise VOC2007.error(f"{path} is missing")
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_image_set(voc_dir: Path, image_set: str) -> list[str]:
    """Image ids of ``ImageSets/Main/<image_set>.txt`` in file order."""
    return [fields[0] for fields in _lines(voc_dir / "ImageSets" / "Main" / f"{image_set}.txt")]


def read_class_labels(voc_dir: Path, image_set: str, name: str, ids: list[str]) -> np.ndarray:
    """The 1 / 0 / -1 column of class ``name`` for ``ids``, from ``<name>_<image_set>.txt``."""
    path = voc_dir / "ImageSets" / "Main" / f"{name}_{image_set}.txt"
    labels = {}
    for fields in _lines(path):
        if len(fields) != 2 or fields[1] not in {"1", "0", "-1"}:
            raise VOC2007.error(f"{path} has the line {' '.join(fields)!r}; expected '<image id> <1, 0 or -1>'")
        labels[fields[0]] = int(fields[1])
    if labels.keys() != set(ids):
        absent = sorted(set(ids) - labels.keys())
        extra = sorted(labels.keys() - set(ids))
        raise VOC2007.error(
            f"{path} does not list the images of {image_set}.txt: {len(absent)} missing "
            f"{absent[:3]}, {len(extra)} not in the set {extra[:3]}"
        )
    return np.array([labels[i] for i in ids], dtype=np.int8)


class VOCClassification(FileImageDataset):
    """VOC images with one length-20 int8 target per image (1 present, 0 difficult, -1 absent)."""

    multilabel = True

    def __init__(self, paths: list[Path], targets: np.ndarray, classes):
        self.targets = np.asarray(targets, dtype=np.int8)
        if self.targets.shape != (len(paths), len(classes)):
            raise ValueError(f"expected targets of shape ({len(paths)}, {len(classes)}), got {self.targets.shape}")
        self.samples = [(Path(p), t) for p, t in zip(paths, self.targets)]
        self.classes = list(classes)


def read_classification(voc_dir: Path, image_set: str, classes=VOC_CLASSES) -> VOCClassification:
    ids = read_image_set(voc_dir, image_set)
    targets = np.stack([read_class_labels(voc_dir, image_set, name, ids) for name in classes], axis=1)
    paths = [voc_dir / "JPEGImages" / f"{i}.jpg" for i in ids]
    return VOCClassification(paths, targets, classes)


def build_voc2007(split: str, root: Path) -> VOCClassification:
    return read_classification(voc_root(root, "2007", VOC2007), split)


VOC2007 = register_dataset(
    DatasetInfo(
        name="voc2007",
        benchmark=BenchmarkColumn("VOC2007", 8),
        download=TorchvisionDownload("VOCDetection", ({"year": "2007", "image_set": "trainval"},
                                                      {"year": "2007", "image_set": "test"}), folder="voc"),
        build=build_voc2007,
        splits=("train", "val", "trainval", "test"),
        num_classes=20,
        metric="map11",
        readers=("voc-devkit",),
        layout=(
            "DATA_ROOT/voc/VOCdevkit/VOC2007/ holding JPEGImages/<id>.jpg, ImageSets/Main/<set>.txt (one "
            "zero-padded image id a line) and ImageSets/Main/<class>_<set>.txt (lines '<id> <label>', label 1 "
            "present, 0 difficult, -1 absent) for the 20 classes and the sets train, val, trainval and test."
        ),
        prepare=(
            "run torchvision.datasets.VOCDetection(DATA_ROOT/voc, year='2007', image_set=S, download=True) "
            "for S='trainval' and S='test', or download VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar "
            "from http://host.robots.ox.ac.uk/pascal/VOC/voc2007/ and extract both into DATA_ROOT/voc/ (they "
            "merge into one VOCdevkit/VOC2007)."
        ),
        subdir="voc",
        description=(
            "PASCAL VOC2007 classification: 20 classes in the devkit order (aeroplane ... tvmonitor); each "
            "target is a length-20 int8 vector of the devkit's labels (1 present, 0 difficult, -1 absent; "
            "the 11-point mAP counts 0 as negative). Official train (2,501) and val (2,510) for tuning, "
            "trainval (5,011) for the final fit, test (4,952)."
        ),
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_split="val",
        split_sizes={"train": 2501, "val": 2510, "trainval": 5011, "test": 4952},
        hf_copy=HFCopy(unmappable="copies keep no per-class 1/0/-1 labels (difficult objects), which the "
                                   "protocol's mAP needs"),
    )
)
