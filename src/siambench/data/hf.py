"""Hugging Face ``datasets`` directories, read offline.

Two layouts are accepted: a directory written by ``save_to_disk`` (a
``Dataset`` or a ``DatasetDict``), and an image folder in the form the
``imagefolder`` builder reads (class folders, optional split folders and
``metadata.csv``/``metadata.jsonl``). The builder runs with the hub switched
off, since a benchmark run must never depend on the network.

Images are read from the arrow table undecoded and decoded here, item by
item, so a file that does not decode raises :class:`CorruptImageError`
naming the row, which the trainer can skip and count.
"""

from __future__ import annotations

import io
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..engine.paths import cache_dir
from ..errors import CorruptImageError, DatasetNotFoundError, SiambenchError
from .base import IMAGE_EXTENSIONS, ImageDataset
from .registry import DatasetInfo, register_dataset

SPLIT_ALIASES = {"val": ("val", "validation", "valid"), "validation": ("validation", "val", "valid")}
OFFLINE_VARIABLES = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


@contextmanager
def hub_offline():
    """Switch the hub off for ``datasets`` (whose config is read at import) and for any child process."""
    import datasets.config

    saved_env = {k: os.environ.get(k) for k in OFFLINE_VARIABLES}
    saved_config = datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE
    os.environ.update(dict.fromkeys(OFFLINE_VARIABLES, "1"))
    datasets.config.HF_HUB_OFFLINE = datasets.config.HF_DATASETS_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, datasets.config.HF_DATASETS_OFFLINE = saved_config
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _has_images(root: Path) -> bool:
    for _, _, files in os.walk(root):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            return True
    return False


def load_hf_directory(root: Path):
    """A ``Dataset`` or ``DatasetDict`` from ``root``, whichever layout it has."""
    import datasets

    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        return datasets.load_from_disk(str(root))
    if _has_images(root):
        with hub_offline():
            return datasets.load_dataset("imagefolder", data_dir=str(root), cache_dir=str(cache_dir("hf")))
    raise DatasetNotFoundError(
        f"dataset 'hf': {root} is neither a save_to_disk directory (no dataset_dict.json or "
        f"state.json) nor an image folder (no image files). Expected layout: {HF.layout} "
        f"To prepare it: {HF.prepare}"
    )


def _pick_split(loaded, split: str, root: Path):
    import datasets

    if isinstance(loaded, datasets.Dataset):
        if split == "train":
            return loaded
        available = ["train"]
    else:
        for name in SPLIT_ALIASES.get(split, (split,)):
            if name in loaded:
                return loaded[name]
        available = list(loaded)
    raise DatasetNotFoundError(
        f"dataset 'hf': {root} has no split {split!r}; its splits are {', '.join(available)} "
        f"(a single saved Dataset is the split 'train')."
    )


def _pick_column(features, wanted: str | None, kind, what: str, root: Path) -> str | None:
    if wanted is None:
        return next((name for name, f in features.items() if isinstance(f, kind)), None)
    if wanted not in features:
        raise SiambenchError(f"dataset 'hf': {root} has no {what} column {wanted!r}; columns: {', '.join(features)}.")
    return wanted


class HFImageDataset(ImageDataset):
    """One split of a ``datasets.Dataset``; images decoded per item to ``(3, H, W)`` uint8 RGB."""

    def __init__(self, dataset, image_column: str, label_column: str | None, name: str):
        import datasets

        if not isinstance(dataset.features[image_column], datasets.Image):
            raise SiambenchError(
                f"dataset 'hf': column {image_column!r} of {name} is {dataset.features[image_column]}, "
                f"not an Image feature."
            )
        self.name = name
        self.images = (
            dataset.select_columns([image_column])
            .cast_column(image_column, datasets.Image(decode=False))
            .with_format(None)
        )
        self.image_column = image_column
        if label_column:
            self.classes, self.targets = _labels(dataset, label_column)
        else:
            self.classes, self.targets = [], [-1] * len(dataset)

    def describe(self, index: int) -> str:
        path = self.images[index][self.image_column].get("path")
        return f"row {index} of {self.name}" + (f" ({path})" if path else "")

    def load(self, index: int) -> torch.Tensor:
        value = self.images[index][self.image_column]
        data, path = value.get("bytes"), value.get("path")
        try:
            if data is None and path is None:
                raise ValueError("the row holds no image")
            with Image.open(io.BytesIO(data) if data is not None else path) as im:
                array = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise CorruptImageError(self.describe(index), exc) from None
        return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _labels(dataset, column: str) -> tuple[list[str], list[int]]:
    """Class names and indices: a ``ClassLabel``'s own, else integers as they are, else sorted values."""
    import datasets

    feature = dataset.features[column]
    values = dataset.select_columns([column]).with_format(None)[column][:]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names), [int(v) for v in values]
    if all(isinstance(v, (int, np.integer)) and v >= 0 for v in values):
        return [str(i) for i in range(max(values, default=-1) + 1)], [int(v) for v in values]
    names = sorted({str(v) for v in values})
    index = {n: i for i, n in enumerate(names)}
    return names, [index[str(v)] for v in values]


def _image_dataset(dataset, image_column: str | None, label_column: str | None, name: str, root: Path):
    """:class:`HFImageDataset` over ``dataset`` with its image and label columns found or checked."""
    import datasets

    features = dataset.features
    image = _pick_column(features, image_column, datasets.Image, "image", root)
    if image is None:
        raise DatasetNotFoundError(
            f"dataset 'hf': {root} has no Image column (columns: {', '.join(features)}); "
            f"pass image_column=NAME. Expected layout: {HF.layout}"
        )
    label = None if label_column == "" else _pick_column(features, label_column, datasets.ClassLabel, "label", root)
    return HFImageDataset(dataset, image, label, name)


def build_hf(split: str, root: Path, image_column: str | None = None, label_column: str | None = None):
    """Split ``split`` of the directory ``root``.

    ``image_column`` and ``label_column`` override detection (the first
    ``Image`` and the first ``ClassLabel`` feature); ``label_column=""``
    reads the split as unlabelled.
    """
    dataset = _pick_split(load_hf_directory(root), split, root)
    return _image_dataset(dataset, image_column, label_column, f"{root} [{split}]", root)


def build_copy(info: DatasetInfo, split: str, root: Path, image_column: str | None = None,
               label_column: str | None = None) -> HFImageDataset:
    """Split ``split`` of a registered dataset from a Hugging Face ``save_to_disk`` copy in ``root``.

    The copy's split is taken by ``info.hf_copy`` (:class:`~.registry.HFCopy`):
    among the names it allows, the split whose row count is the published
    size. A copy that cannot be mapped that way, or with another number of
    classes, is refused with what it holds. Held-out validation splits are
    then drawn from the copy's row order, which need not be the official
    files' order.
    """
    copy = info.hf_copy
    if copy is None or copy.unmappable:
        reason = copy.unmappable if copy else "siambench knows no mapping of its splits to the protocol's"
        raise info.error(f"{root} holds a Hugging Face datasets copy, which cannot stand in for the official "
                         f"files: {reason}.")
    loaded = load_hf_directory(root)
    sizes = {name: len(part) for name, part in loaded.items()}
    candidates, expected = copy.splits.get(split, ()), info.split_sizes.get(split)
    chosen = next((name for name in candidates if sizes.get(name) == expected), None)
    if chosen is None:
        found = ", ".join(f"{name} {n:,}" for name, n in sizes.items())
        raise info.error(
            f"the Hugging Face copy in {root} has the splits {found}; the protocol's {split!r} split is "
            f"{expected:,} images, which none of {', '.join(candidates) or 'its splits'} holds, so the copy "
            f"cannot be mapped to it"
        )
    built = _image_dataset(loaded[chosen], image_column, label_column or copy.label, f"{root} [{chosen}]", root)
    if len(built.classes) != info.num_classes:
        raise info.error(f"the Hugging Face copy in {root} has {len(built.classes)} classes in its label "
                         f"column, not {info.num_classes}")
    return built


HF = register_dataset(
    DatasetInfo(
        name="hf",
        build=build_hf,
        splits=("train", "validation", "val", "test"),
        num_classes=None,
        readers=("hf-disk", "hf-imagefolder"),
        layout=(
            "a Hugging Face datasets directory: either one written by Dataset.save_to_disk or "
            "DatasetDict.save_to_disk (with an Image column and optionally a ClassLabel column), or "
            "an image folder as the datasets 'imagefolder' builder reads it (root/<class>/<image>, "
            "optionally under train/, validation/, test/)."
        ),
        prepare=(
            "on a machine with network access, datasets.load_dataset(NAME).save_to_disk(DIR), copy "
            "DIR here and pass path=DIR."
        ),
        subdir="hf",
        description="Any image dataset in a Hugging Face datasets directory, read without the network.",
    )
)
