"""DTD reader on a tiny dtd/ tree with two partitions, checked against torchvision's DTD."""

import shutil

import numpy as np
import pytest
import torch
from torchvision.datasets import DTD

import siambench.data.dtd  # noqa: F401  (registers the entry)
from siambench.data import build_dataset, get_dataset_info
from siambench.errors import ConfigError, DatasetNotFoundError

PARTITIONS = {
    1: {
        "train": ["banded/banded_0002.jpg", "blotchy/blotchy_0003.jpg", "zigzagged/zigzagged_0012.jpg"],
        "val": ["banded/banded_0004.jpg", "zigzagged/zigzagged_0013.jpg"],
        "test": ["blotchy/blotchy_0010.jpg", "banded/banded_0005.jpg"],
    },
    2: {
        "train": ["banded/banded_0004.jpg", "zigzagged/zigzagged_0013.jpg"],
        "val": ["blotchy/blotchy_0010.jpg", "banded/banded_0005.jpg"],
        "test": ["banded/banded_0002.jpg", "blotchy/blotchy_0003.jpg", "zigzagged/zigzagged_0012.jpg"],
    },
}
FILES = sorted({f for splits in PARTITIONS.values() for files in splits.values() for f in files})


def write_dtd(folder, write_image):
    """The tree dtd-r1.0.1.tar.gz unpacks to: ``folder/images/<class>/<file>`` and ``folder/labels/``."""
    (folder / "labels").mkdir(parents=True)
    for partition, splits in PARTITIONS.items():
        for split, files in splits.items():
            (folder / "labels" / f"{split}{partition}.txt").write_text("".join(f"{f}\n" for f in files))
    for k, name in enumerate(FILES):
        write_image(folder / "images" / name, color=(25 * k, 100, 200 - 25 * k))


@pytest.fixture
def dtd_root(tmp_path, write_image):
    write_dtd(tmp_path / "dtd", write_image)
    return tmp_path


def test_partition_one_by_default(dtd_root):
    ds = {s: build_dataset("dtd", s, data_root=dtd_root) for s in ("train", "val", "test")}

    assert {s: len(d) for s, d in ds.items()} == {"train": 3, "val": 2, "test": 2}
    assert ds["train"].classes == ds["test"].classes == ["banded", "blotchy", "zigzagged"]
    assert ds["train"].targets == [0, 1, 2] and ds["val"].targets == [0, 2] and ds["test"].targets == [1, 0]
    assert ds["val"].describe(1).endswith("dtd/images/zigzagged/zigzagged_0013.jpg")
    image, label = ds["test"][0]
    k = FILES.index("blotchy/blotchy_0010.jpg")
    assert label == 1
    assert torch.allclose(image.float().mean((1, 2)), torch.tensor([25.0 * k, 100, 200 - 25 * k]), atol=4)


def test_partition_option(dtd_root):
    train = build_dataset("dtd", "train", data_root=dtd_root, partition=2)
    test = build_dataset("dtd", "test", data_root=dtd_root, partition=2)
    assert train.targets == [0, 2] and test.targets == [0, 1, 2]
    assert test.describe(2).endswith("zigzagged/zigzagged_0012.jpg")
    for bad in (0, 11, "one", True):
        with pytest.raises(ConfigError, match="partition must be an integer from 1 to 10"):
            build_dataset("dtd", "train", data_root=dtd_root, partition=bad)


def test_classes_agree_across_splits_missing_a_class(dtd_root):
    (dtd_root / "dtd" / "labels" / "val1.txt").write_text("banded/banded_0004.jpg\n")
    val = build_dataset("dtd", "val", data_root=dtd_root)
    assert val.classes == ["banded", "blotchy", "zigzagged"] and val.targets == [0]


@pytest.mark.parametrize("split", ["train", "val", "test"])
@pytest.mark.parametrize("partition", [1, 2])
def test_same_samples_as_torchvision_in_its_download_layout(tmp_path, write_image, split, partition):
    # torchvision.datasets.DTD(root, download=True) extracts the archive into root/dtd/, giving root/dtd/dtd/.
    write_dtd(tmp_path / "dtd" / "dtd", write_image)
    ours = build_dataset("dtd", split, data_root=tmp_path, partition=partition)
    reference = DTD(tmp_path, split=split, partition=partition)
    assert len(ours) == len(reference)
    for i in range(len(ours)):
        # torchvision numbers only the classes of the one split file it reads.
        image, label = reference[i]
        assert ours.classes[ours.targets[i]] == reference.classes[label]
        assert torch.equal(ours.load(i), torch.from_numpy(np.array(image)).permute(2, 0, 1))
    if len(reference.classes) == 3:
        assert ours.classes == reference.classes


def test_registry_entry():
    info = get_dataset_info("dtd")
    assert info.splits == ("train", "val", "test") and info.num_classes == 47 and info.metric == "top1"
    assert (info.train_split, info.val_split, info.test_split, info.val_holdout) == ("train", "val", "test", None)
    assert info.split_sizes == {"train": 1880, "val": 1880, "test": 1880}
    assert info.defaults == {"partition": 1}
    assert (info.subdir, info.eval_size, info.eval_crop_fraction) == ("dtd", 224, 1.0)


def test_missing_label_file_names_the_layout(dtd_root):
    (dtd_root / "dtd" / "labels" / "val2.txt").unlink()
    build_dataset("dtd", "train", data_root=dtd_root)
    with pytest.raises(DatasetNotFoundError, match=r"labels/val2\.txt is missing") as info:
        build_dataset("dtd", "train", data_root=dtd_root, partition=2)
    assert "labels/{train,val,test}<N>.txt" in str(info.value) and "torchvision.datasets.DTD" in str(info.value)


def test_missing_labels_folder_names_the_layout(dtd_root):
    shutil.rmtree(dtd_root / "dtd" / "labels")
    with pytest.raises(DatasetNotFoundError, match=r"dtd/labels is missing. Expected layout: DATA_ROOT/dtd/"):
        build_dataset("dtd", "train", data_root=dtd_root)


def test_missing_images_are_counted(dtd_root):
    (dtd_root / "dtd" / "images" / "banded" / "banded_0005.jpg").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"1 of the 2 images listed in .*test1\.txt are missing"):
        build_dataset("dtd", "test", data_root=dtd_root)
