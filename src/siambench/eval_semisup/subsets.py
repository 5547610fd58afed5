"""Which training images keep their labels: SimCLR's published lists, or a seeded draw.

The standard semi-supervised protocol (PROTOCOLS C.2) fine-tunes on the
images listed in SimCLR's ``imagenet_subsets/1percent.txt`` (12,811 names)
and ``10percent.txt`` (128,116 names). Each line is a training-image file
name such as ``n04235860_14959.JPEG``; the class is the text before the
first ``_``, and the image is ``train/<wnid>/<name>`` of an ImageNet folder.
A list is recognised as the published one by the hash of its sorted names,
so the result record can say whether the numbers are comparable to papers.

Without a list (other datasets, or ImageNet without the files), a seeded
class-balanced draw stands in; its result is flagged as not standard.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SiambenchError

# sha256 of the sorted, de-duplicated names joined by "\n" (line order and
# line endings do not matter), for google-research/simclr imagenet_subsets/.
STANDARD_SUBSETS = {
    "6581e723dbf23ae41ebd1d66d0b3c1c0eb8865d5abfa906987f6563513f4b9b8": ("1percent.txt", 0.01, 12811),
    "220f3e2f6dba9d26ec247224cbbf4f3581cbf7fe341e08b191ee0855ad19af56": ("10percent.txt", 0.10, 128116),
}

_SHOWN = 5


class SubsetError(SiambenchError):
    """A subset list does not match the dataset it is applied to."""


@dataclass(frozen=True)
class LabelledSubset:
    """Indices into the training set whose labels the fine-tuning may use.

    ``standard`` is true only for SimCLR's published 1 % / 10 % lists;
    ``source`` says where the subset came from, for the result record.
    """

    indices: list[int]
    standard: bool
    source: str
    fraction: float
    per_class: dict[int, int] = field(default_factory=dict)

    def to_record(self) -> dict:
        counts = list(self.per_class.values())
        return {
            "standard": self.standard,
            "source": self.source,
            "fraction": self.fraction,
            "num_images": len(self.indices),
            "num_classes": len(counts),
            "per_class_min": min(counts) if counts else 0,
            "per_class_max": max(counts) if counts else 0,
        }


def _examples(items) -> str:
    items = list(items)
    shown = ", ".join(str(x) for x in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def read_subset_file(path: str | Path) -> list[str]:
    """The file names listed in a subset file, one per non-blank line, in file order."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SubsetError(f"cannot read the subset file {path}: {exc}") from None
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise SubsetError(f"the subset file {path} lists no images; expected one file name per line, "
                          f"such as n04235860_14959.JPEG")
    malformed = [n for n in names if "_" not in n or "/" in n or "\\" in n]
    if malformed:
        raise SubsetError(
            f"the subset file {path} has {len(malformed)} lines that are not ImageNet training file names "
            f"(<wnid>_<number>.JPEG, the class before the first '_', no folders): {_examples(malformed)}."
        )
    return names


def names_digest(names) -> str:
    """The hash that identifies a list regardless of line order: sha256 of its sorted unique names."""
    return hashlib.sha256("\n".join(sorted(set(names))).encode()).hexdigest()


def class_counts(indices, targets) -> dict[int, int]:
    counts: dict[int, int] = {}
    for i in indices:
        counts[int(targets[i])] = counts.get(int(targets[i]), 0) + 1
    return dict(sorted(counts.items()))


def subset_from_names(dataset, names: list[str], source: str = "subset file") -> list[int]:
    """Indices of ``dataset`` (an ImageNet-layout ``FileImageDataset``) holding the listed images.

    A name ``<wnid>_<n>.JPEG`` must be the file ``<wnid>/<wnid>_<n>.JPEG`` of
    the dataset's split folder, and ``<wnid>`` one of its classes. Duplicate
    names, wnids that are not classes and names with no file are each an
    error that lists examples, since any of them means the numbers would not
    be those of the published protocol.
    """
    if not hasattr(dataset, "samples"):
        raise SubsetError(
            f"{source} names image files, so it needs a dataset read from files in the ImageNet layout "
            f"(train/<wnid>/<name>); got a {type(dataset).__name__} without file paths. Use the "
            f"class-balanced sampler (no subset file) for in-memory datasets."
        )
    seen: set[str] = set()
    duplicates = []
    for name in names:
        if name in seen:
            duplicates.append(name)
        seen.add(name)
    classes = set(dataset.classes)
    unknown_wnids = sorted({n.split("_", 1)[0] for n in names} - classes)
    location = {}
    for index, (path, label) in enumerate(dataset.samples):
        path = Path(path)
        if 0 <= label < len(dataset.classes) and path.parent.name == dataset.classes[label]:
            location[(dataset.classes[label], path.name)] = index
    missing = [n for n in dict.fromkeys(names)
               if n.split("_", 1)[0] in classes and (n.split("_", 1)[0], n) not in location]
    problems = []
    if duplicates:
        problems.append(f"{len(duplicates)} names are listed more than once ({_examples(duplicates)})")
    if unknown_wnids:
        problems.append(f"{len(unknown_wnids)} classes are not classes of the dataset ({_examples(unknown_wnids)})")
    if missing:
        problems.append(f"{len(missing)} images are not in the dataset's <wnid>/ folders "
                        f"({_examples(missing)})")
    if problems:
        folder = Path(dataset.samples[0][0]).parent.parent if dataset.samples else "the dataset"
        raise SubsetError(
            f"{source} does not match the training set in {folder} ({len(dataset)} images, "
            f"{len(dataset.classes)} classes): " + "; ".join(problems) + ". Each line must name a training "
            "image <wnid>_<number>.JPEG found as train/<wnid>/<wnid>_<number>.JPEG, once; check that the "
            "dataset is the full ILSVRC-2012 train split and the file is SimCLR's imagenet_subsets list."
        )
    return [location[(n.split("_", 1)[0], n)] for n in names]


def balanced_counts(class_sizes: dict[int, int], fraction: float) -> dict[int, int]:
    """Images drawn per class: ``round(fraction × class size)`` (halves up), at least 1, at most all."""
    return {c: min(n, max(1, math.floor(fraction * n + 0.5))) for c, n in class_sizes.items()}


def balanced_subset(targets, fraction: float, seed: int = 0) -> list[int]:
    """A seeded class-balanced draw of ``fraction`` of each class (see :func:`balanced_counts`).

    Each class draws without replacement from its own generator, seeded by
    ``(seed, class)``, so a class's draw does not depend on the others.
    Returns sorted indices.
    """
    if not 0.0 < fraction <= 1.0:
        raise SubsetError(f"the labelled fraction must be in (0, 1], got {fraction}")
    targets = np.asarray(targets)
    chosen = []
    classes = sorted(int(c) for c in np.unique(targets) if c >= 0)
    sizes = {c: int((targets == c).sum()) for c in classes}
    for c, k in balanced_counts(sizes, fraction).items():
        members = np.flatnonzero(targets == c)
        rng = np.random.default_rng([int(seed), c])
        chosen.extend(int(i) for i in rng.choice(members, size=k, replace=False))
    return sorted(chosen)


def select_subset(dataset, fraction: float, subset_file: str | Path | None = None, seed: int = 0) -> LabelledSubset:
    """The labelled subset: the listed images if ``subset_file`` is given, else a balanced draw.

    A subset file is flagged ``standard`` only when it is one of SimCLR's
    published lists and its fraction is the requested one (a 10 % list run
    as "1 %" is an error, since the record would be mislabelled).
    """
    targets = dataset.targets
    if subset_file is None:
        indices = balanced_subset(targets, fraction, seed)
        source = (f"class-balanced draw, seed {seed}: round(fraction x class size) per class, at least 1 "
                  f"(not the standard SimCLR subset)")
        return LabelledSubset(indices, False, source, fraction, class_counts(indices, targets))
    names = read_subset_file(subset_file)
    known = STANDARD_SUBSETS.get(names_digest(names))
    if known and not math.isclose(known[1], fraction):
        raise SubsetError(
            f"{subset_file} is SimCLR's {known[0]} ({known[1]:.0%} of the labels), but the run asks for "
            f"{fraction:g}; pass the matching fraction or the other list."
        )
    indices = subset_from_names(dataset, names, source=f"the subset file {subset_file}")
    source = f"SimCLR {known[0]}" if known else f"subset file {Path(subset_file).name} (not a published SimCLR list)"
    return LabelledSubset(indices, known is not None, source, fraction, class_counts(indices, targets))
