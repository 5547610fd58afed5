"""FGVC-Aircraft 2013b at the ``variant`` level (100 classes), the transfer protocol's level.

``data/images_variant_<split>.txt`` has one ``<image id> <variant>`` per
line. Variant names contain spaces and slashes (``Cessna 525``, ``F/A-18``),
so a line splits at its first space only. The class index is the line order
of ``data/variants.txt``, as in torchvision's ``FGVCAircraft``.
"""

from __future__ import annotations

from pathlib import Path

from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise AIRCRAFT.error(f"{path} is missing.")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_fgvc_aircraft(split: str, root: Path) -> FileImageDataset:
    data = root / "data"
    classes = _lines(data / "variants.txt")
    index = {name: i for i, name in enumerate(classes)}
    listing = data / f"images_variant_{split}.txt"
    samples = []
    for number, line in enumerate(_lines(listing), 1):
        image_id, _, variant = line.partition(" ")
        if variant not in index:
            raise AIRCRAFT.error(
                f"line {number} of {listing} is {line!r}; expected '<image id> <variant>' with a variant "
                f"named in {data / 'variants.txt'}."
            )
        samples.append((data / "images" / f"{image_id}.jpg", index[variant]))
    return AIRCRAFT.listed_files(samples, classes, listing)


AIRCRAFT = register_dataset(
    DatasetInfo(
        name="fgvc_aircraft",
        benchmark=BenchmarkColumn("Aircraft", 7),
        download=TorchvisionDownload("FGVCAircraft", ({"split": "trainval"},)),
        build=build_fgvc_aircraft,
        splits=("train", "val", "trainval", "test"),
        num_classes=100,
        metric="mean_per_class",
        readers=("fgvc-aircraft-2013b",),
        layout=(
            "DATA_ROOT/fgvc-aircraft-2013b/data/ holding images/<id>.jpg, variants.txt and "
            "images_variant_{train,val,trainval,test}.txt (one '<id> <variant>' per line)."
        ),
        prepare=(
            "run torchvision.datasets.FGVCAircraft(DATA_ROOT, download=True), or download "
            "fgvc-aircraft-2013b.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ and "
            "extract it under the data root."
        ),
        subdir="fgvc-aircraft-2013b",
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_split="val",
        split_sizes={"train": 3334, "val": 3333, "trainval": 6667, "test": 3333},
        hf_copy=HFCopy({"train": ("train",), "val": ("validation", "val"), "trainval": ("trainval",),
                        "test": ("test",)}, label="variant"),
        description="FGVC-Aircraft 2013b: 100 aircraft variants, official train/val/test splits of 3,334/3,333/3,333.",
    )
)
