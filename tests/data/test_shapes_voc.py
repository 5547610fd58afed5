"""shapes_voc: the shapes scenes exported in VOC layout, as detectron2's VOC reader takes them."""

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

from siambench.data import build_dataset, shapes
from siambench.data.shapes_voc import build_shapes_voc

SMALL = {"image_size": 64, "num_images": 12, "seed": 5, "objects_per_image": (1, 3), "scale_range": (0.15, 0.35)}


def read_annotation(folder, file_id):
    root = ET.parse(folder / "Annotations" / f"{file_id}.xml").getroot()
    size = tuple(int(root.find(f"size/{k}").text) for k in ("width", "height", "depth"))
    objects = [(o.find("name").text, int(o.find("difficult").text), int(o.find("truncated").text),
                tuple(int(o.find(f"bndbox/{k}").text) for k in ("xmin", "ymin", "xmax", "ymax")))
               for o in root.findall("object")]
    return root.find("filename").text, size, objects


def test_shapes_voc_export_parses_and_matches_the_scenes():
    split = build_shapes_voc("train", **SMALL)
    (source,) = split.sources
    folder = Path(source.dirname)
    assert (source.name, source.split, source.classes, source.num_images) == (
        "siambench_shapes_voc_train", "train", shapes.CLASSES, 12)
    assert split.num_classes == 12 and len(split) == 12
    reference = shapes.load_split("train", image_size=64, num_images=12, seed=5, objects_per_image=(1, 3),
                                  scale_range=(0.15, 0.35), cache=False)
    ids = (folder / "ImageSets" / "Main" / "train.txt").read_text().split()
    assert ids == [f"train_{i:06d}" for i in range(12)]
    counts = []
    for file_id, image, scene in zip(ids, reference.images, reference.scenes):
        filename, size, objects = read_annotation(folder, file_id)
        assert filename == f"{file_id}.jpg" and size == (64, 64, 3)
        instance, _ = shapes.scene_masks(scene)
        expected = []
        for index, obj in enumerate(scene.objects):
            ys, xs = np.nonzero(instance == index + 1)
            # VOC: 1-based, inclusive corners of the visible pixels
            expected.append((obj.name, 0, 0, (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1)))
        assert objects == expected
        counts.append(len(objects))
        jpeg = np.asarray(Image.open(folder / "JPEGImages" / filename).convert("RGB"), dtype=np.float32)
        assert jpeg.shape == (64, 64, 3) and np.abs(jpeg - image).mean() < 4
    assert min(counts) >= 1 and max(counts) >= 2


def test_shapes_voc_export_is_written_once_per_setting():
    first = build_shapes_voc("test", **SMALL).sources[0]
    xml = Path(first.dirname) / "Annotations" / "test_000000.xml"
    stamp = xml.stat().st_mtime_ns
    assert build_shapes_voc("test", **SMALL).sources[0] == first and xml.stat().st_mtime_ns == stamp
    assert Path(first.dirname).stat().st_mode & 0o777 == 0o755
    other = build_shapes_voc("test", **{**SMALL, "seed": 6}).sources[0]
    assert other.dirname != first.dirname
    assert ET.parse(xml).getroot().find("object/bndbox") is not None


def test_shapes_voc_is_embedded_in_the_registry():
    test = build_dataset("shapes_voc", "test")
    assert len(test) == 64 and test.sources[0].year == 2012 and test.sources[0].classes == shapes.CLASSES
    _, size, _ = read_annotation(Path(test.sources[0].dirname), "test_000000")
    assert size == (128, 128, 3)
