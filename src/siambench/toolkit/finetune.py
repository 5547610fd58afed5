"""Fine-tuning a whole network with a new linear head: the loop the fine-tuning evaluations share.

Semi-supervised fine-tuning (1 % / 10 % of ImageNet) and transfer
fine-tuning (the 12-dataset benchmark) train the same thing the same way:
the pretrained encoder plus a new linear head (weights N(0, 0.01), bias 0),
SGD (Nesterov where the preset says), batch-norm in train mode, random
resized crop + flip, test images centre-cropped. They differ in the length
of the run (epochs or steps), the weight decay, the batch-norm momentum and,
for multi-label VOC2007, the loss; those are arguments here.

The preset is read from the keys ``data.crop_size``, ``data.crop_scale``,
``data.eval_crop_fraction``, ``data.num_workers``, ``data.eval_batch_size``,
``schedule.batch_size``, ``schedule.lr_schedule`` and ``optim.momentum``,
``optim.nesterov``, ``optim.weight_decay``, ``optim.lr_scale_batch``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..configs import Config
from ..data.sampling import CropFlipDataset, EpochBatches, RankBatches, collate_readable
from ..data.transforms import Normalize, ViewConfig
from ..engine.dist import is_main_process, process_group
from ..engine.precision import at_least_float32
from ..engine.schedules import cosine_decay, scale_lr
from ..errors import ConfigError, SiambenchError
from .features import CenterCropDataset
from .loop import train_steps


class Classifier(nn.Module):
    """Encoder + a new linear head, initialised N(0, 0.01) with zero bias from ``generator``."""

    def __init__(self, encoder: nn.Module, num_classes: int, generator: torch.Generator):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.num_features, num_classes)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=generator) * 0.01)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.encoder(x), 1))


def peak_lr(lr: float, batch_size: int, cfg: Config) -> float:
    """``lr`` as applied at ``batch_size`` (:func:`scale_lr` with ``optim.lr_scale_batch``)."""
    return scale_lr(lr, batch_size, cfg.optim.get("lr_scale_batch"))


def set_bn_momentum(model: nn.Module, momentum: float) -> None:
    """Set every batch-norm layer's running-statistics momentum (PyTorch's: 1 − TF's decay)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.momentum = momentum


def multilabel_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sigmoid cross-entropy per class, positives where the VOC label is 1 (0 and -1 are negatives)."""
    return F.binary_cross_entropy_with_logits(logits, (targets == 1).to(logits.dtype))


def finetune(classifier: Classifier, train_set, indices, lr: float, epochs: int, cfg: Config, seed: int,
             device="cpu", progress: bool = True, desc: str = "finetune", *, steps: int | None = None,
             weight_decay: float | None = None, multilabel: bool = False) -> dict:
    """Train ``classifier`` in place on ``train_set[indices]``; returns what the run did.

    The run lasts ``epochs`` passes, or exactly ``steps`` optimiser steps
    when given (as many passes as that takes). ``weight_decay`` overrides
    the preset's. The batch is the preset's, capped at the number of images
    so that a tiny subset still takes steps. Under ``torchrun`` each process
    trains on its share of every global batch through DDP, split into
    ``schedule.accumulate`` micro-batches (default 1) with BN statistics of
    their own, so k processes train as one process with k micro-batches.
    Raises :class:`TrainingDivergedError` on a non-finite loss.
    """
    rank, world = process_group()
    accumulate = int(cfg.schedule.get("accumulate", 1))
    batch_size = min(int(cfg.schedule.batch_size), len(indices))
    if steps is not None:
        epochs = max(1, math.ceil(steps / (len(indices) // batch_size)))
    sampler = RankBatches(EpochBatches(indices, batch_size, epochs, seed, drop_last=True), rank, world, accumulate)
    total = len(sampler) if steps is None else min(steps, len(sampler))
    view = ViewConfig(crop_size=int(cfg.data.crop_size), crop_scale=tuple(cfg.data.crop_scale), crop_mode="torchvision")
    loader = torch.utils.data.DataLoader(
        CropFlipDataset(train_set, view),
        batch_sampler=sampler,
        num_workers=int(cfg.data.num_workers),
        collate_fn=collate_readable,
    )
    peak = peak_lr(lr, batch_size, cfg)
    o = cfg.optim
    wd = o.weight_decay if weight_decay is None else weight_decay
    optimizer = torch.optim.SGD(classifier.parameters(), lr=peak, momentum=o.momentum,
                                nesterov=bool(o.nesterov) and o.momentum > 0, weight_decay=wd)
    schedule = cfg.schedule.get("lr_schedule", "cosine")
    if schedule not in ("cosine", "constant"):
        raise ConfigError(f"schedule.lr_schedule must be 'cosine' or 'constant', got {schedule!r}")
    normalize = Normalize().to(device)

    def prepare(batch):
        images, labels = batch
        return normalize(images.to(device, non_blocking=True)), labels.to(device, non_blocking=True)

    checked = train_steps(
        classifier, loader, total, optimizer,
        lambda step: cosine_decay(peak, step, max(total, 1)) if schedule == "cosine" else peak, prepare,
        multilabel_loss if multilabel else F.cross_entropy, accumulate=accumulate, device=device, desc=desc,
        progress=progress,
    )
    last_loss = checked[-1] if checked else float("nan")
    return {"steps": total, "batch_size": batch_size, "peak_lr": peak, "weight_decay": wd, "final_loss": last_loss}


@torch.no_grad()
def predict(classifier: nn.Module, dataset, indices, cfg: Config, device="cpu", progress: bool = True,
            desc: str = "eval") -> tuple[np.ndarray, np.ndarray]:
    """``(outputs, targets)`` of ``classifier`` on centre crops of ``dataset[indices]``; unreadable images left out.

    Under ``torchrun`` every process predicts every image: the ranks hold
    the same network, so they reach the same choices without a gather.
    """
    loader = torch.utils.data.DataLoader(
        CenterCropDataset(dataset, int(cfg.data.crop_size), float(cfg.data.eval_crop_fraction), indices),
        batch_size=int(cfg.data.get("eval_batch_size", 256)),
        num_workers=int(cfg.data.num_workers),
        collate_fn=collate_readable,
    )
    normalize = Normalize().to(device)
    classifier.to(device).eval()
    outputs, targets = [], []
    for batch in tqdm(loader, desc=desc, disable=not progress or not is_main_process(), leave=False,
                      dynamic_ncols=True):
        if batch is None:
            continue
        images, labels, _ = batch
        outputs.append(at_least_float32(classifier(normalize(images.to(device, non_blocking=True)))).cpu().numpy())
        targets.append(labels.numpy())
    if not outputs:
        raise SiambenchError(f"{desc}: no readable images to evaluate")
    return np.concatenate(outputs), np.concatenate(targets)


def evaluate(classifier: nn.Module, dataset, indices, cfg: Config, device="cpu", progress: bool = True,
             desc: str = "eval") -> dict:
    """Top-1 and top-k accuracy (%, k = min(5, classes)) on centre crops of ``dataset[indices]``."""
    logits, labels = predict(classifier, dataset, indices, cfg, device, progress, desc)
    k = min(5, logits.shape[1])
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    hits = top == labels[:, None]
    return {"top1": 100.0 * hits[:, 0].mean(), "top5": 100.0 * hits.any(1).mean(), "top5_k": k,
            "images": len(labels)}
