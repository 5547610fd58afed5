"""Frozen-feature extraction: one pass of an encoder over a dataset."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..data.transforms import Normalize, center_crop
from ..errors import CorruptImageError


class CenterCropDataset(torch.utils.data.Dataset):
    """Evaluation view of a dataset: centre crop + resize, uint8; corrupt images become ``None``."""

    def __init__(self, dataset, size: int, crop_fraction: float = 0.875):
        self.dataset, self.size, self.crop_fraction = dataset, size, crop_fraction

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        try:
            image, label = self.dataset[index]
        except CorruptImageError:
            return None
        return center_crop(image, self.size, self.crop_fraction), label


def collate_skipping_none(batch):
    kept = [b for b in batch if b is not None]
    if not kept:
        return None
    images, labels = zip(*kept)
    return torch.stack(images), torch.as_tensor(labels)


@torch.no_grad()
def extract_features(
    encoder: torch.nn.Module,
    dataset,
    size: int,
    crop_fraction: float = 0.875,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "features",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features ``(N, D)`` (float32, on the CPU) and labels ``(N,)``; unreadable images are left out."""
    loader = torch.utils.data.DataLoader(
        CenterCropDataset(dataset, size, crop_fraction),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_skipping_none,
    )
    normalize = Normalize().to(device)
    was_training = encoder.training
    encoder.eval()
    feats, labels = [], []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        if batch is None:
            continue
        images, y = batch
        feats.append(encoder(normalize(images.to(device, non_blocking=True))).float().cpu())
        labels.append(y)
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)
