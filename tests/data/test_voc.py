"""VOC2007 classification targets from a devkit tree written the way the official files are."""

import numpy as np
import pytest
from PIL import Image

import siambench.data.voc  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.data.voc import VOC_CLASSES, VOCClassification, voc_root
from siambench.errors import DatasetNotFoundError

SETS = {
    "train": ["000005", "000007", "000009"],
    "val": ["000012", "000016"],
    "test": ["000001", "000002"],
}
SETS["trainval"] = sorted(SETS["train"] + SETS["val"])
# Labels that are not -1; 0 marks a class present only as difficult objects.
LABELS = {
    "000005": {"chair": 1, "diningtable": 0},
    "000007": {"car": 1},
    "000009": {"horse": 1, "person": 1},
    "000012": {"car": 0},
    "000016": {"bicycle": 1, "person": 0},
    "000001": {"dog": 1, "person": 1},
    "000002": {"train": 1, "tvmonitor": 0},
}


def write_image(path, color, size=(10, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG", quality=95)


def color(image_id):
    return (int(image_id) * 10, 50, 100)


@pytest.fixture
def voc_data(tmp_path):
    devkit = tmp_path / "voc" / "VOCdevkit" / "VOC2007"
    main = devkit / "ImageSets" / "Main"
    main.mkdir(parents=True)
    for image_set, ids in SETS.items():
        (main / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in ids))
        for name in VOC_CLASSES:
            # The devkit writes '%s %2d': one space before -1, two before 1 and 0.
            order = ids[::-1] if name == "person" else ids
            lines = [f"{i} {LABELS[i].get(name, -1):2d}\n" for i in order]
            (main / f"{name}_{image_set}.txt").write_text("".join(lines))
    for ids in SETS.values():
        for i in ids:
            write_image(devkit / "JPEGImages" / f"{i}.jpg", color(i))
    return tmp_path


def expected_vector(image_id):
    return np.array([LABELS[image_id].get(name, -1) for name in VOC_CLASSES], dtype=np.int8)


def test_multi_hot_vectors_follow_the_class_files(voc_data):
    train = build_dataset("voc2007", "train", data_root=voc_data)
    assert isinstance(train, VOCClassification) and train.multilabel and VOCClassification.multilabel
    assert train.classes == list(VOC_CLASSES) and len(train.classes) == 20
    assert train.targets.dtype == np.int8 and train.targets.shape == (3, 20)

    first = train.targets[0]
    assert first[VOC_CLASSES.index("chair")] == 1 and first[VOC_CLASSES.index("diningtable")] == 0
    assert (np.delete(first, [8, 10]) == -1).all()
    for k, image_id in enumerate(SETS["train"]):
        np.testing.assert_array_equal(train.targets[k], expected_vector(image_id))

    image, target = train[2]
    np.testing.assert_array_equal(target, expected_vector("000009"))
    assert target[VOC_CLASSES.index("person")] == 1 and image.shape == (3, 8, 10)
    np.testing.assert_allclose(image.float().mean(dim=(1, 2)).numpy(), color("000009"), atol=3)
    assert train.samples[2][0] == voc_data / "voc" / "VOCdevkit" / "VOC2007" / "JPEGImages" / "000009.jpg"


def test_difficult_only_and_order_from_the_set_file(voc_data):
    val = build_dataset("voc2007", "val", data_root=voc_data)
    assert [p.stem for p, _ in val.samples] == ["000012", "000016"]
    np.testing.assert_array_equal(val.targets[0], expected_vector("000012"))
    assert val.targets[0][VOC_CLASSES.index("car")] == 0
    # person_val.txt lists the images in the opposite order; labels are matched by id.
    assert val.targets[1][VOC_CLASSES.index("person")] == 0 and val.targets[0][VOC_CLASSES.index("person")] == -1
    test = build_dataset("voc2007", "test", data_root=voc_data)
    np.testing.assert_array_equal(test.targets, np.stack([expected_vector("000001"), expected_vector("000002")]))


def test_split_sizes(voc_data):
    sizes = {s: len(build_dataset("voc2007", s, data_root=voc_data)) for s in ("train", "val", "trainval", "test")}
    assert sizes == {"train": 3, "val": 2, "trainval": 5, "test": 2}
    info = get_dataset_info("voc2007")
    assert info.split_sizes == {"train": 2501, "val": 2510, "trainval": 5011, "test": 4952}
    assert info.metric == "map11" and info.num_classes == 20 and info.val_holdout is None
    assert (info.train_split, info.val_split, info.test_split) == ("train", "val", "test")
    assert info.eval_size == 224 and info.eval_crop_fraction == 1.0


def test_missing_class_file_names_the_layout(voc_data):
    (voc_data / "voc" / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "cat_test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"ImageSets/Main/cat_test.txt is missing") as info:
        build_dataset("voc2007", "test", data_root=voc_data)
    assert "<class>_<set>.txt" in str(info.value) and "VOCtest_06-Nov-2007.tar" in str(info.value)
    assert len(build_dataset("voc2007", "train", data_root=voc_data)) == 3


def test_class_file_that_disagrees_with_the_set(voc_data):
    path = voc_data / "voc" / "VOCdevkit" / "VOC2007" / "ImageSets" / "Main" / "dog_train.txt"
    path.write_text("000005 -1\n000009 -1\n")
    with pytest.raises(DatasetNotFoundError, match=r"1 missing \['000007'\]"):
        build_dataset("voc2007", "train", data_root=voc_data)
    path.write_text("000005 -1\n000007  2\n000009 -1\n")
    with pytest.raises(DatasetNotFoundError, match=r"000007 2"):
        build_dataset("voc2007", "train", data_root=voc_data)


def test_voc_root(voc_data):
    assert voc_root(voc_data / "voc", 2007) == voc_data / "voc" / "VOCdevkit" / "VOC2007"
    with pytest.raises(DatasetNotFoundError, match=r"VOCdevkit/VOC2012, which does not exist") as info:
        voc_root(voc_data / "voc", "2012")
    assert "JPEGImages/" in str(info.value) and "year='2012'" in str(info.value)
    # A path to the data root itself, one level above the entry's folder.
    with pytest.raises(DatasetNotFoundError, match=r"VOC2007 was expected in .*/VOCdevkit/VOC2007") as info:
        build_dataset("voc2007", "train", path=voc_data)
    assert "DATA_ROOT/voc/VOCdevkit/VOC2007/ holding JPEGImages" in str(info.value)
