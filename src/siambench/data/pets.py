"""The Oxford-IIIT Pet dataset: 37 cat and dog breeds, official ``trainval``/``test`` lists.

``annotations/<split>.txt`` has one ``<image> <class id> <species> <breed id>``
per line, with class ids 1..37 over both species. Breed names exist only in
the image names (``Abyssinian_100``, ``american_bulldog_12``), so they are
derived as torchvision's ``OxfordIIITPet`` does: the part before the last
underscore, each word title-cased (``American Bulldog``). They are read from
both split files, so both splits carry the same class list.
"""

from __future__ import annotations

from pathlib import Path

from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, TorchvisionDownload, register_dataset
from .splits import Holdout


def breed_name(image: str) -> str:
    """``american_pit_bull_terrier_7`` -> ``American Pit Bull Terrier``."""
    return " ".join(part.title() for part in image.rsplit("_", 1)[0].split("_"))


def _entries(path: Path) -> list[tuple[str, int]]:
    """``(image name, 0-based class)`` for each line of a split file."""
    if not path.is_file():
        raise PETS.error(f"{path} is missing.")
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 4 or not fields[1].isdigit() or int(fields[1]) < 1:
            raise PETS.error(
                f"line {number} of {path} is {line!r}; expected '<image> <class id 1..37> <species> <breed id>'."
            )
        entries.append((fields[0], int(fields[1]) - 1))
    return entries


def _classes(listed: list[tuple[str, int]]) -> list[str]:
    names: dict[int, set[str]] = {}
    for image, label in listed:
        names.setdefault(label, set()).add(breed_name(image))
    gaps = [c + 1 for c in range(max(names, default=-1) + 1) if c not in names]
    clashes = {c + 1: sorted(n) for c, n in names.items() if len(n) > 1}
    if gaps or clashes:
        raise PETS.error(
            f"the split files do not name one breed per class id (ids without images: {gaps}; "
            f"ids with several breeds: {clashes})."
        )
    return [next(iter(names[c])) for c in sorted(names)]


def build_oxford_pets(split: str, root: Path) -> FileImageDataset:
    annotations = root / "annotations"
    listed = {s: _entries(annotations / f"{s}.txt") for s in PETS.splits}
    classes = _classes(listed["trainval"] + listed["test"])
    samples = [(root / "images" / f"{image}.jpg", label) for image, label in listed[split]]
    return PETS.listed_files(samples, classes, annotations / f"{split}.txt")


PETS = register_dataset(
    DatasetInfo(
        name="oxford_pets",
        benchmark=BenchmarkColumn("Pets", 10),
        download=TorchvisionDownload("OxfordIIITPet", ({"split": "trainval"},)),
        build=build_oxford_pets,
        splits=("trainval", "test"),
        num_classes=37,
        metric="mean_per_class",
        readers=("oxford-pets-annotations",),
        layout=(
            "DATA_ROOT/oxford-iiit-pet/ holding images/<Breed>_<n>.jpg and annotations/trainval.txt and "
            "annotations/test.txt (one '<image> <class id> <species> <breed id>' per line)."
        ),
        prepare=(
            "run torchvision.datasets.OxfordIIITPet(DATA_ROOT, download=True), or download images.tar.gz "
            "and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ and extract both into "
            "DATA_ROOT/oxford-iiit-pet/."
        ),
        subdir="oxford-iiit-pet",
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="trainval",
        test_split="test",
        val_holdout=Holdout(per_class=20),
        split_sizes={"trainval": 3680, "test": 3669},
        hf_copy=HFCopy({"trainval": ("train", "trainval"), "test": ("test",)}),
        description="Oxford-IIIT Pet: 37 cat and dog breeds, 3,680 trainval and 3,669 test images.",
    )
)
