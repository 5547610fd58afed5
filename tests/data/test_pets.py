"""Oxford-IIIT Pet reader on a tiny oxford-iiit-pet tree, checked against torchvision's OxfordIIITPet."""

import numpy as np
import pytest
import torch
from torchvision.datasets import OxfordIIITPet

import siambench.data.pets  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.data.pets import breed_name
from siambench.data.splits import Holdout
from siambench.errors import DatasetNotFoundError

SPLITS = {
    "trainval": [
        "Abyssinian_100 1 1 1",
        "Abyssinian_101 1 1 1",
        "american_bulldog_100 2 2 1",
        "american_pit_bull_terrier_1 3 2 2",
    ],
    "test": [
        "Abyssinian_1 1 1 1",
        "basset_hound_10 4 2 3",
        "american_pit_bull_terrier_10 3 2 2",
    ],
}
CLASSES = ["Abyssinian", "American Bulldog", "American Pit Bull Terrier", "Basset Hound"]


@pytest.fixture
def pets_root(tmp_path, write_image):
    root = tmp_path / "oxford-iiit-pet"
    (root / "annotations").mkdir(parents=True)
    for split, lines in SPLITS.items():
        (root / "annotations" / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines))
    for k, line in enumerate(SPLITS["trainval"] + SPLITS["test"]):
        write_image(root / "images" / f"{line.split()[0]}.jpg", size=(20, 12), color=(200 - 25 * k, 30 * k, 70))
    return tmp_path


def test_splits_labels_and_breed_names(pets_root):
    trainval = build_dataset("oxford_pets", "trainval", data_root=pets_root)
    test = build_dataset("oxford_pets", "test", data_root=pets_root)

    assert (len(trainval), len(test)) == (4, 3)
    assert trainval.classes == test.classes == CLASSES
    assert trainval.targets == [0, 0, 1, 2] and test.targets == [0, 3, 2]
    assert test.describe(1).endswith("oxford-iiit-pet/images/basset_hound_10.jpg")
    image, label = test[1]
    assert label == 3 and image.shape == (3, 12, 20)
    assert torch.allclose(image.float().mean((1, 2)), torch.tensor([75.0, 150.0, 70.0]), atol=4)


def test_breed_name():
    assert breed_name("american_pit_bull_terrier_7") == "American Pit Bull Terrier"
    assert breed_name("Egyptian_Mau_186") == "Egyptian Mau"
    assert breed_name("yorkshire_terrier_1") == "Yorkshire Terrier"


@pytest.mark.parametrize("split", ["trainval", "test"])
def test_same_samples_as_torchvision(pets_root, split):
    ours = build_dataset("oxford_pets", split, data_root=pets_root)
    reference = OxfordIIITPet(pets_root, split=split, target_types="category")
    assert len(ours) == len(reference)
    for i in range(len(ours)):
        image, label = reference[i]
        assert ours.targets[i] == label
        assert torch.equal(ours.load(i), torch.from_numpy(np.array(image)).permute(2, 0, 1))
    if split == "trainval":
        assert ours.classes[:3] == reference.classes


def test_registry_entry():
    info = get_dataset_info("oxford_pets")
    assert info.splits == ("trainval", "test") and info.num_classes == 37 and info.metric == "mean_per_class"
    assert (info.train_split, info.test_split, info.val_split) == ("trainval", "test", None)
    assert info.val_holdout == Holdout(per_class=20)
    assert info.split_sizes == {"trainval": 3680, "test": 3669}
    assert info.split_sizes["trainval"] - info.val_holdout.per_class * info.num_classes == 2940
    assert (info.subdir, info.eval_size, info.eval_crop_fraction) == ("oxford-iiit-pet", 224, 1.0)


def test_missing_split_file_names_the_layout(pets_root):
    (pets_root / "oxford-iiit-pet" / "annotations" / "test.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"annotations/test\.txt is missing") as info:
        build_dataset("oxford_pets", "trainval", data_root=pets_root)
    assert "images/<Breed>_<n>.jpg" in str(info.value) and "torchvision.datasets.OxfordIIITPet" in str(info.value)


def test_class_ids_without_a_breed_are_refused(pets_root):
    (pets_root / "oxford-iiit-pet" / "annotations" / "test.txt").write_text("Abyssinian_1 1 1 1\nboxer_3 6 2 5\n")
    with pytest.raises(DatasetNotFoundError, match=r"ids without images: \[4, 5\]"):
        build_dataset("oxford_pets", "test", data_root=pets_root)


def test_malformed_line_is_refused(pets_root):
    (pets_root / "oxford-iiit-pet" / "annotations" / "test.txt").write_text("Abyssinian_1 1 1 1\nbasset_hound_10 x\n")
    with pytest.raises(DatasetNotFoundError, match=r"line 2 of .*test\.txt is 'basset_hound_10 x'"):
        build_dataset("oxford_pets", "test", data_root=pets_root)


def test_missing_images_are_counted(pets_root):
    (pets_root / "oxford-iiit-pet" / "images" / "Abyssinian_1.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"1 of the 3 images listed in .*test\.txt are missing"):
        build_dataset("oxford_pets", "test", data_root=pets_root)
