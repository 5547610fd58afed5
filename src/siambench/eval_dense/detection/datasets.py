"""The detection datasets, as detectron2 registers them, read from the data root.

detectron2 reads PASCAL VOC from a devkit folder (``Annotations/*.xml``,
``JPEGImages/*.jpg``, ``ImageSets/Main/<split>.txt``) and COCO from its JSON
annotations and an image folder. This module checks those layouts under the
data root and returns the arguments of detectron2's ``register_pascal_voc``
and ``register_coco_instances`` (:class:`VocSource`, :class:`CocoSource`);
the registration itself happens in the process that trains, where
detectron2 is imported. A missing file is a :class:`DatasetNotFoundError`
that names the layout before any training starts, not a traceback from a
data-loader worker an hour later.

The embedded ``shapes_voc`` dataset is the shapes generator's scenes
written in VOC layout, so the whole path runs without downloads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ...data import shapes
from ...data.registry import DatasetInfo, register_dataset
from ...engine.paths import cache_dir
from ...errors import DatasetNotFoundError

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


# The shapes scenes in VOC layout -------------------------------------------

SHAPES_VOC_SIZES = {"train": 256, "test": 64}
SHAPES_VOC_YEAR = 2012  # scored as VOC2012 is: AP is the area under the precision-recall curve


def voc_annotation(scene: shapes.Scene, file_id: str) -> ET.ElementTree:
    """A VOC annotation of ``scene``: one object per visible shape, with its visible box.

    VOC boxes are 1-based and inclusive, so a shape whose pixels span
    columns ``x0 .. x1 - 1`` (the scene's exclusive-end box) has ``xmin =
    x0 + 1`` and ``xmax = x1``. Shapes lie wholly inside the image, so none
    is truncated; none is marked difficult.
    """
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "shapes_voc"
    ET.SubElement(root, "filename").text = f"{file_id}.jpg"
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "siambench shapes"
    size = ET.SubElement(root, "size")
    for tag, value in (("width", scene.image_size), ("height", scene.image_size), ("depth", 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for obj in scene.objects:
        x0, y0, x1, y1 = obj.box
        if x1 <= x0 or y1 <= y0:
            continue
        node = ET.SubElement(root, "object")
        for tag, value in (("name", obj.name), ("pose", "Unspecified"), ("truncated", 0), ("difficult", 0)):
            ET.SubElement(node, tag).text = str(value)
        box = ET.SubElement(node, "bndbox")
        for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root)
    return ET.ElementTree(root)


def write_voc(folder: Path, split: str, images, scenes) -> list[str]:
    """Write ``images`` and their ``scenes`` as a devkit image set in ``folder``; returns the ids."""
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"{split}_{i:06d}" for i in range(len(scenes))]
    for file_id, image, scene in zip(ids, images, scenes):
        # Full-resolution chroma: with JPEG's default 4:2:0 the striped backgrounds change visibly.
        Image.fromarray(image).save(folder / "JPEGImages" / f"{file_id}.jpg", quality=95, subsampling=0)
        voc_annotation(scene, file_id).write(folder / "Annotations" / f"{file_id}.xml", encoding="unicode")
    (folder / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    return ids


def _export_once(folder: Path, write) -> Path:
    """Run ``write(tmp)`` into a fresh folder and rename it to ``folder``, unless ``folder`` is already there.

    The rename makes an export all or nothing: a killed export leaves only
    a temporary folder, never a half-written dataset that would be reused.
    """
    if folder.is_dir():
        return folder
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        write(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp's folder is private to its owner
        os.rename(tmp, folder)
    except OSError:
        if not folder.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def build_shapes_voc(split: str, root=None, *, image_size: int = 128, num_images: int | None = None, seed: int = 0,
                     objects_per_image: tuple[int, int] = (1, 3),
                     scale_range: tuple[float, float] = (0.15, 0.35)) -> DetectionSplit:
    """The shapes split ``split`` in VOC layout, exported once into the cache and reused."""
    params = {
        "split": split,
        "image_size": int(image_size),
        "num_images": int(SHAPES_VOC_SIZES[split] if num_images is None else num_images),
        "seed": int(seed),
        "objects_per_image": [int(v) for v in objects_per_image],
        "scale_range": [float(v) for v in scale_range],
        "version": shapes.GENERATOR_VERSION,
    }
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir("shapes_voc") / f"{split}-{digest}"

    def write(tmp: Path):
        data = shapes.load_split(split, image_size=params["image_size"], num_images=params["num_images"],
                                 seed=params["seed"], objects_per_image=tuple(objects_per_image),
                                 scale_range=tuple(scale_range), cache=False)
        write_voc(tmp, split, data.images, data.scenes)

    _export_once(folder, write)
    source = voc_source(folder, split, SHAPES_VOC_YEAR, shapes.CLASSES, name=f"siambench_shapes_voc_{split}",
                        layout="the shapes export (JPEGImages, Annotations, ImageSets/Main).",
                        prepare=f"delete {folder} and run again; it is regenerated.")
    return DetectionSplit("shapes_voc", split, (source,), len(shapes.CLASSES))


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

register_dataset(
    DatasetInfo(
        name="shapes_voc",
        build=build_shapes_voc,
        splits=tuple(SHAPES_VOC_SIZES),
        num_classes=len(shapes.CLASSES),
        metric="AP50",
        embedded=True,
        layout="embedded (shapes scenes exported in VOC layout by siambench)",
        prepare="nothing to prepare: exported on first use and cached under $SIAMBENCH_CACHE/shapes_voc",
        description=f"1-3 shapes of {len(shapes.CLASSES)} classes per 128x128 image with their visible boxes, "
                    f"in VOC layout; {SHAPES_VOC_SIZES['train']} / {SHAPES_VOC_SIZES['test']} images.",
        train_split="train",
        test_split="test",
        split_sizes=dict(SHAPES_VOC_SIZES),
    )
)
