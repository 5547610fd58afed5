"""``siambench data check`` and ``siambench data prepare``: is each dataset there, complete and unchanged?

``check`` builds every split of a dataset from the data root and compares
its image count with the published one. ``prepare`` downloads the dataset
with torchvision's downloader where one exists (nothing is ever downloaded
at evaluation time), or prints the manual steps where none does, then
verifies the layout and writes a manifest beside the data: every file of
every split with its class index and sha256. ``check`` then also reports
any split whose files or labels differ from the manifest, so the split an
evaluation uses is the one that was prepared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..engine.io import save_json
from ..errors import DatasetNotFoundError, SiambenchError
from .registry import build_dataset, dataset_dir, get_dataset_info, list_datasets, resolve_data_root

MANIFEST = "siambench_manifest.json"

# torchvision's downloaders, as (class name, the calls that fetch every split); each
# leaves the layout the registry expects under DATA_ROOT (VOC under DATA_ROOT/voc).
DOWNLOADERS = {
    "cifar10": ("CIFAR10", [{"train": True}, {"train": False}]),
    "cifar100": ("CIFAR100", [{"train": True}, {"train": False}]),
    "food101": ("Food101", [{"split": "train"}]),
    "fgvc_aircraft": ("FGVCAircraft", [{"split": "trainval"}]),
    "dtd": ("DTD", [{"split": "train"}]),
    "oxford_pets": ("OxfordIIITPet", [{"split": "trainval"}]),
    "flowers102": ("Flowers102", [{"split": "train"}]),
    "caltech101": ("Caltech101", [{}]),
    "voc2007": ("VOCDetection", [{"year": "2007", "image_set": "trainval"}, {"year": "2007", "image_set": "test"}]),
}
SUBFOLDER = {"voc2007": "voc"}


@dataclass
class SplitStatus:
    split: str
    found: int | None = None
    expected: int | None = None
    missing_files: int = 0
    differs_from_manifest: bool | None = None

    @property
    def ok(self) -> bool:
        counts = self.found is not None and (self.expected is None or self.found == self.expected)
        return counts and not self.differs_from_manifest


@dataclass
class DatasetStatus:
    name: str
    present: bool
    splits: list[SplitStatus] = field(default_factory=list)
    problem: str = ""

    def lines(self) -> list[str]:
        info = get_dataset_info(self.name)
        if not self.present:
            return [f"{self.name:14s} missing   {self.problem}"]
        out = [f"{self.name:14s} found"]
        for s in self.splits:
            count = f"{s.found:>7d}" if s.found is not None else "      ?"
            want = f" of {s.expected:,}" if s.expected is not None else ""
            flags = []
            if s.found is not None and s.expected is not None and s.found != s.expected:
                flags.append("count differs from the published one")
            if s.missing_files:
                flags.append(f"{s.missing_files} listed images not on disk")
            if s.differs_from_manifest:
                flags.append(f"differs from {MANIFEST}")
            out.append(f"  {s.split:9s}{count}{want}" + (f"  ({'; '.join(flags)})" if flags else ""))
        if any(not s.ok for s in self.splits):
            out.append(f"  to prepare it again: {info.prepare}")
        return out


def _targets(dataset) -> np.ndarray:
    return np.asarray(dataset.targets)


def _files(dataset, root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p, _ in getattr(dataset, "samples", [])]


def check(name: str, data_root=None) -> DatasetStatus:
    """Each split's image count against the published one, and against the manifest when there is one."""
    info = get_dataset_info(name)
    try:
        root = dataset_dir(info, resolve_data_root(data_root))
    except DatasetNotFoundError as err:
        return DatasetStatus(name, False, problem=str(err))
    manifest = _read_manifest(root)
    status = DatasetStatus(name, True)
    for split in info.splits:
        s = SplitStatus(split, expected=info.split_sizes.get(split))
        try:
            dataset = build_dataset(name, split, data_root=data_root)
        except SiambenchError as err:
            return DatasetStatus(name, False, problem=str(err))
        s.found = len(dataset)
        s.missing_files = len(getattr(dataset, "missing", []))
        if manifest and split in manifest["splits"]:
            recorded = manifest["splits"][split]
            s.differs_from_manifest = (recorded["files"] != _files(dataset, root)
                                       or recorded["targets"] != _targets(dataset).tolist())
        status.splits.append(s)
    return status


def check_all(data_root=None, names=None) -> list[DatasetStatus]:
    names = names or [n for n in list_datasets() if get_dataset_info(n).split_sizes]
    return [check(n, data_root) for n in names]


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(name: str, data_root=None, progress: bool = True) -> Path:
    """Record every split's files, class indices and checksums in ``<dataset folder>/siambench_manifest.json``."""
    info = get_dataset_info(name)
    root = dataset_dir(info, resolve_data_root(data_root))
    manifest = {"dataset": name, "splits": {}, "sha256": {}}
    for split in info.splits:
        dataset = build_dataset(name, split, data_root=data_root)
        manifest["classes"] = list(dataset.classes)
        files = _files(dataset, root)
        manifest["splits"][split] = {"files": files, "targets": _targets(dataset).tolist(),
                                     "missing": [str(Path(p).relative_to(root)) for p in getattr(dataset, "missing", [])]}
        for f in tqdm(files, desc=f"{name} {split} checksums", disable=not progress, leave=False):
            if f not in manifest["sha256"]:
                manifest["sha256"][f] = sha256(root / f)
    return save_json(manifest, root / MANIFEST)


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def download(name: str, data_root: Path) -> None:
    """Fetch ``name`` with torchvision's downloader, or raise with the manual steps where there is none."""
    info = get_dataset_info(name)
    if name not in DOWNLOADERS:
        raise SiambenchError(f"dataset {name!r} has no automatic download. {info.prepare} "
                             f"Expected layout: {info.layout} Then run `siambench data prepare {name}` again.")
    import torchvision.datasets

    cls_name, calls = DOWNLOADERS[name]
    target = data_root / SUBFOLDER.get(name, "")
    target.mkdir(parents=True, exist_ok=True)
    for kwargs in calls:
        getattr(torchvision.datasets, cls_name)(str(target), download=True, **kwargs)


def prepare(name: str, data_root, progress: bool = True) -> Path:
    """Download where possible (unless already there), verify the layout, write the manifest."""
    info = get_dataset_info(name)
    if info.embedded:
        raise SiambenchError(f"dataset {name!r} is embedded: nothing to prepare.")
    root = resolve_data_root(data_root)
    if root is None:
        raise SiambenchError("data prepare needs --data-root DIR (or SIAMBENCH_DATA).")
    if not check(name, root).present:
        download(name, root)
    status = check(name, root)
    if not status.present:
        raise DatasetNotFoundError(status.problem)
    return write_manifest(name, root, progress)
