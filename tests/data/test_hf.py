"""Hugging Face ``datasets`` directories: save_to_disk output and image folders, read offline."""

import io
import os
import re
import socket

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from siambench.data import build_dataset
from siambench.errors import CorruptImageError, DatasetNotFoundError, SiambenchError


def image(seed, size=(4, 6)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def png_bytes(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def hwc(tensor):
    assert tensor.dtype == torch.uint8 and tensor.shape[0] == 3
    return tensor.permute(1, 2, 0).numpy()


def make_split(arrays, labels, names=("cat", "dog", "eel")):
    data = {
        "caption": [f"picture {i}" for i in range(len(arrays))],
        "label": labels,
        "image": [{"bytes": png_bytes(a), "path": f"img{i}.png"} for i, a in enumerate(arrays)],
    }
    features = datasets.Features(
        {
            "caption": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(names)),
            "image": datasets.Image(),
        }
    )
    return datasets.Dataset.from_dict(data, features=features)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SIAMBENCH_DATA", raising=False)


@pytest.fixture
def network_calls(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("network disabled in tests")

    for name in ("create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return calls


def test_dataset_dict_from_save_to_disk(tmp_path):
    train_arrays = [image(i) for i in range(3)]
    dd = datasets.DatasetDict(
        {
            "train": make_split(train_arrays, [2, 0, 1]),
            "validation": make_split([image(10)], [1]),
        }
    )
    dd.save_to_disk(str(tmp_path / "dd"))

    train = build_dataset("hf", "train", path=tmp_path / "dd")
    val = build_dataset("hf", "val", path=tmp_path / "dd")

    assert train.classes == ["cat", "dog", "eel"]
    assert train.targets == [2, 0, 1] and val.targets == [1]
    for i, expected in enumerate(train_arrays):
        img, label = train[i]
        np.testing.assert_array_equal(hwc(img), expected)
        assert label == train.targets[i]
    np.testing.assert_array_equal(hwc(val[0][0]), image(10))
    with pytest.raises(DatasetNotFoundError, match="no split 'test'"):
        build_dataset("hf", "test", path=tmp_path / "dd")


def test_plain_dataset_is_train_and_grayscale_becomes_rgb(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    buf = io.BytesIO()
    Image.fromarray(gray, mode="L").save(buf, format="PNG")
    ds = datasets.Dataset.from_dict({"img": [buf.getvalue()], "n": [7]}).cast_column("img", datasets.Image())
    ds.save_to_disk(str(tmp_path / "single"))

    out = build_dataset("hf", "train", path=tmp_path / "single")

    assert out.classes == [] and out.targets == [-1]
    img, _ = out[0]
    assert img.shape == (3, 3, 4)
    for c in range(3):
        np.testing.assert_array_equal(img[c].numpy(), gray)
    with pytest.raises(DatasetNotFoundError, match="split 'train'"):
        build_dataset("hf", "test", path=tmp_path / "single")


def test_column_overrides(tmp_path):
    ds = (
        datasets.Dataset.from_dict(
            {
                "a": [png_bytes(image(0)), png_bytes(image(1))],
                "b": [png_bytes(image(2)), png_bytes(image(3))],
                "fine": [5, 2],
                "label": [1, 0],
            }
        )
        .cast_column("a", datasets.Image())
        .cast_column("b", datasets.Image())
        .cast_column("label", datasets.ClassLabel(names=["x", "y"]))
    )
    ds.save_to_disk(str(tmp_path / "d"))

    detected = build_dataset("hf", "train", path=tmp_path / "d")
    assert detected.targets == [1, 0] and detected.classes == ["x", "y"]
    np.testing.assert_array_equal(hwc(detected[1][0]), image(1))

    chosen = build_dataset("hf", "train", path=tmp_path / "d", image_column="b", label_column="fine")
    np.testing.assert_array_equal(hwc(chosen[1][0]), image(3))
    assert chosen.targets == [5, 2] and chosen.num_classes == 6

    unlabelled = build_dataset("hf", "train", path=tmp_path / "d", label_column="")
    assert unlabelled.targets == [-1, -1]

    with pytest.raises(SiambenchError, match="not an Image feature"):
        build_dataset("hf", "train", path=tmp_path / "d", image_column="fine")


def test_corrupt_image_raises_naming_the_row(tmp_path):
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": png_bytes(image(0)), "path": "ok.png"}, {"bytes": b"not an image", "path": "broken.jpg"}]},
        features=datasets.Features({"image": datasets.Image()}),
    )
    ds.save_to_disk(str(tmp_path / "d"))
    out = build_dataset("hf", "train", path=tmp_path / "d")
    out[0]
    with pytest.raises(CorruptImageError, match=r"row 1 of .*broken\.jpg"):
        out[1]


def test_imagefolder_directory_reads_offline(tmp_path, network_calls):
    root = tmp_path / "folder"
    arrays = {}
    for split, cls, name, seed in [
        ("train", "cat", "a", 0),
        ("train", "dog", "b", 1),
        ("train", "dog", "c", 2),
        ("test", "dog", "d", 3),
    ]:
        (root / split / cls).mkdir(parents=True, exist_ok=True)
        arrays[name] = image(seed)
        Image.fromarray(arrays[name]).save(root / split / cls / f"{name}.png")

    train = build_dataset("hf", "train", path=root)
    test = build_dataset("hf", "test", path=root)

    assert network_calls == []
    assert train.classes == test.classes == ["cat", "dog"]
    names = [re.search(r"(\w)\.png\)$", train.describe(i)).group(1) for i in range(len(train))]
    assert sorted(zip(names, train.targets)) == [("a", 0), ("b", 1), ("c", 1)]
    assert test.targets == [1]
    for i, name in enumerate(names):
        np.testing.assert_array_equal(hwc(train[i][0]), arrays[name])


def test_offline_switch_is_restored(tmp_path, monkeypatch):
    from siambench.data.hf import hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    with hub_offline():
        assert datasets.config.HF_HUB_OFFLINE is True
    assert datasets.config.HF_HUB_OFFLINE is False
    assert "HF_HUB_OFFLINE" not in os.environ


def test_directory_without_dataset_or_images(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "readme.md").write_text("nothing here")
    with pytest.raises(DatasetNotFoundError, match="save_to_disk") as info:
        build_dataset("hf", "train", path=tmp_path / "d")
    assert str(tmp_path / "d") in str(info.value)


# Hugging Face copies of the transfer datasets -------------------------------------------


@pytest.fixture
def small_sizes(monkeypatch):
    """Give registered datasets tiny published split sizes, so a copy of a few rows can match them."""
    import dataclasses

    from siambench.data import registry

    def shrink(name, **sizes):
        info = registry.get_dataset_info(name)
        monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(info, split_sizes=sizes))

    return shrink


def make_copy(root, splits: dict, num_classes: int, label="label", extra_label=None):
    """A DatasetDict written by save_to_disk: ``splits`` maps names to row counts; labels i % classes."""
    parts = {}
    for k, (name, n) in enumerate(splits.items()):
        columns = {"image": [{"bytes": png_bytes(image(100 * k + i)), "path": None} for i in range(n)],
                   label: [i % num_classes for i in range(n)]}
        features = {"image": datasets.Image(), label: datasets.ClassLabel(num_classes=num_classes)}
        if extra_label:
            columns[extra_label] = [0] * n
            features[extra_label] = datasets.ClassLabel(num_classes=2)
        parts[name] = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    datasets.DatasetDict(parts).save_to_disk(str(root))


def test_food101_copy_maps_its_validation_split_to_the_test_split(tmp_path, small_sizes):
    small_sizes("food101", train=6, test=4)
    make_copy(tmp_path / "food-101", {"train": 6, "validation": 4}, 101)
    test = build_dataset("food101", "test", data_root=tmp_path)
    assert len(test) == 4 and len(test.classes) == 101 and list(test.targets) == [0, 1, 2, 3]
    assert np.array_equal(hwc(test[2][0]), image(102))
    train = build_dataset("food101", "train", data_root=tmp_path)
    assert len(train) == 6 and np.array_equal(hwc(train[0][0]), image(0))


def test_cifar100_copy_reads_the_fine_labels(tmp_path, small_sizes):
    small_sizes("cifar100", train=5, test=3)
    make_copy(tmp_path / "cifar-100-python", {"train": 5, "test": 3}, 100, label="fine_label",
              extra_label="coarse_label")
    data = build_dataset("cifar100", "train", data_root=tmp_path)
    assert len(data.classes) == 100 and list(data.targets) == [0, 1, 2, 3, 4]


def test_copy_with_other_split_sizes_is_refused_naming_them(tmp_path, small_sizes):
    small_sizes("oxford_pets", trainval=6, test=4)
    make_copy(tmp_path / "oxford-iiit-pet", {"train": 5, "test": 4}, 37)
    with pytest.raises(DatasetNotFoundError, match=r"splits train 5, test 4; the protocol's 'trainval' split "
                                                   r"is 6 images, which none of train, trainval holds"):
        build_dataset("oxford_pets", "trainval", data_root=tmp_path)
    assert len(build_dataset("oxford_pets", "test", data_root=tmp_path)) == 4


def test_copy_with_another_class_count_is_refused(tmp_path, small_sizes):
    small_sizes("stanford_cars", train=4, test=2)
    make_copy(tmp_path / "stanford_cars", {"train": 4, "test": 2}, 10)
    with pytest.raises(DatasetNotFoundError, match="has 10 classes in its label column, not 196"):
        build_dataset("stanford_cars", "train", data_root=tmp_path)


@pytest.mark.parametrize("name, folder, reason", [
    ("sun397", "SUN397", "cannot show that it holds partition 1"),
    ("dtd", "dtd", "cannot show that it holds split 1"),
    ("caltech101", "caltech101", "seeded draw"),
    ("voc2007", "voc", "1/0/-1 labels"),
    ("birdsnap", "birdsnap", "test_images.txt"),
])
def test_copies_that_cannot_be_mapped_say_why(tmp_path, name, folder, reason):
    make_copy(tmp_path / folder, {"train": 2, "test": 2}, 3)
    with pytest.raises(DatasetNotFoundError, match=f"Hugging Face datasets copy, which cannot stand in .*{reason}"):
        build_dataset(name, "train", data_root=tmp_path)
