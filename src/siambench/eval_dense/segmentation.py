"""``siambench eval segmentation``: semantic segmentation with an FCN on the dilated encoder.

The protocol of MoCo (App. A.5) and BYOL (App. D.4), PROTOCOLS C.6: the
ResNet with conv5 dilated (output stride 16), two 3×3 convolutions of 256
channels with dilation 6, each followed by BN and ReLU, and a 1×1
classifier whose logits are upsampled bilinearly to the input. The whole
network trains with per-pixel cross-entropy (255 not scored), SGD momentum
0.9, batch 16, weight decay 1e-4 on every parameter, random scale in
[0.5, 2.0], a 513 crop (padded where the scaled image is smaller: the image
with the mean colour, the mask with 255) and flips, for 30k iterations with
the LR ×0.1 at 70 % and 90 % of them. The score is the mIoU on VOC2012 val.
MoCo uses LR 0.003 and infers on whole images; BYOL sweeps five LRs on a
held-out split of train_aug and infers on the central 513 crop. One run is
one seed; the record of each seed is written on its own.

Every sweep point starts from the pretrained weights, and all randomness
(head init, sample order, scales, crops, flips) comes from the seed.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ..configs import Config
from ..data.sampling import EpochBatches, RankBatches, ReadableView, collate_readable, derive_seed
from ..data.splits import holdout_indices
from ..data.transforms import IMAGENET_MEAN, Normalize
from ..data.voc_segmentation import IGNORE_INDEX
from ..engine.dist import all_reduce_sum, process_group
from ..engine.schedules import step_decay
from ..errors import ConfigError, SiambenchError, TrainingDivergedError
from ..evaluate import EvalContext, EvalResult, load_protocol, register_stage
from ..models import ResNet
from ..toolkit.loop import train_steps
from ..toolkit.selection import best_point, sweep_values
from .backbones import feature_extractor, input_normalizer

PAD_COLOR = tuple(round(255 * m) for m in IMAGENET_MEAN)


class FCN(nn.Module):
    """Encoder (``forward_features``) → two 3×3 conv-BN-ReLU → 1×1 classifier → bilinear upsampling.

    The encoder sits under ``backbone.`` with its torchvision key names.
    The head's convolutions are drawn from ``generator`` (He normal, the
    classifier N(0, 0.01) with zero bias), so a seed fixes them.
    """

    def __init__(self, backbone: ResNet, num_classes: int, channels: int = 256, dilation: int = 6,
                 normalize: nn.Module | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.normalize = normalize or Normalize()
        self.backbone = backbone
        layers, width = [], backbone.num_features
        for _ in range(2):
            layers += [nn.Conv2d(width, channels, 3, padding=dilation, dilation=dilation, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            width = channels
        self.head = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(channels, num_classes, 1)
        with torch.no_grad():
            for m in self.head:
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            nn.init.normal_(self.classifier.weight, std=0.01, generator=generator)
            nn.init.zeros_(self.classifier.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] images ``(N, 3, H, W)`` → logits ``(N, classes, H, W)``."""
        features = self.backbone.forward_features(self.normalize(images))
        logits = self.classifier(self.head(features))
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


def build_fcn(backbone, num_classes: int, cfg: Config, seed: int) -> FCN:
    """The FCN of the preset on a fresh copy of the canonical ``backbone``."""
    m = cfg.model
    return FCN(feature_extractor(backbone, int(m.output_stride)), num_classes, int(m.head_channels),
               int(m.head_dilation), input_normalizer(backbone), torch.Generator().manual_seed(derive_seed(seed, 7)))


# Views ---------------------------------------------------------------------------


def pad_to(image: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad bottom and right to at least ``size``: the image with the mean colour, the mask with 255."""
    h, w = mask.shape
    height, width = max(h, size), max(w, size)
    if (height, width) == (h, w):
        return image, mask
    padded = torch.tensor(PAD_COLOR, dtype=image.dtype).view(3, 1, 1).repeat(1, height, width)
    padded[:, :h, :w] = image
    padded_mask = torch.full((height, width), IGNORE_INDEX, dtype=mask.dtype)
    padded_mask[:h, :w] = mask
    return padded, padded_mask


def scale_crop_flip(image: torch.Tensor, mask: torch.Tensor, rng: random.Random, crop: int,
                    scale_range: tuple[float, float], flip_p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """The training view: random scale (bilinear image, nearest mask), pad, random ``crop``², flip."""
    scale = rng.uniform(*scale_range)
    h, w = mask.shape
    size = [max(1, round(h * scale)), max(1, round(w * scale))]
    if size != [h, w]:
        image = TF.resize(image, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        mask = TF.resize(mask[None], size, interpolation=TF.InterpolationMode.NEAREST_EXACT)[0]
    image, mask = pad_to(image, mask, crop)
    top, left = rng.randint(0, mask.shape[0] - crop), rng.randint(0, mask.shape[1] - crop)
    image, mask = image[:, top:top + crop, left:left + crop], mask[top:top + crop, left:left + crop]
    if rng.random() < flip_p:
        image, mask = image.flip(-1), mask.flip(-1)
    return image, mask


def center_view(image: torch.Tensor, mask: torch.Tensor, crop: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The test view: the central ``crop``² (padded first where smaller), or the whole image for ``None``."""
    if crop is None:
        return image, mask
    image, mask = pad_to(image, mask, crop)
    return TF.center_crop(image, [crop, crop]), TF.center_crop(mask[None], [crop, crop])[0]


class TrainViews(ReadableView):
    """``dataset[(index, sample_seed)]`` → :func:`scale_crop_flip`'s view drawn from ``sample_seed``."""

    def __init__(self, dataset, crop: int, scale_range, flip_p: float):
        super().__init__(dataset)
        self.crop, self.scale_range, self.flip_p = crop, tuple(scale_range), flip_p

    def view(self, sample, key):
        image, mask = sample
        return scale_crop_flip(image, mask, random.Random(key[1]), self.crop, self.scale_range, self.flip_p)


class EvalViews(ReadableView):
    """:func:`center_view` of ``dataset[indices]``."""

    def __init__(self, dataset, indices, crop: int | None):
        super().__init__(dataset, indices)
        self.crop = crop

    def view(self, sample, key):
        return center_view(*sample, self.crop)


# Metric ---------------------------------------------------------------------------


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """``(classes, classes)`` pixel counts, rows the true class, columns the predicted; ``ignore_index`` skipped."""
    valid = target != ignore_index
    target, pred = target[valid].long(), pred[valid].long()
    if target.numel() and int(target.max()) >= num_classes:
        raise SiambenchError(f"a mask holds class {int(target.max())}, but the dataset has {num_classes} classes "
                             f"(0 to {num_classes - 1}, and {ignore_index} for pixels not scored)")
    return torch.bincount(target * num_classes + pred, minlength=num_classes**2).view(num_classes, num_classes)


def segmentation_scores(confusion) -> dict:
    """mIoU, pixel accuracy and mean class accuracy (%), and the IoU of each class.

    IoU = TP / (TP + FP + FN). A class absent from both the labels and the
    predictions has no IoU (NaN) and is left out of the mean, as
    mmsegmentation does; a class only predicted scores 0.
    """
    c = np.asarray(confusion, dtype=np.float64)
    tp, labelled, predicted = np.diag(c), c.sum(1), c.sum(0)
    union = labelled + predicted - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        accuracy = np.where(labelled > 0, tp / labelled, np.nan)
    if not np.isfinite(iou).any():
        raise SiambenchError("no pixel was scored: every label is 255 (not scored)")
    return {
        "miou": 100.0 * float(np.nanmean(iou)),
        "pixel_acc": 100.0 * float(tp.sum() / c.sum()),
        "mean_acc": 100.0 * float(np.nanmean(accuracy)),
        "iou": (100.0 * iou).tolist(),
    }


# Training and evaluation ------------------------------------------------------------


def step_lr(base: float, step: int, total: int, milestones, gamma: float) -> float:
    """``base × gamma^k``, k the number of milestones (fractions of ``total``) already reached."""
    return step_decay(base, step, [round(m * total) for m in milestones], gamma)


def pixel_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the labelled pixels (``IGNORE_INDEX`` left out; 0 when none is labelled)."""
    loss = F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX, reduction="sum")
    return loss / (masks != IGNORE_INDEX).sum().clamp(min=1)


def train(model: FCN, dataset, indices, lr: float, cfg: Config, seed: int, device="cpu", progress: bool = True,
          desc: str = "segmentation") -> dict:
    """Train ``model`` in place for ``schedule.iterations`` steps on views of ``dataset[indices]``.

    Batches come from seeded epochs over ``indices`` (the batch capped at
    the number of images). Under ``torchrun`` each process trains on its
    share of every global batch through DDP. ``schedule.accumulate`` k
    splits each process's share into k micro-batches, each normalised by its
    own BN statistics; the loss is the mean over all micro-batches of their
    mean pixel loss, so k micro-batches in one process train exactly as k
    processes would. Raises :class:`TrainingDivergedError` on a non-finite loss.
    """
    s, d, o = cfg.schedule, cfg.data, cfg.optim
    rank, world = process_group()
    iterations, accumulate = int(s.iterations), int(s.get("accumulate", 1))
    batch_size = min(int(s.batch_size), len(indices))
    epochs = math.ceil(iterations / (len(indices) // batch_size))
    sampler = RankBatches(EpochBatches(indices, batch_size, epochs, seed, drop_last=True), rank, world, accumulate)
    loader = torch.utils.data.DataLoader(
        TrainViews(dataset, int(d.crop_size), d.scale_range, float(d.flip_p)),
        batch_sampler=sampler, num_workers=int(d.num_workers), collate_fn=collate_readable,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=o.momentum, weight_decay=o.weight_decay)

    def prepare(batch):
        images, masks = (t.to(device, non_blocking=True) for t in batch)
        return images, masks.long()

    checked = train_steps(model, loader, iterations, optimizer,
                          lambda step: step_lr(lr, step, iterations, s.lr_milestones, s.lr_gamma), prepare, pixel_loss,
                          accumulate=accumulate, device=device, desc=desc, progress=progress)
    return {"iterations": iterations, "batch_size": batch_size, "lr": lr,
            "final_loss": checked[-1] if checked else float("nan")}


@torch.no_grad()
def evaluate(model: nn.Module, dataset, indices, cfg: Config, device="cpu", progress: bool = True,
             desc: str = "eval") -> dict:
    """Scores (:func:`segmentation_scores`) of ``model`` on the test views of ``dataset[indices]``.

    Under ``torchrun`` each process scores every world-size-th image and the
    confusion matrices are summed.
    """
    crop = cfg.data.eval_crop_size
    rank, world = process_group()
    indices = list(range(len(dataset)) if indices is None else indices)[rank::world]
    loader = torch.utils.data.DataLoader(
        EvalViews(dataset, indices, None if crop is None else int(crop)),
        batch_size=1 if crop is None else int(cfg.data.eval_batch_size),
        num_workers=int(cfg.data.num_workers), collate_fn=collate_readable,
    )
    num_classes = len(dataset.classes)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long, device=device)
    model.to(device).eval()
    images_seen = torch.zeros((), dtype=torch.long, device=device)
    for batch in tqdm(loader, desc=desc, disable=not progress or rank > 0, leave=False, dynamic_ncols=True):
        if batch is None:
            continue
        images, masks = (t.to(device, non_blocking=True) for t in batch)
        confusion += confusion_matrix(model(images).argmax(1), masks, num_classes)
        images_seen += len(images)
    all_reduce_sum(confusion)
    all_reduce_sum(images_seen)
    if images_seen == 0:
        raise SiambenchError(f"{desc}: no readable images to evaluate")
    return {**segmentation_scores(confusion.cpu()), "images": int(images_seen)}


@dataclass
class Validation:
    """Where the sweep is scored: ``dataset[indices]``, the sweep training on ``train_set[train_indices]``.

    ``held_out`` says the images came out of the training split (so the
    chosen LR may be re-trained on all of it).
    """

    dataset: object
    indices: list[int] | None
    train_indices: list[int]
    held_out: bool
    description: str


def select_best(points: list[dict]) -> int:
    """Index of the sweep point with the best validation mIoU (:func:`best_point`'s rule)."""
    return best_point(points, "val_miou", what="LR sweep")


def sweep_lrs(cfg: Config) -> list[float]:
    return sweep_values(cfg.sweep.lr, "sweep.lr")


def run_segmentation(model_factory, train_set, test_set, cfg: Config, validation: Validation | None = None,
                     device="cpu", seed: int = 0, progress: bool = True) -> dict:
    """Train on ``train_set`` (sweeping ``sweep.lr`` on ``validation`` if it holds several) and score ``test_set``.

    ``model_factory()`` returns a new :class:`FCN` on the pretrained
    weights for every training run. With a held-out validation split and
    ``val.retrain``, the chosen LR is trained again on the whole training
    split before testing.
    """
    lrs = sweep_lrs(cfg)
    all_train = list(range(len(train_set)))
    start = time.time()
    record = {"task": "segmentation", "protocol": cfg.get("protocol"), "seed": seed}

    def fit(indices, lr, desc):
        model = model_factory()
        return model, train(model, train_set, indices, lr, cfg, derive_seed(seed, 5), device, progress, desc)

    if len(lrs) == 1:
        final, info = fit(all_train, lrs[0], f"segmentation lr={lrs[0]:g}")
        record.update(sweep=[], validation=None)
    else:
        if validation is None:
            raise ConfigError("the preset sweeps several LRs but the dataset has no validation split to choose on")
        points, final, info = [], None, None
        for lr in lrs:
            desc = f"segmentation lr={lr:g}"
            try:
                model, run = fit(validation.train_indices, lr, desc)
            except TrainingDivergedError:
                points.append({"lr": lr, "val_miou": None, "diverged": True})
                continue
            score = evaluate(model, validation.dataset, validation.indices, cfg, device, progress, f"{desc} val")
            points.append({"lr": lr, "val_miou": score["miou"], "diverged": False, **run})
            if select_best(points) == len(points) - 1:
                final, info = model, run
        best = points[select_best(points)]
        retrain = validation.held_out and bool(cfg.val.retrain)
        if retrain:
            final, info = fit(all_train, best["lr"], f"segmentation lr={best['lr']:g} (all training images)")
        record["sweep"] = points
        record["validation"] = {"split": validation.description, "train_images": len(validation.train_indices),
                                "retrained_on_all": retrain}
    test = evaluate(final, test_set, None, cfg, device, progress, desc="segmentation test")
    record.update(chosen=info, test_images=test.pop("images"), scores=test, wall_time_s=time.time() - start)
    return record


def validation_for(ctx: EvalContext, dataset: str, train_set) -> Validation | None:
    """The dataset's official validation split, else its held-out rule applied to the training split."""
    info = ctx.info(dataset)
    if info.val_split:
        return Validation(ctx.dataset(dataset, info.val_split), None, list(range(len(train_set))), False,
                          f"{dataset} {info.val_split}")
    if info.val_holdout is None:
        return None
    train_idx, val_idx = holdout_indices(len(train_set), info.val_holdout)
    return Validation(train_set, val_idx.tolist(), train_idx.tolist(), True,
                      f"{info.val_holdout.describe()} ({info.train_split})")


@register_stage("segmentation")
def evaluate_segmentation(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    cfg = load_protocol("segmentation", protocol, overrides)
    info = ctx.info(dataset)
    train_set, test_set = ctx.dataset(dataset, info.train_split), ctx.dataset(dataset, info.test_split)
    if not hasattr(train_set, "ignore_index"):
        raise SiambenchError(f"dataset {dataset!r} has no segmentation masks; use voc2012_seg or shapes_seg")
    validation = validation_for(ctx, dataset, train_set) if len(sweep_lrs(cfg)) > 1 else None
    num_classes = len(train_set.classes)
    out = run_segmentation(lambda: build_fcn(ctx.backbone, num_classes, cfg, ctx.seed), train_set, test_set, cfg,
                           validation, ctx.torch_device, ctx.seed, ctx.progress)
    scores = out["scores"]
    metrics = {name: scores[name] for name in ("miou", "pixel_acc", "mean_acc")}
    metrics.update({f"iou_{name}": v for name, v in zip(train_set.classes, scores["iou"]) if math.isfinite(v)})
    return EvalResult(
        metrics=metrics,
        primary_metric="miou",
        hyperparameters={"chosen": out["chosen"], "sweep": out["sweep"], "validation": out["validation"],
                         "test_images": out["test_images"]},
        config=cfg.to_dict(),
    )
