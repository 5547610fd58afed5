"""The detection datasets (PASCAL VOC07+12, COCO 2017), checked on disk and described for detectron2.

detectron2 reads PASCAL VOC from a devkit folder (``Annotations/*.xml``,
``JPEGImages/*.jpg``, ``ImageSets/Main/<split>.txt``) and COCO from its JSON
annotations and an image folder. This module checks those layouts under the
data root and returns the arguments of detectron2's ``register_pascal_voc``
and ``register_coco_instances`` (:class:`VocSource`, :class:`CocoSource`);
the registration itself happens in the process that trains, where
detectron2 is imported (:mod:`siambench.eval_dense.detection.trainer`). A
missing file is a :class:`DatasetNotFoundError` that names the layout
before any training starts, not a traceback from a data-loader worker an
hour later. Nothing here imports detectron2.
"""


from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetNotFoundError
from .registry import DatasetInfo, register_dataset

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
COCO_NUM_CLASSES = 80

# Split of the siambench dataset -> (devkit year, image set) of detectron2's VOC registrations.
VOC0712_SPLITS = {"train": ((2007, "trainval"), (2012, "trainval")), "test": ((2007, "test"),)}
COCO_SPLITS = {"train": "train2017", "val": "val2017"}

VOC_LAYOUT = (
    "VOCdevkit/VOC2007/{Annotations/<id>.xml, JPEGImages/<id>.jpg, ImageSets/Main/trainval.txt, "
    "ImageSets/Main/test.txt} and VOCdevkit/VOC2012/{Annotations, JPEGImages, ImageSets/Main/trainval.txt} "
    "(the folders the VOC tar files extract to)."
)
VOC_PREPARE = (
    "download VOCtrainval_06-Nov-2007.tar, VOCtest_06-Nov-2007.tar and VOCtrainval_11-May-2012.tar from the "
    "PASCAL VOC site (host.robots.ox.ac.uk/pascal/VOC) or a mirror, and extract all three in <data root>/voc; "
    "they share one VOCdevkit/ folder."
)
COCO_LAYOUT = (
    "train2017/*.jpg, val2017/*.jpg and annotations/instances_train2017.json, annotations/instances_val2017.json."
)
COCO_PREPARE = (
    "download train2017.zip, val2017.zip and annotations_trainval2017.zip from cocodataset.org and unzip them in "
    "<data root>/coco."
)


@dataclass(frozen=True)
class VocSource:
    """One devkit image set: the arguments of detectron2's ``register_pascal_voc``.

    detectron2 scores a ``year`` 2007 set with VOC2007's 11-point AP and any
    other year with the area under the precision-recall curve.
    """

    name: str
    dirname: str
    split: str
    year: int
    classes: tuple[str, ...]
    num_images: int


@dataclass(frozen=True)
class CocoSource:
    """One COCO split: the arguments of detectron2's ``register_coco_instances``."""

    name: str
    json_file: str
    image_root: str

    @property
    def num_images(self) -> int:
        with open(self.json_file) as f:
            return len(json.load(f)["images"])


@dataclass(frozen=True)
class DetectionSplit:
    """A split of a detection dataset: the detectron2 datasets it is made of, and its classes."""

    dataset: str
    split: str
    sources: tuple[VocSource | CocoSource, ...]
    num_classes: int
    has_masks: bool = False

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def __len__(self) -> int:
        return sum(s.num_images for s in self.sources)


def read_image_set(path: Path) -> list[str]:
    """The image ids listed in a devkit ``ImageSets/Main/<split>.txt``, one per line."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def voc_source(devkit: Path, split: str, year: int, classes=VOC_CLASSES, name: str | None = None,
               layout: str = VOC_LAYOUT, prepare: str = VOC_PREPARE) -> VocSource:
    """The image set ``split`` of the devkit folder ``devkit``, after checking that every listed image is there."""
    image_set = devkit / "ImageSets" / "Main" / f"{split}.txt"
    if not image_set.is_file():
        raise DatasetNotFoundError(f"{image_set} does not exist. Expected layout: {layout} To prepare it: {prepare}")
    ids = read_image_set(image_set)
    if not ids:
        raise DatasetNotFoundError(f"{image_set} lists no images. Expected layout: {layout}")
    missing = [p for i in ids for p in (devkit / "Annotations" / f"{i}.xml", devkit / "JPEGImages" / f"{i}.jpg")
               if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3])
        raise DatasetNotFoundError(
            f"{len(missing)} files listed by {image_set} are missing, e.g. {shown}. Expected layout: {layout} "
            f"To prepare it: {prepare}"
        )
    return VocSource(name or f"siambench_voc_{year}_{split}", str(devkit), split, year, tuple(classes), len(ids))


def build_voc0712(split: str, root: Path, **_) -> DetectionSplit:
    """VOC2007 + VOC2012 trainval (``train``) or VOC2007 test (``test``) from ``root/VOCdevkit``."""
    sources = tuple(voc_source(Path(root) / "VOCdevkit" / f"VOC{year}", image_set, year)
                    for year, image_set in VOC0712_SPLITS[split])
    return DetectionSplit("voc0712", split, sources, len(VOC_CLASSES))


def build_coco2017(split: str, root: Path, **_) -> DetectionSplit:
    """COCO 2017 ``train`` or ``val``: instance annotations (boxes and masks) and the image folder."""
    folder = COCO_SPLITS[split]
    json_file = Path(root) / "annotations" / f"instances_{folder}.json"
    image_root = Path(root) / folder
    for path, kind in ((json_file, "file"), (image_root, "folder")):
        exists = path.is_file() if kind == "file" else path.is_dir()
        if not exists:
            raise DatasetNotFoundError(
                f"COCO's {kind} {path} does not exist. Expected layout under {root}: {COCO_LAYOUT} "
                f"To prepare it: {COCO_PREPARE}"
            )
    source = CocoSource(f"siambench_coco_2017_{split}", str(json_file), str(image_root))
    return DetectionSplit("coco2017", split, (source,), COCO_NUM_CLASSES, has_masks=True)


register_dataset(
    DatasetInfo(
        name="voc0712",
        build=build_voc0712,
        splits=tuple(VOC0712_SPLITS),
        num_classes=len(VOC_CLASSES),
        metric="AP50",
        readers=("voc-devkit",),
        layout=VOC_LAYOUT,
        prepare=VOC_PREPARE,
        subdir="voc",
        description="PASCAL VOC detection: VOC2007 trainval + VOC2012 trainval (train), VOC2007 test (test); "
                    "20 classes; AP50 and COCO-style AP/AP75.",
        train_split="train",
        test_split="test",
        split_sizes={"train": 16551, "test": 4952},
    )
)

register_dataset(
    DatasetInfo(
        name="coco2017",
        build=build_coco2017,
        splits=tuple(COCO_SPLITS),
        num_classes=COCO_NUM_CLASSES,
        metric="bbox_AP",
        readers=("coco-json",),
        layout=COCO_LAYOUT,
        prepare=COCO_PREPARE,
        subdir="coco",
        description="COCO 2017 instances: train2017 (train), val2017 (val); 80 classes; box and mask AP.",
        train_split="train",
        test_split="val",
        split_sizes={"train": 118287, "val": 5000},
    )
)
