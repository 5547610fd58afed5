"""Detection datasets: detectron2's registration inputs from the real layouts, and the shapes VOC export."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import siambench.eval_dense.detection.datasets  # noqa: F401  (registers voc0712, coco2017, shapes_voc)
from siambench.data import build_dataset, shapes
from siambench.errors import DatasetNotFoundError
from siambench.eval_dense.detection.datasets import VOC_CLASSES, CocoSource, VocSource, build_shapes_voc

VOC_XML = """<annotation>
\t<folder>VOC{year}</folder>
\t<filename>{id}.jpg</filename>
\t<source>
\t\t<database>The VOC{year} Database</database>
\t\t<annotation>PASCAL VOC{year}</annotation>
\t\t<image>flickr</image>
\t</source>
\t<size>
\t\t<width>20</width>
\t\t<height>16</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>chair</name>
\t\t<pose>Rear</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox>
\t\t\t<xmin>3</xmin>
\t\t\t<ymin>2</ymin>
\t\t\t<xmax>12</xmax>
\t\t\t<ymax>15</ymax>
\t\t</bndbox>
\t</object>
</annotation>
"""

VOC_IDS = {
    (2007, "trainval"): ["000005", "000007", "000009"],
    (2007, "test"): ["000001", "000002", "000004", "000006"],
    (2012, "trainval"): ["2008_000002", "2008_000003"],
}


def write_voc(root, ids=VOC_IDS, skip=()):
    for (year, image_set), names in ids.items():
        devkit = root / "voc" / "VOCdevkit" / f"VOC{year}"
        for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (devkit / sub).mkdir(parents=True, exist_ok=True)
        with open(devkit / "ImageSets" / "Main" / f"{image_set}.txt", "w") as f:
            f.writelines(f"{name}\n" for name in names)
        for name in names:
            if name not in skip:
                (devkit / "Annotations" / f"{name}.xml").write_text(VOC_XML.format(year=year, id=name))
            Image.new("RGB", (20, 16), (90, 30, 200)).save(devkit / "JPEGImages" / f"{name}.jpg")


def test_voc0712_registers_voc07_and_voc12_trainval_and_tests_on_voc07(tmp_path):
    write_voc(tmp_path)
    train = build_dataset("voc0712", "train", data_root=tmp_path)
    devkit = tmp_path / "voc" / "VOCdevkit"
    assert train.sources == (
        VocSource("siambench_voc_2007_trainval", str(devkit / "VOC2007"), "trainval", 2007, VOC_CLASSES, 3),
        VocSource("siambench_voc_2012_trainval", str(devkit / "VOC2012"), "trainval", 2012, VOC_CLASSES, 2),
    )
    assert len(train) == 5 and train.num_classes == 20 and not train.has_masks
    test = build_dataset("voc0712", "test", data_root=tmp_path)
    assert test.sources == (VocSource("siambench_voc_2007_test", str(devkit / "VOC2007"), "test", 2007, VOC_CLASSES, 4),)
    assert test.names == ["siambench_voc_2007_test"] and len(test) == 4
    assert VOC_CLASSES[0] == "aeroplane" and VOC_CLASSES[8] == "chair" and VOC_CLASSES[19] == "tvmonitor"


def test_voc0712_names_what_is_missing(tmp_path):
    write_voc(tmp_path, {k: v for k, v in VOC_IDS.items() if k[0] == 2007})
    with pytest.raises(DatasetNotFoundError, match=r"VOC2012/ImageSets/Main/trainval.txt does not exist.*VOCdevkit/VOC2012"):
        build_dataset("voc0712", "train", data_root=tmp_path)
    write_voc(tmp_path, skip=("2008_000003",))
    with pytest.raises(DatasetNotFoundError, match=r"1 files .* missing, e\.g\. .*2008_000003\.xml"):
        build_dataset("voc0712", "train", data_root=tmp_path)
    assert len(build_dataset("voc0712", "test", data_root=tmp_path)) == 4
    with pytest.raises(DatasetNotFoundError, match="voc0712"):
        build_dataset("voc0712", "test", data_root=tmp_path / "nowhere")


def write_coco(root, split="val2017", images=3):
    (root / "coco" / "annotations").mkdir(parents=True)
    (root / "coco" / split).mkdir()
    data = {
        "info": {"description": "COCO 2017 Dataset", "version": "1.0", "year": 2017},
        "licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1, "name": "CC BY-NC-SA"}],
        "images": [{"license": 1, "file_name": f"{i:012d}.jpg", "height": 16, "width": 20, "id": i}
                   for i in range(1, images + 1)],
        "annotations": [{"segmentation": [[2.0, 2.0, 10.0, 2.0, 10.0, 9.0]], "area": 28.0, "iscrowd": 0,
                         "image_id": 1, "bbox": [2.0, 2.0, 8.0, 7.0], "category_id": 18, "id": 1}],
        "categories": [{"supercategory": "animal", "id": 18, "name": "dog"}],
    }
    (root / "coco" / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    for image in data["images"]:
        Image.new("RGB", (20, 16)).save(root / "coco" / split / image["file_name"])


def test_coco2017_registers_instances_json_and_images(tmp_path):
    write_coco(tmp_path)
    val = build_dataset("coco2017", "val", data_root=tmp_path)
    coco = tmp_path / "coco"
    assert val.sources == (CocoSource("siambench_coco_2017_val", str(coco / "annotations" / "instances_val2017.json"),
                                      str(coco / "val2017")),)
    assert len(val) == 3 and val.num_classes == 80 and val.has_masks
    with pytest.raises(DatasetNotFoundError, match=r"instances_train2017\.json does not exist.*train2017/\*\.jpg"):
        build_dataset("coco2017", "train", data_root=tmp_path)
    (coco / "annotations" / "instances_train2017.json").write_text("{}")
    with pytest.raises(DatasetNotFoundError, match=r"folder .*train2017 does not exist"):
        build_dataset("coco2017", "train", data_root=tmp_path)


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
