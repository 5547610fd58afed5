"""``shapes_voc``: the embedded shapes scenes written in VOC layout, so detection runs without downloads.

The scenes come from the shapes generator (:mod:`siambench.data.shapes`);
each split is exported once into the cache as a devkit image set that
detectron2's VOC reader takes like the real one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

from ..engine.paths import cache_dir
from . import shapes
from .detection import DetectionSplit, voc_source
from .registry import DatasetInfo, register_dataset

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
