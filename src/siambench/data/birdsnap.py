"""Birdsnap v1.1 as downloaded by the authors' ``get_birdsnap.py``.

Birdsnap is distributed as lists of Flickr URLs, and some of the images no
longer download, so every copy lacks a different few. Labels therefore come
only from the lists: the class of an image is its ``species_id`` in
``images.txt`` (index = rank of the id in ``species.txt``), never its folder
or position on disk, and images that are listed but absent are skipped and
recorded in the dataset's ``missing`` list instead of shifting anything.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .base import FileImageDataset
from .registry import BenchmarkColumn, DatasetInfo, HFCopy, register_dataset
from .splits import Holdout

IMAGE_DIR = Path("download") / "images"


def read_table(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a tab-separated file whose first line names its columns."""
    if not path.is_file():
        raise BIRDSNAP.error(f"{path} is missing")
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        absent = [c for c in columns if c not in (reader.fieldnames or [])]
        if absent:
            raise BIRDSNAP.error(f"{path} has the header {reader.fieldnames}, without the column(s) {absent}")
        rows = [{c: (row[c] or "").strip() for c in columns} for row in reader]
    return [row for row in rows if row[columns[0]]]


def _species_id(path: Path, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise BIRDSNAP.error(f"{path} has the species id {value!r}, which is not an integer") from None


def read_species(root: Path) -> tuple[dict[int, int], list[str]]:
    """``(species id -> class index, class names)``, indices in ascending id order."""
    path = root / "species.txt"
    rows = sorted(read_table(path, ("id", "common")), key=lambda row: _species_id(path, row["id"]))
    index = {_species_id(path, row["id"]): i for i, row in enumerate(rows)}
    return index, [row["common"] for row in rows]


def read_test_paths(root: Path) -> set[str]:
    return {row["path"] for row in read_table(root / "test_images.txt", ("path",))}


def _present(directory: Path, cache: dict[Path, set[str]]) -> set[str]:
    # One directory listing per species instead of one stat per image.
    if directory not in cache:
        cache[directory] = set(os.listdir(directory)) if directory.is_dir() else set()
    return cache[directory]


def split_samples(root: Path, split: str) -> tuple[list[tuple[Path, int]], list[Path], list[str]]:
    """``(samples, missing, classes)`` of ``split`` in the order of ``images.txt``."""
    species, classes = read_species(root)
    test = read_test_paths(root)
    rows = read_table(root / "images.txt", ("path", "species_id"))
    unknown = test - {row["path"] for row in rows}
    if unknown:
        raise BIRDSNAP.error(f"test_images.txt lists {len(unknown)} paths that images.txt does not, e.g. {min(unknown)}")
    samples, missing, cache = [], [], {}
    for row in rows:
        if (row["path"] in test) != (split == "test"):
            continue
        species_id = _species_id(root / "images.txt", row["species_id"])
        if species_id not in species:
            raise BIRDSNAP.error(f"images.txt gives {row['path']} the species_id {species_id}, which species.txt lacks")
        path = root / IMAGE_DIR / row["path"]
        if path.name in _present(path.parent, cache):
            samples.append((path, species[species_id]))
        else:
            missing.append(path)
    return samples, missing, classes


class BirdsnapDataset(FileImageDataset):
    """The downloaded images of one split; ``missing`` lists those that are listed but not on disk."""

    def __init__(self, samples, classes, missing: list[Path]):
        super().__init__(samples, classes)
        self.missing = list(missing)


def build_birdsnap(split: str, root: Path) -> BirdsnapDataset:
    samples, missing, classes = split_samples(root, split)
    return BirdsnapDataset(samples, classes, missing)


BIRDSNAP = register_dataset(
    DatasetInfo(
        name="birdsnap",
        benchmark=BenchmarkColumn("Birdsnap", 4),
        build=build_birdsnap,
        splits=("train", "test"),
        num_classes=500,
        readers=("birdsnap",),
        layout=(
            "DATA_ROOT/birdsnap/ holding species.txt (tab-separated, header id, common, scientific, dir; "
            "500 rows), images.txt (tab-separated, header url, md5, path, species_id, bb_x1, ...; 49,829 rows), "
            "test_images.txt (header path, then one path a line, Acadian_Flycatcher/0001.jpg) and the images "
            "as download/images/<dir>/<file>.jpg, at the path images.txt gives."
        ),
        prepare=(
            "download birdsnap.tgz (Birdsnap v1.1) from http://thomasberg.org/datasets/birdsnap/1.1/birdsnap.tgz, "
            "extract it to DATA_ROOT/birdsnap/ and run 'python get_birdsnap.py' there: the authors' script "
            "fetches every image from its URL in images.txt into download/images/. Some URLs no longer work, "
            "so images that failed to download are expected: they are skipped and counted as missing, and "
            "rerunning the script retries only those."
        ),
        subdir="birdsnap",
        description=(
            "Birdsnap v1.1, 500 North American bird species: test is the 2,443 images of test_images.txt and "
            "train the other 47,386 rows of images.txt, the counts Kornblith et al. (2019) had available; "
            "a local copy has fewer where downloads failed. The validation split is 4,981 training images "
            "drawn uniformly (seed 0), the size of BYOL's Table 10; Kornblith et al. describe it as having "
            "the test split's per-class counts, which would give 2,443 images, so siambench follows the "
            "published size. Classes are indexed by species id - 1 (species.txt order)."
        ),
        eval_size=224,
        eval_crop_fraction=1.0,
        train_split="train",
        test_split="test",
        val_holdout=Holdout(count=4981),
        split_sizes={"train": 47386, "test": 2443},
        hf_copy=HFCopy(unmappable="no copy records the official test_images.txt split"),
    )
)
