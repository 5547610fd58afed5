"""Food-101 from the lists in the official archive's ``meta/`` folder.

``meta/train.txt`` and ``meta/test.txt`` name one image per line as
``<class>/<id>`` (the file is ``images/<class>/<id>.jpg``). The class index
is the line order of ``meta/classes.txt``, which is alphabetical and so
agrees with torchvision's ``Food101``. The training images keep the label
noise the authors left in on purpose; only the test images were cleaned.
"""

from __future__ import annotations

from pathlib import Path

from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset
from .splits import Holdout


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FOOD101.error(f"{path} is missing.")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_food101(split: str, root: Path) -> FileImageDataset:
    classes = _lines(root / "meta" / "classes.txt")
    index = {name: i for i, name in enumerate(classes)}
    listing = root / "meta" / f"{split}.txt"
    samples = []
    for number, entry in enumerate(_lines(listing), 1):
        name = entry.split("/", 1)[0]
        if "/" not in entry or name not in index:
            raise FOOD101.error(
                f"entry {number} of {listing} is {entry!r}; expected <class>/<id> with a class named in "
                f"{root / 'meta' / 'classes.txt'}."
            )
        samples.append((root / "images" / f"{entry}.jpg", index[name]))
    return FOOD101.listed_files(samples, classes, listing)


FOOD101 = register_dataset(
    DatasetInfo(
        name="food101",
        benchmark=BenchmarkColumn("Food101", 1),
        download=TorchvisionDownload("Food101", ({"split": "train"},)),
        build=build_food101,
        splits=("train", "test"),
        num_classes=101,
        metric="top1",
        readers=("food101-meta",),
        layout=(
            "DATA_ROOT/food-101/ holding images/<class>/<id>.jpg and meta/classes.txt, meta/train.txt and "
            "meta/test.txt (one <class>/<id> per line)."
        ),
        prepare=(
            "run torchvision.datasets.Food101(DATA_ROOT, download=True), or download food-101.tar.gz from "
            "https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/ and extract it under the data root."
        ),
        subdir="food-101",
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_holdout=Holdout(count=7575),
        split_sizes={"train": 75750, "test": 25250},
        hf_copy=HFCopy({"train": ("train",), "test": ("validation", "test")}),
        description="Food-101: 101 dishes, 750 training and 250 test images each (official split).",
    )
)
