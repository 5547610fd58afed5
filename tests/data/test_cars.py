"""Stanford Cars reader on MATLAB files written in the devkit's struct layout, checked against torchvision."""

import numpy as np
import pytest
import torch
from scipy.io import savemat
from torchvision.datasets import StanfordCars

import siambench.data.cars  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.data.splits import Holdout
from siambench.errors import DatasetNotFoundError

NAMES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"]
NAMES += [f"Model {k} 2010" for k in range(4, 196)] + ["smart fortwo Convertible 2012"]
TRAIN = [("00001.jpg", 14), ("00002.jpg", 3), ("00003.jpg", 196), ("00004.jpg", 1)]
TEST = [("00001.jpg", 196), ("00002.jpg", 2)]
FIELDS = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]


def write_annotations(path, records, with_class=True):
    """A 1 x N struct array ``annotations`` as in the devkit: 1 x 1 numeric fields and a char ``fname``."""
    fields = [f for f in FIELDS if with_class or f != "class"]
    array = np.zeros((1, len(records)), dtype=[(f, "O") for f in fields])
    for k, (fname, label) in enumerate(records):
        values = {
            "bbox_x1": np.array([[39]], np.uint8),
            "bbox_y1": np.array([[116]], np.uint8),
            "bbox_x2": np.array([[569]], np.uint16),
            "bbox_y2": np.array([[375]], np.uint16),
            "class": np.array([[label]], np.uint8),
            "fname": np.array([fname]),
        }
        array[0, k] = tuple(values[f] for f in fields)
    savemat(path, {"annotations": array})


@pytest.fixture
def cars_root(tmp_path, write_image):
    root = tmp_path / "stanford_cars"
    (root / "devkit").mkdir(parents=True)
    names = np.empty((1, len(NAMES)), dtype=object)
    for k, name in enumerate(NAMES):
        names[0, k] = np.array([name])
    savemat(root / "devkit" / "cars_meta.mat", {"class_names": names})
    write_annotations(root / "devkit" / "cars_train_annos.mat", TRAIN)
    write_annotations(root / "cars_test_annos_withlabels.mat", TEST)
    for folder, records in (("cars_train", TRAIN), ("cars_test", TEST)):
        for k, (fname, _) in enumerate(records):
            write_image(root / folder / fname, size=(24, 16), color=(40 * k, 90, 250 - 40 * k))
    return tmp_path


def test_splits_labels_and_class_names(cars_root):
    train = build_dataset("stanford_cars", "train", data_root=cars_root)
    test = build_dataset("stanford_cars", "test", data_root=cars_root)

    assert (len(train), len(test)) == (4, 2)
    assert train.targets == [13, 2, 195, 0] and test.targets == [195, 1]
    assert train.num_classes == test.num_classes == 196
    assert train.classes[0] == "AM General Hummer SUV 2000" and train.classes[195] == "smart fortwo Convertible 2012"
    assert test.describe(0).endswith("stanford_cars/cars_test/00001.jpg")
    image, label = train[2]
    assert label == 195 and image.shape == (3, 16, 24)
    assert torch.allclose(image.float().mean((1, 2)), torch.tensor([80.0, 90.0, 170.0]), atol=4)


@pytest.mark.parametrize("split", ["train", "test"])
def test_same_samples_as_torchvision(cars_root, split):
    ours = build_dataset("stanford_cars", split, data_root=cars_root)
    reference = StanfordCars(cars_root, split=split)
    assert len(ours) == len(reference) and ours.classes == reference.classes
    for i in range(len(ours)):
        image, label = reference[i]
        assert ours.targets[i] == label
        assert torch.equal(ours.load(i), torch.from_numpy(np.array(image)).permute(2, 0, 1))


def test_registry_entry():
    info = get_dataset_info("stanford_cars")
    assert info.splits == ("train", "test") and info.num_classes == 196 and info.metric == "top1"
    assert (info.train_split, info.test_split, info.val_split) == ("train", "test", None)
    assert info.val_holdout == Holdout(count=1650)
    assert info.split_sizes == {"train": 8144, "test": 8041}
    assert (info.subdir, info.eval_size, info.eval_crop_fraction) == ("stanford_cars", 224, 1.0)
    assert "Kaggle" in info.prepare and "torchvision" in info.prepare


def test_missing_meta_names_the_layout(cars_root):
    (cars_root / "stanford_cars" / "devkit" / "cars_meta.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"devkit/cars_meta\.mat is missing") as info:
        build_dataset("stanford_cars", "test", data_root=cars_root)
    assert "cars_test_annos_withlabels.mat" in str(info.value) and "Kaggle" in str(info.value)


def test_unreadable_mat_file_is_refused(cars_root):
    (cars_root / "stanford_cars" / "devkit" / "cars_train_annos.mat").write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DatasetNotFoundError, match=r"cars_train_annos\.mat is not a readable MATLAB file"):
        build_dataset("stanford_cars", "train", data_root=cars_root)


def test_unlabelled_test_annotations_are_refused(cars_root):
    write_annotations(cars_root / "stanford_cars" / "cars_test_annos_withlabels.mat", TEST, with_class=False)
    with pytest.raises(DatasetNotFoundError, match=r"fields 'fname' and 'class' are needed"):
        build_dataset("stanford_cars", "test", data_root=cars_root)


def test_annotation_file_of_one_image(cars_root):
    # loadmat(squeeze_me=True) turns a 1 x 1 struct array into a 0-d array.
    write_annotations(cars_root / "stanford_cars" / "cars_test_annos_withlabels.mat", [("00002.jpg", 7)])
    test = build_dataset("stanford_cars", "test", data_root=cars_root)
    assert test.targets == [6] and test.describe(0).endswith("cars_test/00002.jpg")


def test_class_numbers_outside_the_meta_are_refused(cars_root):
    write_annotations(cars_root / "stanford_cars" / "cars_test_annos_withlabels.mat", [("00001.jpg", 197)])
    with pytest.raises(DatasetNotFoundError, match=r"1 class numbers outside 1\.\.196"):
        build_dataset("stanford_cars", "test", data_root=cars_root)


def test_missing_images_are_counted(cars_root):
    (cars_root / "stanford_cars" / "cars_train" / "00002.jpg").unlink()
    (cars_root / "stanford_cars" / "cars_train" / "00004.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"2 of the 4 images listed in .*cars_train_annos\.mat are missing"):
        build_dataset("stanford_cars", "train", data_root=cars_root)
