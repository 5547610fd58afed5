"""Food-101 reader on a tiny copy of the official archive's layout, checked against torchvision's Food101."""

import json

import numpy as np
import pytest
import torch
from torchvision.datasets import Food101

import siambench.data.food101  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.data.splits import Holdout
from siambench.errors import DatasetNotFoundError

CLASSES = ["apple_pie", "baby_back_ribs", "beignets"]
SPLITS = {
    "train": ["apple_pie/1005649", "apple_pie/1014775", "baby_back_ribs/1005293", "beignets/1007253"],
    "test": ["apple_pie/1011328", "baby_back_ribs/1001833", "beignets/1026681"],
}


@pytest.fixture
def food_root(tmp_path, write_image):
    root = tmp_path / "food-101"
    colours = {}
    for n, entry in enumerate(e for entries in SPLITS.values() for e in entries):
        colours[entry] = (20 * n, 200 - 20 * n, 100)
        write_image(root / "images" / f"{entry}.jpg", color=colours[entry])
    meta = root / "meta"
    meta.mkdir()
    (meta / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES))
    (meta / "labels.txt").write_text("Apple pie\nBaby back ribs\nBeignets\n")
    for split, entries in SPLITS.items():
        (meta / f"{split}.txt").write_text("".join(f"{e}\n" for e in entries))
        grouped = {c: [e for e in entries if e.startswith(c + "/")] for c in CLASSES}
        (meta / f"{split}.json").write_text(json.dumps(grouped))
    return tmp_path, colours


def as_chw(image) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)


def test_splits_labels_and_pixels(food_root):
    data_root, colours = food_root
    train = build_dataset("food101", "train", data_root=data_root)
    test = build_dataset("food101", "test", data_root=data_root)

    assert (len(train), len(test)) == (4, 3)
    assert train.classes == test.classes == CLASSES and train.num_classes == 3
    assert train.targets == [0, 0, 1, 2] and test.targets == [0, 1, 2]
    assert train.describe(2).endswith("food-101/images/baby_back_ribs/1005293.jpg")
    image, label = test[2]
    assert label == 2 and image.shape == (3, 16, 16) and image.dtype == torch.uint8
    assert torch.allclose(image.float().mean((1, 2)), torch.tensor(colours["beignets/1026681"]).float(), atol=4)


@pytest.mark.parametrize("split", ["train", "test"])
def test_same_samples_as_torchvision(food_root, split):
    data_root, _ = food_root
    ours = build_dataset("food101", split, data_root=data_root)
    reference = Food101(data_root, split=split)
    assert len(ours) == len(reference) and ours.classes == reference.classes
    for i in range(len(ours)):
        image, label = reference[i]
        assert ours.targets[i] == label
        assert torch.equal(ours.load(i), as_chw(image))


def test_class_index_is_the_line_order_of_classes_txt(food_root):
    data_root, _ = food_root
    (data_root / "food-101" / "meta" / "classes.txt").write_text("beignets\napple_pie\nbaby_back_ribs\n")
    test = build_dataset("food101", "test", data_root=data_root)
    assert test.classes == ["beignets", "apple_pie", "baby_back_ribs"]
    assert test.targets == [1, 2, 0]


def test_registry_entry():
    info = get_dataset_info("food101")
    assert info.splits == ("train", "test") and info.num_classes == 101 and info.metric == "top1"
    assert (info.train_split, info.test_split, info.val_split) == ("train", "test", None)
    assert info.val_holdout == Holdout(count=7575)
    assert info.split_sizes == {"train": 75750, "test": 25250}
    assert info.split_sizes["train"] - info.val_holdout.count == 68175
    assert (info.subdir, info.eval_size, info.eval_crop_fraction) == ("food-101", 224, 1.0)


def test_missing_split_file_names_the_layout(food_root):
    data_root, _ = food_root
    (data_root / "food-101" / "meta" / "test.txt").unlink()
    build_dataset("food101", "train", data_root=data_root)
    with pytest.raises(DatasetNotFoundError, match=r"meta/test\.txt is missing") as info:
        build_dataset("food101", "test", data_root=data_root)
    assert "images/<class>/<id>.jpg" in str(info.value) and "torchvision.datasets.Food101" in str(info.value)


def test_missing_images_are_counted(food_root):
    data_root, _ = food_root
    (data_root / "food-101" / "images" / "apple_pie" / "1014775.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"1 of the 4 images listed in .*train\.txt are missing") as info:
        build_dataset("food101", "train", data_root=data_root)
    assert "apple_pie/1014775.jpg" in str(info.value)


def test_entry_of_an_unknown_class_is_refused(food_root):
    data_root, _ = food_root
    (data_root / "food-101" / "meta" / "test.txt").write_text("apple_pie/1011328\nwaffles/1000\n")
    with pytest.raises(DatasetNotFoundError, match=r"entry 2 of .*test\.txt is 'waffles/1000'"):
        build_dataset("food101", "test", data_root=data_root)
