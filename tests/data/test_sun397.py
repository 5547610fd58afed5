"""SUN397 partitions on a tiny tree in the official layout (ClassName.txt, Partitions/, nested class folders)."""

import numpy as np
import pytest
import torchvision
from PIL import Image

import siambench.data.sun397  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.errors import ConfigError, DatasetNotFoundError

CLASS_PATHS = [
    "/a/abbey",
    "/a/airplane_cabin",
    "/a/apartment_building/outdoor",
    "/a/apse/indoor",
    "/b/bathroom",
    "/b/bedroom",
]


def write_image(path, color, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG", quality=95)


def image_name(c, k):
    return f"sun_{'abcdefghijklmnop'[c]}{'qrstuvwxyz'[k]}aaalbzqrimafw.jpg"


def color(c, k):
    return (40 * c, 60 * k, 200)


@pytest.fixture
def sun_root(tmp_path):
    """Five images per class; partition 1 trains on images 0-1 and tests on 2-3, partition 2 the reverse.

    Image 4 of every class is in no partition file.
    """
    root = tmp_path / "SUN397"
    root.mkdir()
    (root / "ClassName.txt").write_text("".join(c + "\n" for c in CLASS_PATHS))
    lines = {name: [] for name in ("Training_01", "Testing_01", "Training_02", "Testing_02")}
    for c, class_path in enumerate(CLASS_PATHS):
        for k in range(5):
            line = f"{class_path}/{image_name(c, k)}"
            write_image(root / line.lstrip("/"), color(c, k))
            if k < 2:
                lines["Training_01"].append(line)
                lines["Testing_02"].append(line)
            elif k < 4:
                lines["Testing_01"].append(line)
                lines["Training_02"].append(line)
    (root / "Partitions").mkdir()
    for name, entries in lines.items():
        (root / "Partitions" / f"{name}.txt").write_text("".join(e + "\n" for e in entries))
    return tmp_path


def relative(ds, root):
    return ["/" + p.relative_to(root / "SUN397").as_posix() for p, _ in ds.samples]


def test_partition_one_lists_and_labels(sun_root):
    train = build_dataset("sun397", "train", data_root=sun_root)
    test = build_dataset("sun397", "test", data_root=sun_root)

    assert len(train) == 12 and len(test) == 12
    assert train.classes == [
        "abbey", "airplane_cabin", "apartment_building/outdoor", "apse/indoor", "bathroom", "bedroom"
    ]
    assert relative(train, sun_root)[:2] == [f"/a/abbey/{image_name(0, 0)}", f"/a/abbey/{image_name(0, 1)}"]
    by_path = dict(zip(relative(train, sun_root), train.targets))
    assert by_path[f"/a/apartment_building/outdoor/{image_name(2, 1)}"] == 2
    assert by_path[f"/a/apse/indoor/{image_name(3, 0)}"] == 3
    assert by_path[f"/b/bedroom/{image_name(5, 0)}"] == 5
    assert test.targets == [c for c in range(6) for _ in range(2)]

    image, label = test[5]
    assert label == 2 and image.shape == (3, 10, 12)
    np.testing.assert_allclose(image.float().mean(dim=(1, 2)).numpy(), color(2, 3), atol=3)


def test_labels_agree_with_torchvision(sun_root):
    reference = torchvision.datasets.SUN397(sun_root)
    expected = {str(p): y for p, y in zip(reference._image_files, reference._labels)}
    ours = build_dataset("sun397", "train", data_root=sun_root)
    assert ours.classes == reference.classes
    assert all(expected[str(p)] == y for p, y in ours.samples)


def test_images_outside_the_partition_are_excluded(sun_root):
    listed = set()
    for split in ("train", "test"):
        listed |= set(relative(build_dataset("sun397", split, data_root=sun_root), sun_root))
    on_disk = {"/" + p.relative_to(sun_root / "SUN397").as_posix() for p in (sun_root / "SUN397").rglob("sun_*.jpg")}
    assert len(on_disk) == 30 and len(listed) == 24
    assert on_disk - listed == {f"{c}/{image_name(i, 4)}" for i, c in enumerate(CLASS_PATHS)}


def test_partition_two_is_selectable(sun_root):
    train = build_dataset("sun397", "train", data_root=sun_root, partition=2)
    test = build_dataset("sun397", "test", data_root=sun_root, partition=2)
    assert relative(train, sun_root) == [f"{c}/{image_name(i, k)}" for i, c in enumerate(CLASS_PATHS) for k in (2, 3)]
    assert relative(test, sun_root) == relative(build_dataset("sun397", "train", data_root=sun_root), sun_root)
    assert train.targets == [c for c in range(6) for _ in range(2)]


def test_bad_partition_is_a_config_error(sun_root):
    for bad in (0, 11, "1"):
        with pytest.raises(ConfigError, match="partition must be an integer from 1 to 10"):
            build_dataset("sun397", "train", data_root=sun_root, partition=bad)


def test_missing_partition_file_names_the_layout(sun_root):
    (sun_root / "SUN397" / "Partitions" / "Testing_01.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"Testing_01.txt is missing") as info:
        build_dataset("sun397", "test", data_root=sun_root)
    assert "Partitions/Training_01.txt" in str(info.value) and "Partitions.zip" in str(info.value)


def test_missing_class_list_and_unknown_class(sun_root):
    root = sun_root / "SUN397"
    (root / "ClassName.txt").write_text("".join(c + "\n" for c in CLASS_PATHS if c != "/b/bedroom"))
    with pytest.raises(DatasetNotFoundError, match=r"whose class /b/bedroom is not in ClassName.txt"):
        build_dataset("sun397", "train", data_root=sun_root)
    (root / "ClassName.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"ClassName.txt is missing"):
        build_dataset("sun397", "train", data_root=sun_root)


def test_registry_entry():
    info = get_dataset_info("sun397")
    assert info.num_classes == 397 and info.metric == "top1"
    assert info.split_sizes == {"train": 19850, "test": 19850}
    assert info.val_holdout.per_class == 10 and info.defaults == {"partition": 1}
    assert (info.train_split, info.test_split, info.val_split) == ("train", "test", None)
    assert info.eval_size == 224 and info.eval_crop_fraction == 1.0
