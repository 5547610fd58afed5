"""``siambench data check`` and ``siambench data prepare``: is each dataset there, complete and unchanged?

``check`` builds every split of a dataset from the data root and compares
its image count with the published one. ``prepare`` downloads the dataset
with torchvision's downloader where one exists (nothing is ever downloaded
at evaluation time), or prints the manual steps where none does, then
verifies the layout and writes a manifest beside the data: every file of
every split with its class index and sha256. ``check`` then also reports
any split whose files or labels differ from the manifest, so the split an
evaluation uses is the one that was prepared.

A dataset is *absent* (no folder), *complete* (every split's count is the
published one and matches the manifest), or *incomplete* (present but
wrong: a count differs, listed files are missing, it drifted from its
manifest, or it cannot be read). Only the last is a failure of ``data
check`` (exit status :data:`EXIT_INCOMPLETE`): a data root rarely holds
every dataset, and one line per absent dataset is enough.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..engine.io import save_json, sha256_file
from ..errors import DatasetNotFoundError, SiambenchError
from .registry import build_dataset, dataset_dir, get_dataset_info, list_datasets, resolve_data_root

MANIFEST = "siambench_manifest.json"
EXIT_INCOMPLETE = 3   # a dataset is present but incomplete, unreadable or drifted from its manifest
EXIT_NAMED_ABSENT = 1  # a dataset named with --datasets is absent


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
    folder: Path | None = None

    @property
    def state(self) -> str:
        """``absent``, ``complete`` or ``incomplete`` (present but wrong)."""
        if not self.present:
            return "absent"
        return "complete" if not self.problem and all(s.ok for s in self.splits) else "incomplete"

    def lines(self, verbose: bool = False) -> list[str]:
        info = get_dataset_info(self.name)
        if not self.present:
            if verbose or self.folder is None:
                return textwrap.wrap(f"{self.name:14s} absent    {self.problem}", 100, subsequent_indent=" " * 25)
            return [f"{self.name:14s} absent    nothing at {self.folder}/ (`siambench data prepare {self.name}`)"]
        if self.problem:
            return [f"{self.name:14s} incomplete  it cannot be read: {self.problem}"]
        out = [f"{self.name:14s} {self.state}"]
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
    # Detection splits (voc0712, coco2017) are image sets for detectron2: no per-image class.
    return np.asarray(getattr(dataset, "targets", []))


def _files(dataset, root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p, _ in getattr(dataset, "samples", [])]


def check(name: str, data_root=None) -> DatasetStatus:
    """Each split's image count against the published one, and against the manifest when there is one."""
    info = get_dataset_info(name)
    base = resolve_data_root(data_root)
    folder = None if base is None else base / (info.subdir or name)
    try:
        root = dataset_dir(info, base)
    except DatasetNotFoundError as err:
        return DatasetStatus(name, False, problem=str(err), folder=folder)
    manifest = _read_manifest(root)
    status = DatasetStatus(name, True, folder=root)
    for split in info.splits:
        s = SplitStatus(split, expected=info.split_sizes.get(split))
        try:
            dataset = build_dataset(name, split, data_root=data_root)
        except SiambenchError as err:
            return DatasetStatus(name, True, problem=str(err), folder=root)
        s.found = len(dataset)
        s.missing_files = len(getattr(dataset, "missing", []))
        if manifest and split in manifest["splits"]:
            recorded = manifest["splits"][split]
            s.differs_from_manifest = (recorded["files"] != _files(dataset, root)
                                       or recorded["targets"] != _targets(dataset).tolist())
        status.splits.append(s)
    return status


def check_all(data_root=None, names=None) -> list[DatasetStatus]:
    """The status of ``names`` (default: every on-disk dataset with published split sizes) under the data root."""
    if resolve_data_root(data_root) is None:
        raise SiambenchError("data check needs a data root: pass --data-root DIR or set SIAMBENCH_DATA=DIR.")
    if names is None:
        names = [n for n in list_datasets() if get_dataset_info(n).split_sizes and not get_dataset_info(n).embedded]
    return [check(n, data_root) for n in names]


def check_report(statuses: list[DatasetStatus], verbose: bool = False) -> str:
    """What ``data check`` prints: present datasets in full, absent ones one line each, then a count."""
    present = [s for s in statuses if s.present]
    absent = [s for s in statuses if not s.present]
    lines = [line for s in present + absent for line in s.lines(verbose)]
    counts = {state: sum(s.state == state for s in statuses) for state in ("complete", "incomplete", "absent")}
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    if absent and not verbose:
        summary += " (--verbose: the layout each absent dataset needs)"
    return "\n".join(lines + [summary])


def exit_status(statuses: list[DatasetStatus], named: bool = False) -> int:
    """0 when every present dataset is complete; :data:`EXIT_INCOMPLETE` when one is not;
    :data:`EXIT_NAMED_ABSENT` when a dataset asked for by name (``named``) is absent."""
    if any(s.state == "incomplete" for s in statuses):
        return EXIT_INCOMPLETE
    if named and any(s.state == "absent" for s in statuses):
        return EXIT_NAMED_ABSENT
    return 0


def write_manifest(name: str, data_root=None, progress: bool = True) -> Path:
    """Record every split's files, class indices and checksums in ``<dataset folder>/siambench_manifest.json``."""
    info = get_dataset_info(name)
    root = dataset_dir(info, resolve_data_root(data_root))
    manifest = {"dataset": name, "splits": {}, "sha256": {}}
    for split in info.splits:
        dataset = build_dataset(name, split, data_root=data_root)
        manifest["classes"] = list(getattr(dataset, "classes", []))
        files = _files(dataset, root)
        manifest["splits"][split] = {"files": files, "targets": _targets(dataset).tolist(),
                                     "missing": [str(Path(p).relative_to(root)) for p in getattr(dataset, "missing", [])]}
        for f in tqdm(files, desc=f"{name} {split} checksums", disable=not progress, leave=False):
            if f not in manifest["sha256"]:
                manifest["sha256"][f] = sha256_file(root / f)
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
    """Fetch ``name`` with the torchvision downloader its registry entry names, or raise with the manual steps."""
    info = get_dataset_info(name)
    if info.download is None:
        raise SiambenchError(f"dataset {name!r} has no automatic download. {info.prepare} "
                             f"Expected layout: {info.layout} Then run `siambench data prepare {name}` again.")
    import torchvision.datasets

    target = data_root / info.download.folder
    target.mkdir(parents=True, exist_ok=True)
    for kwargs in info.download.calls:
        getattr(torchvision.datasets, info.download.dataset_class)(str(target), download=True, **kwargs)


def prepare(name: str, data_root, progress: bool = True) -> Path:
    """Download where possible (unless already there), verify the layout, write the manifest."""
    info = get_dataset_info(name)
    if info.embedded:
        raise SiambenchError(f"dataset {name!r} is embedded: nothing to prepare.")
    root = resolve_data_root(data_root)
    if root is None:
        raise SiambenchError("data prepare needs --data-root DIR (or SIAMBENCH_DATA).")
    first = check(name, root)
    if not first.present or first.problem:
        download(name, root)
    status = check(name, root)
    if not status.present or status.problem:
        raise DatasetNotFoundError(status.problem)
    return write_manifest(name, root, progress)
