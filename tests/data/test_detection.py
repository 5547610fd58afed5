"""voc0712 and coco2017: detectron2's registration inputs from the real layouts (PASCAL devkit, COCO JSON)."""

import json

import pytest
from PIL import Image

from siambench.data import build_dataset
from siambench.data.detection import VOC_CLASSES, CocoSource, VocSource
from siambench.errors import DatasetNotFoundError

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
