"""Semi-supervised evaluation: fine-tune the whole network on 1 % or 10 % of the labels.

The protocol (PROTOCOLS C.2): a new linear head (weights N(0, 0.01), bias
0) on the pretrained encoder, everything trained with SGD (Nesterov where
the preset says), batch-norm in train mode, cross-entropy, random resized
crop + flip; test images are centre-cropped. BYOL sweeps LR × epochs and
picks on a local validation split; SimCLR uses one fixed setting.

Every sweep point starts from the pretrained weights (``model_factory`` is
called once per point and must return a new module), so no point inherits
another's fine-tuning. The validation split comes either from the images
outside the labelled subset (``val.source: rest``; the chosen point's
model is then the one tested) or from the labelled subset itself
(``val.source: labelled``; the chosen setting is then re-trained on the
whole subset before testing). All randomness (head init, sample order,
crops, flips, the validation split) comes from ``seed``, so a CPU run is
repeatable.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..configs import Config
from ..data.sampling import CropFlipDataset, EpochBatches, collate_images, derive_seed
from ..data.transforms import Normalize, ViewConfig, center_crop
from ..errors import ConfigError, CorruptImageError, SiambenchError, TrainingDivergedError
from .subsets import select_subset

VAL_SOURCES = ("rest", "labelled")


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


class CenterCropView(torch.utils.data.Dataset):
    """Test view of ``dataset[indices]``: centre crop + resize; an unreadable image gives ``None``."""

    def __init__(self, dataset, indices, size: int, crop_fraction: float):
        self.dataset, self.size, self.crop_fraction = dataset, size, crop_fraction
        self.indices = range(len(dataset)) if indices is None else list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        try:
            image, label = self.dataset[self.indices[i]]
        except CorruptImageError:
            return None
        return center_crop(image, self.size, self.crop_fraction), label


def cosine_lr(peak: float, step: int, total: int) -> float:
    """Cosine decay from ``peak`` to 0 over ``total`` steps, no warmup (SimCLR's fine-tuning)."""
    return peak * 0.5 * (1.0 + math.cos(math.pi * step / max(total, 1)))


def peak_lr(lr: float, batch_size: int, cfg: Config) -> float:
    """``lr × batch / lr_scale_batch`` when the preset scales LRs with the batch, else ``lr``."""
    scale = cfg.optim.get("lr_scale_batch")
    return lr * batch_size / scale if scale else lr


def finetune(classifier: Classifier, train_set, indices, lr: float, epochs: int, cfg: Config, seed: int,
             device="cpu", progress: bool = True, desc: str = "finetune") -> dict:
    """Train ``classifier`` in place on ``train_set[indices]``; returns what the run did.

    The batch is the preset's, capped at the number of images so that a tiny
    subset still takes steps. Raises :class:`TrainingDivergedError` on a
    non-finite loss.
    """
    batch_size = min(int(cfg.schedule.batch_size), len(indices))
    sampler = EpochBatches(indices, batch_size, epochs, seed, drop_last=True)
    view = ViewConfig(crop_size=int(cfg.data.crop_size), crop_scale=tuple(cfg.data.crop_scale), crop_mode="torchvision")
    loader = torch.utils.data.DataLoader(
        CropFlipDataset(train_set, view),
        batch_sampler=sampler,
        num_workers=int(cfg.data.num_workers),
        collate_fn=collate_images,
    )
    peak = peak_lr(lr, batch_size, cfg)
    o = cfg.optim
    optimizer = torch.optim.SGD(classifier.parameters(), lr=peak, momentum=o.momentum,
                                nesterov=bool(o.nesterov) and o.momentum > 0, weight_decay=o.weight_decay)
    schedule = cfg.schedule.get("lr_schedule", "cosine")
    if schedule not in ("cosine", "constant"):
        raise ConfigError(f"schedule.lr_schedule must be 'cosine' or 'constant', got {schedule!r}")
    normalize = Normalize().to(device)
    classifier.to(device).train()
    total = len(sampler)
    last_loss = float("nan")
    bar = tqdm(loader, total=total, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for step, batch in enumerate(bar):
        if batch is None:
            continue
        images, labels = batch
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(peak, step, total) if schedule == "cosine" else peak
        logits = classifier(normalize(images.to(device, non_blocking=True)))
        loss = F.cross_entropy(logits, labels.to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 10 == 0 or step == total - 1:
            last_loss = float(loss.detach())
            if not math.isfinite(last_loss):
                raise TrainingDivergedError(f"{desc}: the loss became {last_loss} at step {step} (lr {peak:g})")
            bar.set_postfix(loss=f"{last_loss:.3f}")
    return {"steps": total, "batch_size": batch_size, "peak_lr": peak, "final_loss": last_loss}


@torch.no_grad()
def evaluate(classifier: nn.Module, dataset, indices, cfg: Config, device="cpu", progress: bool = True,
             desc: str = "eval") -> dict:
    """Top-1 and top-k accuracy (%, k = min(5, classes)) on centre crops of ``dataset[indices]``."""
    loader = torch.utils.data.DataLoader(
        CenterCropView(dataset, indices, int(cfg.data.crop_size), float(cfg.data.eval_crop_fraction)),
        batch_size=int(cfg.data.get("eval_batch_size", 256)),
        num_workers=int(cfg.data.num_workers),
        collate_fn=collate_images,
    )
    normalize = Normalize().to(device)
    classifier.to(device).eval()
    correct1 = correct5 = count = 0
    k = None
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        if batch is None:
            continue
        images, labels = batch
        logits = classifier(normalize(images.to(device, non_blocking=True))).float()
        labels = labels.to(device)
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top == labels[:, None]
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(1).sum())
        count += len(labels)
    if count == 0:
        raise SiambenchError(f"{desc}: no readable images to evaluate")
    return {"top1": 100.0 * correct1 / count, "top5": 100.0 * correct5 / count, "top5_k": k, "images": count}


def select_best(points: list[dict]) -> int:
    """Index of the sweep point with the best validation top-1 (then top-5; earliest on a tie).

    Points that diverged (``val_top1`` None) are never chosen.
    """
    ranked = [(p["val_top1"], p["val_top5"], -i) for i, p in enumerate(points) if p.get("val_top1") is not None]
    if not ranked:
        raise TrainingDivergedError("every point of the sweep diverged; lower the learning rates")
    return -max(ranked)[2]


def sweep_grid(cfg: Config, fraction: float) -> list[tuple[float, int]]:
    """``(lr, epochs)`` pairs, epochs outer: ``sweep.epochs`` is a list, or a mapping ``{"1pct": [...]}``."""
    epochs = cfg.sweep.epochs
    if isinstance(epochs, dict):
        key = f"{fraction * 100:g}pct"
        if key not in epochs:
            raise ConfigError(
                f"sweep.epochs has no entry {key!r} for fraction {fraction:g}; it has {', '.join(epochs)}"
            )
        epochs = epochs[key]
    epochs = [epochs] if isinstance(epochs, int) else list(epochs)
    lrs = [cfg.sweep.lr] if isinstance(cfg.sweep.lr, (int, float)) else list(cfg.sweep.lr)
    if not epochs or not lrs:
        raise ConfigError("sweep.lr and sweep.epochs must each hold at least one value")
    return [(float(lr), int(ep)) for ep in epochs for lr in lrs]


def validation_split(train_set, labelled: list[int], cfg: Config, seed: int) -> tuple[list[int], list[int]]:
    """``(train indices, validation indices)`` for the sweep, drawn uniformly with ``seed``.

    ``val.size`` is a count, or a fraction (< 1) of the pool it is drawn from:
    the training images outside the labelled subset (``rest``) or the
    labelled subset itself (``labelled``).
    """
    source, size = cfg.val.source, cfg.val.size
    if source not in VAL_SOURCES:
        raise ConfigError(f"val.source must be one of {', '.join(VAL_SOURCES)}, got {source!r}")
    if source == "rest":
        chosen = set(labelled)
        pool = [i for i, y in enumerate(train_set.targets) if y >= 0 and i not in chosen]
    else:
        pool = sorted(labelled)
    n = round(size * len(pool)) if isinstance(size, float) and size < 1 else int(size)
    limit = len(pool) - (1 if source == "labelled" else 0)
    if not 1 <= n <= limit:
        raise ConfigError(
            f"val.size {size} gives {n} validation images, but the {source!r} pool has {len(pool)} images "
            f"(the sweep needs 1 to {limit}); lower val.size or use the other val.source"
        )
    rng = np.random.default_rng(derive_seed(seed, 3))
    val = sorted(int(i) for i in rng.choice(pool, size=n, replace=False))
    if source == "rest":
        return list(labelled), val
    held = set(val)
    return [i for i in labelled if i not in held], val


def run_semisup(model_factory, train_set, test_set, cfg, fraction: float, subset_file=None, device="cpu",
                seed: int = 0, progress: bool = True) -> dict:
    """Fine-tune on ``fraction`` of the labels of ``train_set``; test the chosen setting on ``test_set``.

    ``model_factory()`` returns a freshly loaded pretrained encoder (pooled
    features, attribute ``num_features``) and is called once per training
    run. Returns the result record: top-1/top-5 (%) on the test set, the
    chosen LR and epochs, the whole sweep with validation accuracies, and the
    subset's provenance (``standard_subset`` is false unless SimCLR's list
    was used).
    """
    cfg = cfg if isinstance(cfg, Config) else Config(cfg)
    start = time.time()
    subset = select_subset(train_set, fraction, subset_file, seed)
    num_classes = len(train_set.classes)
    grid = sweep_grid(cfg, fraction)
    seen_models: list[nn.Module] = []

    def train(indices, lr, epochs, desc):
        encoder = model_factory()
        if any(encoder is m for m in seen_models):
            raise SiambenchError("model_factory returned an encoder it had returned before; it must load a new "
                                 "copy of the pretrained weights each call, or the sweep points would share weights")
        seen_models.append(encoder)
        classifier = Classifier(encoder, num_classes, torch.Generator().manual_seed(derive_seed(seed, 4)))
        info = finetune(classifier, train_set, indices, lr, epochs, cfg, derive_seed(seed, 5), device, progress, desc)
        return classifier, info

    pct = f"{fraction * 100:g}%"
    record = {
        "task": "semisup",
        "protocol": cfg.get("protocol"),
        "fraction": fraction,
        "standard_subset": subset.standard,
        "subset": subset.to_record(),
        "seed": seed,
    }
    if len(grid) == 1:
        lr, epochs = grid[0]
        final, info = train(subset.indices, lr, epochs, f"semisup {pct} lr={lr:g} ep={epochs}")
        record["sweep"] = []
        record["validation"] = None
        chosen = {"lr": lr, "epochs": epochs, **info}
    else:
        train_idx, val_idx = validation_split(train_set, subset.indices, cfg, seed)
        points, best, final = [], None, None
        for lr, epochs in grid:
            desc = f"semisup {pct} lr={lr:g} ep={epochs}"
            try:
                model, info = train(train_idx, lr, epochs, desc)
            except TrainingDivergedError:
                points.append({"lr": lr, "epochs": epochs, "val_top1": None, "val_top5": None, "diverged": True})
                continue
            val = evaluate(model, train_set, val_idx, cfg, device, progress, desc=f"{desc} val")
            points.append({"lr": lr, "epochs": epochs, "val_top1": val["top1"], "val_top5": val["top5"],
                           "diverged": False, **info})
            if select_best(points) == len(points) - 1:
                best, final = points[-1], model
            else:
                del model
        if best is None:
            raise TrainingDivergedError(f"semisup {pct}: every point of the sweep diverged; lower the learning rates")
        retrain = cfg.val.source == "labelled"
        if retrain:
            final, info = train(subset.indices, best["lr"], best["epochs"],
                                f"semisup {pct} lr={best['lr']:g} ep={best['epochs']} (all labelled)")
        else:
            info = {k: best[k] for k in ("steps", "batch_size", "peak_lr", "final_loss")}
        record["sweep"] = points
        record["validation"] = {"source": cfg.val.source, "images": len(val_idx), "train_images": len(train_idx),
                                "retrained_on_all_labelled": retrain}
        chosen = {"lr": best["lr"], "epochs": best["epochs"], **info}
    test = evaluate(final, test_set, None, cfg, device, progress, desc=f"semisup {pct} test")
    record["chosen"] = chosen
    record["metrics"] = {"top1": test["top1"], "top5": test["top5"], "top5_k": test["top5_k"]}
    record["test_images"] = test["images"]
    record["wall_time_s"] = time.time() - start
    return record
