"""FGVC-Aircraft reader on a tiny fgvc-aircraft-2013b tree, checked against torchvision's FGVCAircraft."""

import numpy as np
import pytest
import torch
from torchvision.datasets import FGVCAircraft

import siambench.data.aircraft  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.errors import DatasetNotFoundError

VARIANTS = ["707-320", "A300B4", "Cessna 525", "F/A-18", "Falcon 2000"]
SPLITS = {
    "train": ["1025794 707-320", "0034309 F/A-18", "1340192 Cessna 525"],
    "val": ["0056978 Falcon 2000", "1514522 A300B4"],
    "test": ["2233445 F/A-18", "0062345 707-320"],
}
SPLITS["trainval"] = SPLITS["train"] + SPLITS["val"]


@pytest.fixture
def aircraft_root(tmp_path, write_image):
    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("".join(f"{v}\n" for v in VARIANTS))
    (data / "families.txt").write_text("Boeing 707\nA300\nCessna Citation\nF/A-18\nFalcon 2000\n")
    for split, lines in SPLITS.items():
        (data / f"images_variant_{split}.txt").write_text("".join(f"{line}\n" for line in lines))
    for k, line in enumerate(SPLITS["trainval"] + SPLITS["test"]):
        write_image(data / "images" / f"{line.split()[0]}.jpg", size=(16, 20), color=(30 * k, 60, 220 - 30 * k))
    return tmp_path


def test_splits_and_variant_labels(aircraft_root):
    ds = {s: build_dataset("fgvc_aircraft", s, data_root=aircraft_root) for s in ("train", "val", "trainval", "test")}

    assert {s: len(d) for s, d in ds.items()} == {"train": 3, "val": 2, "trainval": 5, "test": 2}
    assert ds["train"].classes == VARIANTS and ds["test"].num_classes == 5
    assert ds["train"].targets == [0, 3, 2] and ds["val"].targets == [4, 1] and ds["test"].targets == [3, 0]
    assert ds["trainval"].targets == [0, 3, 2, 4, 1]
    assert ds["train"].describe(1).endswith("fgvc-aircraft-2013b/data/images/0034309.jpg")
    image, label = ds["val"][1]
    assert label == 1 and image.shape == (3, 20, 16)
    assert torch.allclose(image.float().mean((1, 2)), torch.tensor([120.0, 60.0, 100.0]), atol=4)


@pytest.mark.parametrize("split", ["train", "val", "trainval", "test"])
def test_same_samples_as_torchvision(aircraft_root, split):
    ours = build_dataset("fgvc_aircraft", split, data_root=aircraft_root)
    reference = FGVCAircraft(aircraft_root, split=split, annotation_level="variant")
    assert len(ours) == len(reference) and ours.classes == reference.classes
    for i in range(len(ours)):
        image, label = reference[i]
        assert ours.targets[i] == label
        assert torch.equal(ours.load(i), torch.from_numpy(np.array(image)).permute(2, 0, 1))


def test_registry_entry():
    info = get_dataset_info("fgvc_aircraft")
    assert info.splits == ("train", "val", "trainval", "test") and info.num_classes == 100
    assert info.metric == "mean_per_class"
    assert (info.train_split, info.val_split, info.test_split, info.val_holdout) == ("train", "val", "test", None)
    assert info.split_sizes == {"train": 3334, "val": 3333, "trainval": 6667, "test": 3333}
    assert (info.subdir, info.eval_size, info.eval_crop_fraction) == ("fgvc-aircraft-2013b", 224, 1.0)


def test_missing_variants_file_names_the_layout(aircraft_root):
    (aircraft_root / "fgvc-aircraft-2013b" / "data" / "variants.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"data/variants\.txt is missing") as info:
        build_dataset("fgvc_aircraft", "test", data_root=aircraft_root)
    assert "images_variant_{train,val,trainval,test}.txt" in str(info.value)
    assert "torchvision.datasets.FGVCAircraft" in str(info.value)


def test_unknown_variant_is_refused(aircraft_root):
    listing = aircraft_root / "fgvc-aircraft-2013b" / "data" / "images_variant_test.txt"
    listing.write_text("2233445 F/A-18\n0062345 Boeing 707\n")
    with pytest.raises(DatasetNotFoundError, match=r"line 2 of .*images_variant_test\.txt is '0062345 Boeing 707'"):
        build_dataset("fgvc_aircraft", "test", data_root=aircraft_root)


def test_missing_images_are_counted(aircraft_root):
    (aircraft_root / "fgvc-aircraft-2013b" / "data" / "images" / "0056978.jpg").unlink()
    build_dataset("fgvc_aircraft", "train", data_root=aircraft_root)
    with pytest.raises(DatasetNotFoundError, match=r"1 of the 5 images listed in .*trainval\.txt are missing"):
        build_dataset("fgvc_aircraft", "trainval", data_root=aircraft_root)
