"""CIFAR-10 and CIFAR-100 from the official "python version" pickles.

The batch files are pickled dicts whose ``data`` is a numpy array, so they
are read with an unpickler that can rebuild numpy arrays and nothing else:
a file that names any other global (``os.system``, ``builtins.eval``...) is
refused before anything runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..engine.safe_pickle import RestrictedUnpickler
from ..errors import DatasetNotFoundError
from .base import ArrayImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset
from .splits import Holdout


def load_pickle(path: str | Path) -> dict:
    """Load a CIFAR pickle; dict keys come back as ``str`` whether pickled as bytes or str."""
    with open(path, "rb") as f:
        obj = RestrictedUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise pickle.UnpicklingError(f"expected a dict, found {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _names(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _read(info: DatasetInfo, root: Path, filename: str) -> dict:
    path = root / filename
    if not path.is_file():
        raise DatasetNotFoundError(
            f"dataset {info.name!r}: {path} is missing. Expected layout: {info.layout} To prepare it: {info.prepare}"
        )
    try:
        return load_pickle(path)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetNotFoundError(
            f"dataset {info.name!r}: {path} is not a readable CIFAR batch ({exc}). "
            f"Expected layout: {info.layout} To prepare it: {info.prepare}"
        ) from None


def _images(info: DatasetInfo, root: Path, filename: str, batch: dict, label_key: str):
    path = root / filename
    if "data" not in batch or label_key not in batch:
        raise DatasetNotFoundError(
            f"dataset {info.name!r}: {path} lacks the keys 'data' and {label_key!r}. Expected layout: {info.layout}"
        )
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DatasetNotFoundError(
            f"dataset {info.name!r}: {path} holds data {data.dtype} {data.shape} and {len(labels)} "
            f"labels; expected uint8 (N, 3072) and N labels. Expected layout: {info.layout}"
        )
    return data, labels


def _build(info: DatasetInfo, root: Path, files: list[str], meta: str, names_key: str, label_key: str):
    classes = _names(_read(info, root, meta)[names_key])
    parts = [_images(info, root, name, _read(info, root, name), label_key) for name in files]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return ArrayImageDataset(images, labels, classes)


def build_cifar10(split: str, root: Path) -> ArrayImageDataset:
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return _build(CIFAR10, root, files, "batches.meta", "label_names", "labels")


def build_cifar100(split: str, root: Path) -> ArrayImageDataset:
    return _build(CIFAR100, root, [split], "meta", "fine_label_names", "fine_labels")


CIFAR10 = register_dataset(
    DatasetInfo(
        name="cifar10",
        benchmark=BenchmarkColumn("CIFAR10", 2),
        download=TorchvisionDownload("CIFAR10", ({"train": True}, {"train": False})),
        build=build_cifar10,
        splits=("train", "test"),
        num_classes=10,
        readers=("cifar-python",),
        layout=(
            "DATA_ROOT/cifar-10-batches-py/ holding the python-pickle files data_batch_1 ... data_batch_5, "
            "test_batch and batches.meta."
        ),
        prepare=(
            "run torchvision.datasets.CIFAR10(DATA_ROOT, download=True), or download "
            "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
            "under the data root."
        ),
        subdir="cifar-10-batches-py",
        eval_size=32,
        eval_crop_fraction=1.0,
        test_split="test",
        val_holdout=Holdout(count=5000),
        split_sizes={"train": 50000, "test": 10000},
        hf_copy=HFCopy({"train": ("train",), "test": ("test",)}),
        description="CIFAR-10: 50k training and 10k test 32x32 images in 10 classes.",
    )
)

CIFAR100 = register_dataset(
    DatasetInfo(
        name="cifar100",
        benchmark=BenchmarkColumn("CIFAR100", 3),
        download=TorchvisionDownload("CIFAR100", ({"train": True}, {"train": False})),
        build=build_cifar100,
        splits=("train", "test"),
        num_classes=100,
        readers=("cifar-python",),
        layout=(
            "DATA_ROOT/cifar-100-python/ holding the python-pickle files train, test and meta "
            "(the fine labels are used)."
        ),
        prepare=(
            "run torchvision.datasets.CIFAR100(DATA_ROOT, download=True), or download "
            "cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
            "under the data root."
        ),
        subdir="cifar-100-python",
        eval_size=32,
        eval_crop_fraction=1.0,
        test_split="test",
        val_holdout=Holdout(count=5067),
        split_sizes={"train": 50000, "test": 10000},
        hf_copy=HFCopy({"train": ("train",), "test": ("test",)}, label="fine_label"),
        description="CIFAR-100: 50k training and 10k test 32x32 images in 100 fine classes.",
    )
)
