"""CIFAR readers on pickles written the way the official Python 2 files are."""

import io
import os
import pickle
import struct

import numpy as np
import pytest

from siambench.data import build_dataset
from siambench.data.cifar import RestrictedUnpickler, load_pickle
from siambench.errors import DatasetNotFoundError


class Py2Pickler(pickle._Pickler):
    """Writes ``bytes`` and ``str`` as Python 2 strings (BINSTRING), as cPickle did for the official files."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _string(self, data: bytes):
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def save_bytes(self, obj):
        self._string(obj)
        self.memoize(obj)

    def save_str(self, obj):
        self._string(obj.encode("latin1"))
        self.memoize(obj)

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def write_py2_pickle(path, obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    # The official files were written by numpy 1.x, under its old module name.
    path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def make_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def to_rows(images):
    """The official encoding: 1024 red values (row-major), then 1024 green, then 1024 blue."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


@pytest.fixture
def cifar10_root(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_py2_pickle(root / "batches.meta", {b"label_names": names, b"num_cases_per_batch": 3, b"num_vis": 3072})
    batches = {}
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images = make_images(3, k)
        labels = [(k + j) % 10 for j in range(3)]
        batches[name] = (images, labels)
        write_py2_pickle(
            root / name,
            {
                b"batch_label": f"batch {k}".encode(),
                b"labels": labels,
                b"data": to_rows(images),
                b"filenames": [f"img_{k}_{j}.png".encode() for j in range(3)],
            },
        )
    return tmp_path, batches


def test_cifar10_pixels_labels_and_classes(cifar10_root):
    data_root, batches = cifar10_root
    train = build_dataset("cifar10", "train", data_root=data_root)
    test = build_dataset("cifar10", "test", data_root=data_root)

    assert len(train) == 15 and len(test) == 3
    assert train.classes[:3] == ["airplane", "automobile", "bird"] and len(train.classes) == 10
    expected = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert train.targets == [y for i in range(1, 6) for y in batches[f"data_batch_{i}"][1]]
    for i in (0, 7, 14):
        np.testing.assert_array_equal(train.load(i).permute(1, 2, 0).numpy(), expected[i])
    row = to_rows(batches["test_batch"][0])[1]
    image = test[1][0]
    assert image[0, 0, 0] == row[0] and image[1, 1, 1] == row[1024 + 33] and image[2, 31, 31] == row[3071]
    assert test.targets == batches["test_batch"][1]


def test_cifar100_uses_fine_labels(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    fine_names = [f"fine{i:02d}".encode() for i in range(100)]
    write_py2_pickle(root / "meta", {b"fine_label_names": fine_names, b"coarse_label_names": [b"c"] * 20})
    images = make_images(4, 0)
    write_py2_pickle(
        root / "test",
        {
            b"data": to_rows(images),
            b"fine_labels": [99, 3, 50, 0],
            b"coarse_labels": [1, 1, 1, 1],
            b"filenames": [b"a", b"b", b"c", b"d"],
            b"batch_label": b"testing batch 1 of 1",
        },
    )
    ds = build_dataset("cifar100", "test", data_root=tmp_path)
    assert ds.targets == [99, 3, 50, 0]
    assert ds.classes[99] == "fine99" and ds.num_classes == 100
    np.testing.assert_array_equal(ds[3][0].permute(1, 2, 0).numpy(), images[3])


def test_python3_pickles_also_load(tmp_path):
    path = tmp_path / "batch"
    rows = to_rows(make_images(2, 1))
    with open(path, "wb") as f:
        pickle.dump({"data": rows, "labels": np.array([4, 5])}, f, protocol=4)
    loaded = load_pickle(path)
    np.testing.assert_array_equal(loaded["data"], rows)


def test_missing_batch_is_named(cifar10_root):
    data_root, _ = cifar10_root
    (data_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3 is missing") as info:
        build_dataset("cifar10", "train", data_root=data_root)
    assert "torchvision.datasets.CIFAR10" in str(info.value)


def test_missing_root_names_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist") as info:
        build_dataset("cifar100", "train", data_root=tmp_path)
    assert "cifar-100-python" in str(info.value) and "meta" in str(info.value)


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_restricted_unpickler_runs_no_code(cifar10_root, tmp_path):
    data_root, _ = cifar10_root
    marker = tmp_path / "executed"
    payload = pickle.dumps({b"data": RunsACommand(marker), b"labels": [0]}, protocol=4)
    (data_root / "cifar-10-batches-py" / "test_batch").write_bytes(payload)

    with pytest.raises(DatasetNotFoundError, match=r"refused to load global (posix|os)\.system"):
        build_dataset("cifar10", "test", data_root=data_root)
    assert not marker.exists()

    for dangerous in (eval, np.load, io.FileIO):
        with pytest.raises(pickle.UnpicklingError, match="refused"):
            RestrictedUnpickler(io.BytesIO(pickle.dumps(dangerous))).load()
