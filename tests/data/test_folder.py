"""Image-folder and ImageNet readers, on trees written in their real layouts."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from siambench.data import build_dataset, get_dataset_info
from siambench.errors import CorruptImageError, DatasetNotFoundError


def write_image(path: Path, seed: int, size=(5, 7), fmt=None) -> np.ndarray:
    array = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)
    return array


def as_hwc(image: torch.Tensor) -> np.ndarray:
    assert image.dtype == torch.uint8 and image.shape[0] == 3
    return image.permute(1, 2, 0).numpy()


@pytest.fixture(autouse=True)
def no_data_root(monkeypatch):
    monkeypatch.delenv("SIAMBENCH_DATA", raising=False)


def test_labelled_tree_sorted_classes_nested_and_exact_pixels(tmp_path):
    b = write_image(tmp_path / "bird" / "b1.png", 1)
    a2 = write_image(tmp_path / "ant" / "sub" / "a2.png", 2)
    a1 = write_image(tmp_path / "ant" / "a1.PNG", 3, fmt="PNG")
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    write_image(tmp_path / ".cache" / "x.png", 4)

    ds = build_dataset("imagefolder", "train", path=tmp_path)

    assert ds.classes == ["ant", "bird"]
    assert ds.targets == [0, 0, 1]
    assert [p.name for p, _ in ds.samples] == ["a1.PNG", "a2.png", "b1.png"]
    for i, expected in enumerate([a1, a2, b]):
        image, label = ds[i]
        np.testing.assert_array_equal(as_hwc(image), expected)
        assert label == ds.targets[i]


def test_flat_folder_is_unlabelled(tmp_path):
    second = write_image(tmp_path / "b.png", 1)
    first = np.zeros((16, 16, 3), dtype=np.uint8)
    first[..., 0] = np.arange(16)[:, None] * 16
    first[..., 2] = 200
    Image.fromarray(first).save(tmp_path / "a.jpeg", quality=95)

    ds = build_dataset("imagefolder", "train", path=tmp_path)

    assert ds.classes == [] and ds.targets == [-1, -1] and not ds.has_labels
    image, label = ds[0]
    assert label == -1 and image.shape == (3, 16, 16)
    assert np.abs(as_hwc(image).astype(int) - first).max() <= 8  # JPEG is lossy, but only slightly
    np.testing.assert_array_equal(as_hwc(ds[1][0]), second)
    with pytest.raises(DatasetNotFoundError, match="only the split 'train'"):
        build_dataset("imagefolder", "val", path=tmp_path)


def test_split_folders_share_one_class_index(tmp_path):
    write_image(tmp_path / "train" / "cat" / "1.png", 1)
    write_image(tmp_path / "train" / "dog" / "2.png", 2)
    write_image(tmp_path / "val" / "dog" / "3.png", 3)
    write_image(tmp_path / "val" / "eel" / "4.png", 4)

    train = build_dataset("imagefolder", "train", path=tmp_path)
    val = build_dataset("imagefolder", "val", path=tmp_path)

    assert train.classes == val.classes == ["cat", "dog", "eel"]
    assert train.targets == [0, 1]
    assert val.targets == [1, 2]
    with pytest.raises(DatasetNotFoundError, match="test"):
        build_dataset("imagefolder", "test", path=tmp_path)


def test_corrupt_file_raises_naming_it(tmp_path):
    write_image(tmp_path / "a" / "good.png", 1)
    bad = tmp_path / "a" / "zz_bad.jpg"
    bad.write_bytes(b"these bytes are not an image")
    ds = build_dataset("imagefolder", "train", path=tmp_path)
    ds[0]
    with pytest.raises(CorruptImageError, match="zz_bad.jpg") as info:
        ds[1]
    assert info.value.path == str(bad)


@pytest.mark.parametrize("content", ["missing", "empty", "no_images"])
def test_missing_empty_or_imageless_root(tmp_path, content):
    root = tmp_path / "root"
    if content != "missing":
        root.mkdir()
    if content == "no_images":
        (root / "cls").mkdir()
        (root / "cls" / "readme.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError) as info:
        build_dataset("imagefolder", "train", path=root)
    message = str(info.value)
    assert str(root) in message
    assert "root/<class>/<image>" in message


def test_no_data_root_names_the_variable_and_layout():
    with pytest.raises(DatasetNotFoundError, match="SIAMBENCH_DATA") as info:
        build_dataset("imagenet", "train")
    assert "root/train/<wnid>/*.JPEG" in str(info.value)


def test_imagenet_layout_under_data_root(tmp_path):
    root = tmp_path / "imagenet"
    for split in ("train", "val"):
        for k, wnid in enumerate(["n01440764", "n01443537"]):
            write_image(root / split / wnid / f"{wnid}_{k}.JPEG", k, fmt="JPEG")
    write_image(root / "val" / "n01443537" / "extra.JPEG", 9, fmt="JPEG")

    val = build_dataset("imagenet", "val", data_root=tmp_path)

    assert val.classes == ["n01440764", "n01443537"]
    assert val.targets == [0, 1, 1]
    assert val[2][0].shape == (3, 5, 7)
    assert get_dataset_info("imagenet").num_classes == 1000


def test_imagenet_flat_val_explains_the_preparation(tmp_path):
    root = tmp_path / "imagenet"
    write_image(root / "train" / "n01440764" / "a.JPEG", 0, fmt="JPEG")
    write_image(root / "val" / "ILSVRC2012_val_00000001.JPEG", 1, fmt="JPEG")
    with pytest.raises(DatasetNotFoundError, match="no <wnid>/ class folders") as info:
        build_dataset("imagenet", "val", data_root=tmp_path)
    assert "valprep" in str(info.value)
