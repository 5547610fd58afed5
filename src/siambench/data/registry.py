"""The dataset registry: one entry per dataset, one obvious place to add one.

An entry says what the dataset is (classes, splits, metric), which on-disk
layouts it accepts, how to prepare or download it, and where it sits in the
transfer benchmark's table. ``build_dataset`` turns a name, a split and a
data root into an :class:`~siambench.data.base.ImageDataset`. Data roots
come from ``--data-root`` or the ``SIAMBENCH_DATA`` environment variable;
embedded datasets need neither.

Every reader module of this package is imported before the registry is
read, so a dataset is added by one module that calls
:func:`register_dataset` (and its test, ``tests/data/test_<module>.py``);
no list names it elsewhere.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import DatasetNotFoundError, SiambenchError
from .base import FileImageDataset
from .splits import Holdout


@dataclass(frozen=True)
class HFCopy:
    """How a Hugging Face ``datasets`` copy (``save_to_disk``) of a dataset maps onto its protocol splits.

    ``splits`` names, for each of our splits, the copy's splits that may
    hold it; the first whose row count is the published size
    (``DatasetInfo.split_sizes``) is used, so a copy with other splits is
    refused rather than silently evaluated. ``label`` is the class column
    (default: the first ``ClassLabel``). ``unmappable``, when set, says why
    no copy can stand in for the official files.
    """

    splits: dict = field(default_factory=dict)
    label: str | None = None
    unmappable: str | None = None


@dataclass(frozen=True)
class BenchmarkColumn:
    """The dataset's column in the transfer benchmark's table (BYOL's Table 3): its title and its place.

    Columns are ordered by ``position``; published numbers are keyed by the
    dataset's name (:mod:`siambench.report.transfer`), never by position.
    """

    title: str
    position: int


@dataclass(frozen=True)
class TorchvisionDownload:
    """How ``siambench data prepare`` fetches the dataset: a ``torchvision.datasets`` class and its calls.

    Each call in ``calls`` (keyword arguments) fetches some splits; together
    they leave the layout the reader expects under ``<data root>/<folder>``.
    """

    dataset_class: str
    calls: tuple[dict, ...]
    folder: str = ""


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows of one dataset.

    ``build(split, root, **options)`` returns the dataset; ``root`` is the
    directory that holds this dataset (``None`` for embedded data).
    ``subdir`` is the folder under the data root where it is looked for.
    The ``eval_*`` fields and splits say how evaluations read it: the image
    side and centre-crop fraction of frozen-feature evaluation, the split
    trained on, the split reported, and an official validation split if
    the dataset has one; else ``val_holdout`` is the protocol's rule for
    holding one out of ``train_split`` (:mod:`siambench.data.splits`).
    ``metric`` names the score the dataset is reported with (``top1``,
    ``mean_per_class`` or ``map11`` for VOC2007's 11-point mAP).
    ``split_sizes`` holds the published image count of each split, which
    ``siambench data check`` compares against what is on disk. ``hf_copy``
    says how a Hugging Face copy of the dataset is read in place of the
    official layout (:class:`HFCopy`). ``benchmark`` places the dataset in
    the transfer benchmark (:class:`BenchmarkColumn`); ``download``, where
    torchvision has a downloader, is how ``data prepare`` fetches it.
    """

    name: str
    build: Callable
    splits: tuple[str, ...]
    num_classes: int | None
    metric: str = "top1"
    readers: tuple[str, ...] = ()
    layout: str = ""
    prepare: str = ""
    subdir: str | None = None
    embedded: bool = False
    description: str = ""
    defaults: dict = field(default_factory=dict)
    eval_size: int = 224
    eval_crop_fraction: float = 0.875
    train_split: str = "train"
    test_split: str = "val"
    val_split: str | None = None
    val_holdout: Holdout | None = None
    split_sizes: dict = field(default_factory=dict)
    hf_copy: HFCopy | None = None
    benchmark: BenchmarkColumn | None = None
    download: TorchvisionDownload | None = None

    def error(self, message: str) -> DatasetNotFoundError:
        """A layout problem of this dataset: what was found, then the expected layout and how to prepare it."""
        message = message.rstrip()
        if not message.endswith((".", "?", "!")):
            message += "."
        return DatasetNotFoundError(
            f"dataset {self.name!r}: {message} Expected layout: {self.layout} To prepare it: {self.prepare}"
        )


    def listed_files(self, samples, classes, listing) -> FileImageDataset:
        """The dataset of ``(path, label)`` samples named by ``listing``; an error if any file is not on disk."""
        missing = [str(p) for p, _ in samples if not Path(p).is_file()]
        if missing:
            raise self.error(f"{len(missing)} of the {len(samples)} images listed in {listing} are missing, "
                             f"e.g. {', '.join(missing[:3])}.")
        return FileImageDataset(samples, classes)


_REGISTRY: dict[str, DatasetInfo] = {}


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    if info.name in _REGISTRY:
        raise ValueError(f"dataset {info.name!r} is registered twice")
    _REGISTRY[info.name] = info
    return info


def list_datasets() -> list[str]:
    _load_builtin_entries()
    return sorted(_REGISTRY)


def benchmark_datasets() -> list[DatasetInfo]:
    """The transfer benchmark's datasets, in the order of its table's columns."""
    _load_builtin_entries()
    return sorted((info for info in _REGISTRY.values() if info.benchmark), key=lambda info: info.benchmark.position)


def get_dataset_info(name: str) -> DatasetInfo:
    _load_builtin_entries()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise SiambenchError(
            f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[name]


def resolve_data_root(data_root: str | os.PathLike | None) -> Path | None:
    """``--data-root`` if given, else ``$SIAMBENCH_DATA``, else ``None``."""
    if data_root:
        return Path(data_root).expanduser()
    env = os.environ.get("SIAMBENCH_DATA")
    return Path(env).expanduser() if env else None


def dataset_dir(info: DatasetInfo, data_root: Path | None, path: str | os.PathLike | None = None) -> Path:
    """Where ``info``'s files must be: an explicit path, else ``<data root>/<subdir>``."""
    if path:
        root = Path(path).expanduser()
    elif data_root is None:
        raise DatasetNotFoundError(
            f"dataset {info.name!r} needs a data root, and none was given. Pass "
            f"--data-root DIR or set SIAMBENCH_DATA=DIR, with the dataset under "
            f"DIR/{info.subdir or info.name}/ in this layout: {info.layout} "
            f"To prepare it: {info.prepare}"
        )
    else:
        root = data_root / (info.subdir or info.name)
    if not root.is_dir() or not any(root.iterdir()):
        state = "is empty" if root.is_dir() else "does not exist"
        raise DatasetNotFoundError(
            f"dataset {info.name!r} was expected in {root}, which {state}. "
            f"Expected layout: {info.layout} To prepare it: {info.prepare}"
        )
    return root


def build_dataset(name: str, split: str, data_root=None, path=None, **options):
    """Build split ``split`` of dataset ``name``.

    ``path`` points straight at the dataset's folder (for image folders and
    Hugging Face directories that live anywhere); otherwise the folder is
    ``<data root>/<subdir>``. A folder written by ``DatasetDict.save_to_disk``
    is read as a Hugging Face copy of the dataset (:func:`.hf.build_copy`).
    """
    info = get_dataset_info(name)
    if split not in info.splits:
        raise SiambenchError(
            f"dataset {name!r} has no split {split!r}; its splits are {', '.join(info.splits)}."
        )
    root = None if info.embedded else dataset_dir(info, resolve_data_root(data_root), path)
    if root is not None and name != "hf" and (root / "dataset_dict.json").is_file():
        from .hf import build_copy

        return build_copy(info, split, root, **options)
    return info.build(split, root, **{**info.defaults, **options})


# The package's modules that hold no dataset; skipped only to keep `data list` from importing torchvision.
_SHARED_MODULES = frozenset({"base", "prepare", "registry", "sampling", "splits", "transforms"})


@functools.cache
def _load_builtin_entries() -> None:
    """Import every reader module of this package once: importing one registers its entries."""
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _SHARED_MODULES:
            importlib.import_module(f"{__package__}.{module.name}")
