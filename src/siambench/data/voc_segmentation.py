"""Semantic segmentation data: PASCAL VOC2012 with SBD's ``train_aug``.

A segmentation dataset yields ``(image, mask)``: a ``(3, H, W)`` uint8 RGB
tensor and an ``(H, W)`` uint8 tensor of class indices, with
:data:`IGNORE_INDEX` (255) on pixels that are not scored (VOC's object
outlines and unlabelled regions).

``voc2012_seg`` reads the VOC devkit (``SegmentationClass`` palette PNGs,
whose pixel values *are* the class indices; the palette only colours them)
and, for ``train_aug``, the SBD annotations of the other VOC2011 images,
either as SBD's own ``cls/*.mat`` files or as the class-index PNGs that
mmsegmentation's ``voc_aug.py`` (and the common "SegmentationClassAug"
copies) put in ``SegmentationClassAug``. ``train_aug`` is (VOC train ∪ SBD train ∪ SBD
val) − VOC val, 10,582 images; an image VOC annotates keeps VOC's mask.
The embedded stand-in, ``shapes_seg``, is in :mod:`.shapes_seg`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import CorruptImageError, DatasetNotFoundError
from .base import decode_image
from .registry import DatasetInfo, register_dataset
from .splits import Holdout
from .voc import voc_root

IGNORE_INDEX = 255
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
VOC_SPLIT_SIZES = {"train_aug": 10582, "train": 1464, "val": 1449}
SBD_DIRS = ("SBD", "benchmark_RELEASE/dataset", "VOCdevkit/VOCaug/dataset")


class SegmentationDataset(torch.utils.data.Dataset):
    """Images with per-pixel class masks; subclasses implement :meth:`load_image` and :meth:`load_mask`."""

    classes: tuple[str, ...] = ()
    ignore_index = IGNORE_INDEX

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def load_image(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def load_mask(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def describe(self, index: int) -> str:
        return f"sample {index}"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.load_image(index), self.load_mask(index)
        if image.shape[-2:] != mask.shape:
            raise CorruptImageError(self.describe(index),
                                    f"mask is {tuple(mask.shape)} but the image is {tuple(image.shape[-2:])}")
        return image, mask


def read_png_mask(path: str | Path) -> torch.Tensor:
    """A class-index PNG: VOC's palette PNGs (mode ``P``) or grayscale ones (mode ``L``), values as stored.

    An RGB rendering of the masks would need its colours mapped back to
    classes; it is refused rather than misread.
    """
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise DatasetNotFoundError(
                    f"{path} is a {im.mode} image; a segmentation mask must be a palette (P) or grayscale (L) PNG "
                    "whose pixel values are the class indices, as VOC's SegmentationClass PNGs are"
                )
            array = np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(path, exc) from None
    return torch.from_numpy(array.copy())


def read_sbd_mask(path: str | Path) -> torch.Tensor:
    """``GTcls.Segmentation`` of an SBD ``cls/*.mat`` file (a MATLAB struct; loading runs no code)."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(path, variable_names=("GTcls",))
        segmentation = mat["GTcls"]["Segmentation"][0, 0]
    except (OSError, ValueError, KeyError, IndexError, TypeError, NotImplementedError, MatReadError) as exc:
        raise CorruptImageError(path, f"not an SBD class annotation with GTcls.Segmentation ({exc!r})") from None
    return torch.from_numpy(np.asarray(segmentation, dtype=np.uint8).copy())


class FileSegmentationDataset(SegmentationDataset):
    """``(image path, mask path)`` pairs; masks are PNGs or SBD ``.mat`` files."""

    def __init__(self, samples: list[tuple[Path, Path]], classes):
        self.samples = [(Path(image), Path(mask)) for image, mask in samples]
        self.classes = tuple(classes)
        self.targets = [-1] * len(self.samples)  # no image-level label, as ImageDataset marks it

    def __len__(self) -> int:
        return len(self.samples)

    def load_image(self, index: int) -> torch.Tensor:
        return decode_image(self.samples[index][0])

    def load_mask(self, index: int) -> torch.Tensor:
        path = self.samples[index][1]
        return read_sbd_mask(path) if path.suffix == ".mat" else read_png_mask(path)

    def describe(self, index: int) -> str:
        return str(self.samples[index][0])


# VOC2012 + SBD ----------------------------------------------------------------


def _missing(what: Path, detail: str = "") -> DatasetNotFoundError:
    info = VOC2012_SEG
    return DatasetNotFoundError(
        f"dataset 'voc2012_seg': {what} is missing{detail}. Expected layout: {info.layout} "
        f"To prepare it: {info.prepare}"
    )


def read_ids(path: Path) -> list[str]:
    """Image ids of a split file (VOC's ImageSets, SBD's train.txt / val.txt): one per line."""
    if not path.is_file():
        raise _missing(path)
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _voc_dir(root: Path) -> Path:
    voc = voc_root(root, 2012, VOC2012_SEG)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        if not (voc / sub).is_dir():
            raise _missing(voc / sub)
    return voc


def _sbd_dir(root: Path) -> Path | None:
    return next((root / d for d in SBD_DIRS if (root / d / "cls").is_dir()), None)


def _sbd_masks(root: Path, voc: Path) -> dict[str, Path]:
    """Image id → mask file of every SBD annotation found (class-index PNGs first, then ``.mat``)."""
    aug = voc / "SegmentationClassAug"
    if aug.is_dir():
        masks = {p.stem: p for p in aug.glob("*.png")}
        if masks:
            return masks
    sbd = _sbd_dir(root)
    if sbd is None:
        raise _missing(
            root / "benchmark_RELEASE" / "dataset",
            " (train_aug needs SBD's annotations: VOC2012/SegmentationClassAug/*.png or SBD's cls/*.mat)",
        )
    ids = read_ids(sbd / "train.txt") + read_ids(sbd / "val.txt")
    return {i: sbd / "cls" / f"{i}.mat" for i in ids}


def voc_samples(root: Path, split: str) -> list[tuple[Path, Path]]:
    """``(image, mask)`` paths of a ``voc2012_seg`` split, sorted by image id.

    ``train_aug`` starts from SBD's masks, drops VOC val, and takes VOC's own
    mask for every VOC train image.
    """
    voc = _voc_dir(root)
    lists = voc / "ImageSets" / "Segmentation"
    if split == "train_aug":
        held_out = set(read_ids(lists / "val.txt"))
        masks = {i: path for i, path in _sbd_masks(root, voc).items() if i not in held_out}
        voc_ids = read_ids(lists / "train.txt")
    else:
        masks, voc_ids = {}, read_ids(lists / f"{split}.txt")
    masks.update({i: voc / "SegmentationClass" / f"{i}.png" for i in voc_ids})
    return [(voc / "JPEGImages" / f"{i}.jpg", masks[i]) for i in sorted(masks)]


def build_voc2012_seg(split: str, root: Path) -> FileSegmentationDataset:
    return FileSegmentationDataset(voc_samples(root, split), VOC_CLASSES)


VOC2012_SEG = register_dataset(
    DatasetInfo(
        name="voc2012_seg",
        build=build_voc2012_seg,
        splits=("train_aug", "train", "val"),
        num_classes=len(VOC_CLASSES),
        metric="miou",
        readers=("voc-devkit", "sbd-mat", "segmentation-class-aug"),
        layout=(
            "DATA_ROOT/voc/VOCdevkit/VOC2012/ holding JPEGImages/<id>.jpg, SegmentationClass/<id>.png (palette "
            "PNGs, 255 = not scored) and ImageSets/Segmentation/{train,val}.txt; for train_aug also SBD's "
            "annotations, either as VOC2012/SegmentationClassAug/<id>.png (class-index PNGs) or as SBD's dataset "
            "folder (cls/<id>.mat, train.txt, val.txt) at DATA_ROOT/voc/benchmark_RELEASE/dataset/ (as benchmark.tgz "
            "extracts) or DATA_ROOT/voc/SBD/."
        ),
        prepare=(
            "extract VOCtrainval_11-May-2012.tar (http://host.robots.ox.ac.uk/pascal/VOC/voc2012/) and SBD's "
            "benchmark.tgz (https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/"
            "benchmark.tgz) into DATA_ROOT/voc/, or run torchvision.datasets.VOCSegmentation('DATA_ROOT/voc', "
            "year='2012', download=True) and torchvision.datasets.SBDataset('DATA_ROOT/voc/SBD', download=True); "
            "mmsegmentation's tools/dataset_converters/voc_aug.py output (SegmentationClassAug) works too."
        ),
        subdir="voc",
        description=(
            "PASCAL VOC2012 semantic segmentation, 20 classes + background; train_aug (VOC train + SBD, "
            "10,582 images), train (1,464), val (1,449)."
        ),
        eval_size=513,
        eval_crop_fraction=1.0,
        train_split="train_aug",
        test_split="val",
        val_holdout=Holdout(count=2119),
        split_sizes=VOC_SPLIT_SIZES,
    )
)
