"""Stanford Cars from the devkit's MATLAB annotation files, in torchvision's layout.

Each annotation file holds a 1 x N struct array ``annotations`` whose
records carry the image's ``fname`` and its 1-based ``class`` (and a
bounding box, unused: the transfer protocol classifies whole images). The
test labels were published after the devkit, in
``cars_test_annos_withlabels.mat``; the devkit's own ``cars_test_annos.mat``
has no ``class`` field. Class names come from ``devkit/cars_meta.mat``.
The files are read with ``scipy.io.loadmat``, which only parses data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, register_dataset
from .splits import Holdout

SPLIT_FILES = {
    "train": ("cars_train", "devkit/cars_train_annos.mat"),
    "test": ("cars_test", "cars_test_annos_withlabels.mat"),
}


def _read_mat(path: Path, key: str) -> np.ndarray:
    """Variable ``key`` of a MATLAB file, as a 1-d array even when it holds one element."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if not path.is_file():
        raise CARS.error(f"{path} is missing.")
    try:
        mat = loadmat(path, squeeze_me=True)
    except (MatReadError, ValueError, IndexError, NotImplementedError, OSError) as exc:
        raise CARS.error(f"{path} is not a readable MATLAB file ({exc}).") from None
    if key not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__"))
        raise CARS.error(f"{path} has no variable {key!r} (found: {found or 'none'}).")
    return np.atleast_1d(mat[key])


def _annotations(path: Path, num_classes: int) -> list[tuple[str, int]]:
    records = _read_mat(path, "annotations")
    fields = records.dtype.names or ()
    if "fname" not in fields or "class" not in fields:
        raise CARS.error(
            f"{path} has annotations with the fields {', '.join(fields) or 'none'}; the fields 'fname' and "
            "'class' are needed (for the test split, the labelled cars_test_annos_withlabels.mat)."
        )
    pairs = [(str(r["fname"]), int(r["class"]) - 1) for r in records]
    bad = [y + 1 for _, y in pairs if not 0 <= y < num_classes]
    if bad:
        raise CARS.error(f"{path} has {len(bad)} class numbers outside 1..{num_classes}, e.g. {bad[:3]}.")
    return pairs


def build_stanford_cars(split: str, root: Path) -> FileImageDataset:
    classes = [str(name) for name in _read_mat(root / "devkit" / "cars_meta.mat", "class_names")]
    folder, annotations = SPLIT_FILES[split]
    samples = [(root / folder / name, label) for name, label in _annotations(root / annotations, len(classes))]
    return CARS.listed_files(samples, classes, root / annotations)


CARS = register_dataset(
    DatasetInfo(
        name="stanford_cars",
        benchmark=BenchmarkColumn("Cars", 6),
        build=build_stanford_cars,
        splits=("train", "test"),
        num_classes=196,
        metric="top1",
        readers=("stanford-cars-mat",),
        layout=(
            "DATA_ROOT/stanford_cars/ holding cars_train/*.jpg, cars_test/*.jpg, devkit/cars_meta.mat, "
            "devkit/cars_train_annos.mat and cars_test_annos_withlabels.mat (torchvision's StanfordCars layout)."
        ),
        prepare=(
            "the original download (ai.stanford.edu/~jkrause/cars) is gone and "
            "torchvision.datasets.StanfordCars can no longer download it. Copies are usually taken from "
            "Kaggle (for example the 'stanford-cars-dataset' upload together with the labelled test "
            "annotations cars_test_annos_withlabels.mat); unpack the images, the devkit and that file into "
            "DATA_ROOT/stanford_cars/ exactly as in the layout above (flatten nested cars_train/cars_train/ "
            "folders and rename a downloaded 'cars_test_annos_withlabels (1).mat')."
        ),
        subdir="stanford_cars",
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_holdout=Holdout(count=1650),
        split_sizes={"train": 8144, "test": 8041},
        hf_copy=HFCopy({"train": ("train",), "test": ("test",)}),
        description="Stanford Cars: 196 car models (make, model, year), 8,144 training and 8,041 test images.",
    )
)
