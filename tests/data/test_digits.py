"""The embedded digits dataset: fixed stratified splits and faithful 32x32 RGB images."""

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from siambench.data import build_dataset, get_dataset_info
from siambench.data.digits import _arrays

SIZES = {"train": 1077, "val": 360, "test": 360}


@pytest.fixture(scope="module")
def sklearn_digits():
    return load_digits()


def test_split_sizes_disjoint_stratified_and_needs_no_root(monkeypatch):
    monkeypatch.delenv("SIAMBENCH_DATA", raising=False)
    splits = {s: build_dataset("digits", s, data_root="/nonexistent") for s in SIZES}
    assert {s: len(d) for s, d in splits.items()} == SIZES

    _, _, index = _arrays()
    all_index = np.concatenate([index[s] for s in SIZES])
    assert len(np.unique(all_index)) == 1797
    for s in ("val", "test"):
        counts = np.bincount(splits[s].targets, minlength=10)
        assert counts.min() >= 35 and counts.max() <= 37
    assert get_dataset_info("digits").embedded


def test_images_and_labels_match_sklearn(sklearn_digits):
    ds = build_dataset("digits", "test")
    _, _, index = _arrays()
    assert ds.classes == [str(d) for d in range(10)]
    for k in (0, 123, 359):
        image, label = ds[k]
        source = sklearn_digits.images[index["test"][k]]
        assert label == sklearn_digits.target[index["test"][k]]
        assert image.shape == (3, 32, 32) and image.dtype.itemsize == 1
        assert (image[0] == image[1]).all() and (image[1] == image[2]).all()
        scaled = np.round(source * 255 / 16).astype(np.uint8)
        assert image[0, 0, 0] == scaled[0, 0] and image[0, 31, 31] == scaled[7, 7]
        reference = np.asarray(Image.fromarray(scaled).resize((32, 32), Image.BILINEAR)).astype(int)
        assert np.abs(reference - image[0].numpy().astype(int)).max() <= 1


def test_splits_are_deterministic():
    first = build_dataset("digits", "val")
    _arrays.cache_clear()
    second = build_dataset("digits", "val")
    assert first.targets == second.targets
    np.testing.assert_array_equal(first.images, second.images)
