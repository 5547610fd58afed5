"""Frozen features: one pass of an encoder over a dataset, cached on disk.

Every frozen-feature evaluation (kNN, logistic regression) reads features
from here. They are computed once per (checkpoint sha256, dataset, split,
preprocessing) and kept as a memory-mapped ``.npy`` (float16 by default,
half the disk and page cache of float32 at no cost to kNN or linear
accuracy), so a second evaluation of the same checkpoint costs nothing and
ImageNet-sized banks never need to fit in memory at once. Under ``torchrun``
each rank extracts its share and rank 0 writes the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as tdist
from tqdm.auto import tqdm

from ..data.sampling import ReadableView, collate_readable
from ..data.transforms import Normalize, center_crop
from ..engine.dist import barrier, process_group
from ..engine.io import atomic_write, save_json
from ..engine.paths import cache_dir


class CenterCropDataset(ReadableView):
    """Evaluation view of a dataset: centre crop + resize, uint8, the label and the dataset index."""

    def __init__(self, dataset, size: int, crop_fraction: float = 0.875, indices=None):
        super().__init__(dataset, indices)
        self.size, self.crop_fraction = size, crop_fraction

    def view(self, sample, key):
        image, label = sample
        return center_crop(image, self.size, self.crop_fraction), label, self.indices[key]


def _batches(encoder, dataset, size, crop_fraction, batch_size, device, num_workers, progress, desc, indices=None):
    """Yield ``(features float32 CPU, labels, dataset indices)`` per batch, in dataset order."""
    loader = torch.utils.data.DataLoader(
        CenterCropDataset(dataset, size, crop_fraction, indices),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_readable,
        pin_memory=torch.device(device).type == "cuda",
    )
    device = torch.device(device)
    cuda = device.type == "cuda"
    normalize = Normalize().to(device)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=cuda):
            for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
                if batch is None:
                    continue
                images, labels, idx = batch
                x = normalize(images.to(device, non_blocking=True))
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                yield encoder(x).float().cpu(), labels, idx
    finally:
        encoder.train(was_training)


def extract_features(encoder, dataset, size: int, crop_fraction: float = 0.875, batch_size: int = 256,
                     device="cpu", num_workers: int = 0, progress: bool = True, desc: str = "features"):
    """Pooled features ``(N, D)`` float32 and labels ``(N,)`` as tensors, unreadable images left out (no cache)."""
    feats, labels = [], []
    for f, y, _ in _batches(encoder, dataset, size, crop_fraction, batch_size, device, num_workers, progress, desc):
        feats.append(f)
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


@dataclass
class FeatureSet:
    """Cached features of one split: ``features`` is a read-only memmap ``(N, D)``."""

    features: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    path: Path
    skipped: int

    def __len__(self):
        return len(self.labels)


def cache_key(ckpt_sha256: str, dataset: str, split: str, size: int, crop_fraction: float, dtype: str, extra: str = "") -> str:
    spec = json.dumps([ckpt_sha256, dataset, split, size, crop_fraction, dtype, extra])
    return hashlib.sha256(spec.encode()).hexdigest()[:24]


def _save_npy(path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _load(base: Path) -> FeatureSet | None:
    meta_path = base.with_suffix(".json")
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    features = np.load(base.with_suffix(".features.npy"), mmap_mode="r")
    labels = np.load(base.with_suffix(".labels.npy"))
    indices = np.load(base.with_suffix(".indices.npy"))
    return FeatureSet(features, labels, indices, base, meta["skipped"])


def cached_features(encoder, ckpt_sha256: str, dataset_name: str, split: str, dataset, size: int,
                    crop_fraction: float = 0.875, device="cpu", batch_size: int = 256, num_workers: int = 0,
                    dtype=np.float16, progress: bool = True, cache: Path | None = None, extra_key: str = "") -> FeatureSet:
    """Features of ``dataset`` (the ``split`` of ``dataset_name``) under ``encoder``, computed at most once.

    The ``.json`` beside the arrays is written last, so a killed extraction
    leaves no file that looks complete. ``extra_key`` separates caches of
    encoders that differ in something the checkpoint hash does not capture.
    """
    dtype = np.dtype(dtype)
    base = Path(cache or cache_dir("features")) / cache_key(ckpt_sha256, dataset_name, split, size, crop_fraction, dtype.name, extra_key)
    found = _load(base)
    if found is not None:
        return found

    rank, world = process_group()
    shard = range(rank, len(dataset), world)
    feats, labels, indices = [], [], []
    desc = f"features {dataset_name}/{split}"
    for f, y, idx in _batches(encoder, dataset, size, crop_fraction, batch_size, device, num_workers,
                              progress and rank == 0, desc, indices=shard):
        feats.append(f.numpy().astype(dtype))
        labels.append(y.numpy())
        indices.append(idx.numpy())
    part = (np.concatenate(feats), np.concatenate(labels), np.concatenate(indices))
    if world > 1:
        gathered = [None] * world
        tdist.all_gather_object(gathered, part)
        part = tuple(np.concatenate([g[i] for g in gathered]) for i in range(3))
    features, labels, indices = part
    order = np.argsort(indices, kind="stable")
    if rank == 0:
        for suffix, array in ((".features.npy", features[order]), (".labels.npy", labels[order]), (".indices.npy", indices[order])):
            atomic_write(base.with_suffix(suffix), lambda tmp, a=array: _save_npy(tmp, a))
        save_json({"dataset": dataset_name, "split": split, "checkpoint_sha256": ckpt_sha256, "size": size,
                   "crop_fraction": crop_fraction, "dtype": dtype.name, "count": int(len(labels)),
                   "skipped": int(len(dataset) - len(labels))}, base.with_suffix(".json"))
    barrier()
    return _load(base)
