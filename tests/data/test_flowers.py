"""Oxford 102 Flowers reader on imagelabels.mat and setid.mat written as in the official release."""

import numpy as np
import pytest
import torch
import torchvision.datasets
from scipy.io import savemat

import siambench.data.flowers  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.errors import DatasetNotFoundError

LABELS = [77, 77, 1, 102, 5, 1, 102, 5, 77, 1]
SET_IDS = {"trnid": [3, 1, 4], "valid": [2, 5], "tstid": [10, 6, 7, 8, 9]}


def write_mats(root, labels=LABELS, set_ids=SET_IDS, dtype=np.uint16):
    """1 x N arrays, as the release stores them."""
    savemat(root / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    savemat(root / "setid.mat", {k: np.array([v], dtype=dtype) for k, v in set_ids.items()})


@pytest.fixture
def flowers_root(tmp_path, write_image):
    root = tmp_path / "flowers-102"
    root.mkdir()
    write_mats(root)
    for k in range(1, len(LABELS) + 1):
        write_image(root / "jpg" / f"image_{k:05d}.jpg", size=(12, 18), color=(20 * k, 240 - 20 * k, 50))
    return tmp_path


def test_splits_labels_and_pixels(flowers_root):
    ds = {s: build_dataset("flowers102", s, data_root=flowers_root) for s in ("train", "val", "test")}

    assert {s: len(d) for s, d in ds.items()} == {"train": 3, "val": 2, "test": 5}
    assert ds["train"].targets == [0, 76, 101]
    assert ds["val"].targets == [76, 4]
    assert ds["test"].targets == [0, 0, 101, 4, 76]
    assert ds["train"].describe(0).endswith("flowers-102/jpg/image_00003.jpg")
    image, label = ds["test"][0]
    assert label == 0 and image.shape == (3, 18, 12)
    assert torch.allclose(image.float().mean((1, 2)), torch.tensor([200.0, 40.0, 50.0]), atol=4)


def test_class_names(flowers_root):
    train = build_dataset("flowers102", "train", data_root=flowers_root)
    assert train.num_classes == 102
    assert train.classes[0] == "pink primrose" and train.classes[4] == "english marigold"
    assert train.classes[76] == "passion flower" and train.classes[101] == "blackberry lily"


def test_label_numbers_name_the_classes_without_torchvision_names(flowers_root, monkeypatch):
    monkeypatch.delattr(torchvision.datasets.Flowers102, "classes", raising=False)
    train = build_dataset("flowers102", "train", data_root=flowers_root)
    assert train.classes == [str(k) for k in range(1, 103)] and train.classes[train.targets[1]] == "77"


def test_float_set_ids_read_alike(flowers_root):
    write_mats(flowers_root / "flowers-102", dtype=np.float64)
    assert build_dataset("flowers102", "test", data_root=flowers_root).targets == [0, 0, 101, 4, 76]


def test_registry_entry():
    info = get_dataset_info("flowers102")
    assert info.splits == ("train", "val", "test") and info.num_classes == 102 and info.metric == "mean_per_class"
    assert (info.train_split, info.val_split, info.test_split, info.val_holdout) == ("train", "val", "test", None)
    assert info.split_sizes == {"train": 1020, "val": 1020, "test": 6149}
    assert (info.subdir, info.eval_size, info.eval_crop_fraction) == ("flowers-102", 224, 1.0)


def test_missing_setid_names_the_layout(flowers_root):
    (flowers_root / "flowers-102" / "setid.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"flowers-102/setid\.mat is missing") as info:
        build_dataset("flowers102", "val", data_root=flowers_root)
    assert "jpg/image_00001.jpg" in str(info.value) and "torchvision.datasets.Flowers102" in str(info.value)


def test_setid_without_the_split_is_refused(flowers_root):
    savemat(flowers_root / "flowers-102" / "setid.mat", {"trnid": np.array([[1]], dtype=np.uint16)})
    with pytest.raises(DatasetNotFoundError, match=r"has no variable 'tstid' \(found: trnid\)"):
        build_dataset("flowers102", "test", data_root=flowers_root)


def test_out_of_range_ids_and_labels_are_refused(flowers_root):
    root = flowers_root / "flowers-102"
    write_mats(root, set_ids={**SET_IDS, "valid": [2, 11]})
    with pytest.raises(DatasetNotFoundError, match=r"lists 1 image ids in 'valid' outside the 10 labelled images"):
        build_dataset("flowers102", "val", data_root=flowers_root)
    write_mats(root, labels=[*LABELS[:-1], 103])
    with pytest.raises(DatasetNotFoundError, match=r"labels outside 1\.\.102"):
        build_dataset("flowers102", "val", data_root=flowers_root)


def test_missing_images_are_counted(flowers_root):
    (flowers_root / "flowers-102" / "jpg" / "image_00007.jpg").unlink()
    (flowers_root / "flowers-102" / "jpg" / "image_00009.jpg").unlink()
    build_dataset("flowers102", "train", data_root=flowers_root)
    with pytest.raises(DatasetNotFoundError, match=r"2 of the 5 images listed in .*setid.mat are missing") as info:
        build_dataset("flowers102", "test", data_root=flowers_root)
    assert "image_00007.jpg" in str(info.value)
