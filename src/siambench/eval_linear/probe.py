"""The ImageNet linear protocol: linear heads on a frozen encoder, with augmentation (PROTOCOLS C.1).

The encoder runs in eval mode (BatchNorm uses and keeps its running
statistics) and without gradients; only the linear heads learn, on random
resized crops with horizontal flips, and are scored on centre crops.

Several learning rates train at once: each is a separate head on the same
features, with its own optimiser state and its own schedule scaled from its
LR, and all heads see exactly the same batches and crops. The encoder's
forward pass, nearly all of the cost, is shared, so a sweep over five LRs
costs about one run, and each head ends bit for bit where a run with that
single LR and the same seed ends (the heads do not interact: each loss only
reaches its own head's gradient, and a LARS trust ratio is taken per head).
Every head starts from the same draw of N(0, 0.01) weights and zero bias.

The LR is chosen on a validation split held out from the training images (a
fixed, seeded subset whose size the preset gives; BYOL's paper selects on
10,009 of them), and the chosen head is scored on the test split as it was
trained, without the held-out images: nothing is retrained on the full
training set afterwards, as in BYOL, which applies the best LR's run to the
test set. Presets with one LR and no held-out split (SimSiam's and MoCo's
official code) train on all images.

Batches and crops depend only on ``(seed, epoch, position)``, as in
pretraining (:mod:`siambench.pretrain.loader`): a run is reproducible on the
CPU whatever the number of loader workers.
"""

from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..configs import Config
from ..data.sampling import CropFlipDataset, EpochBatches, collate_readable, derive_seed
from ..data.splits import Holdout, holdout_indices
from ..data.transforms import Normalize, ViewConfig
from ..engine.lars import LARS
from ..engine.schedules import cosine_decay, scale_lr, step_decay
from ..errors import ConfigError, SiambenchError
from ..toolkit.features import extract_features

# ---------------------------------------------------------------- data


def split_train_val(num_images: int, val_size: int, seed: int, train_subset: int | None = None):
    """Sorted ``(train, val)`` indices: ``val_size`` images held out by a seeded draw, optionally fewer train images
    (a second draw from the rest)."""
    if val_size < 0 or val_size >= num_images:
        raise ConfigError(f"a validation split of {val_size} images needs more than the {num_images} training images")
    train, val = np.arange(num_images), np.arange(0)
    if val_size:
        train, val = holdout_indices(num_images, Holdout(count=val_size, seed=seed))
    if train_subset and train_subset < len(train):
        train = train[holdout_indices(len(train), Holdout(count=train_subset, seed=derive_seed(seed, 1)))[1]]
    return train, val


# ---------------------------------------------------------------- schedule and optimisers


def lr_factor(cfg: Config, step: int, steps_per_epoch: int) -> float:
    """The schedule's multiplier of each head's peak LR at ``step`` (the same for every head)."""
    s = cfg.schedule
    epoch = step // steps_per_epoch
    if s.name == "cosine":
        if s.per not in ("step", "epoch"):
            raise ConfigError(f"unknown schedule.per {s.per!r}; expected 'step' or 'epoch'")
        if s.per == "epoch":
            return cosine_decay(1.0, epoch, s.epochs)
        return cosine_decay(1.0, step, s.epochs * steps_per_epoch)
    if s.name == "step":
        return step_decay(1.0, epoch, s.milestones, s.gamma)
    if s.name == "constant":
        return 1.0
    raise ConfigError(f"unknown schedule.name {s.name!r}; expected cosine, step or constant")


def peak_lr(cfg: Config, lr: float) -> float:
    """A preset LR as applied (:func:`scale_lr` with ``optim.lr_scale_batch``)."""
    return scale_lr(lr, cfg.schedule.batch_size, cfg.optim.lr_scale_batch)


def _optimizer(cfg: Config, head: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "sgd":
        return torch.optim.SGD(head.parameters(), lr=0.0, momentum=o.momentum, nesterov=o.nesterov,
                               weight_decay=o.weight_decay)
    if o.name == "lars":
        # apex LARC as SimSiam wraps SGD: every parameter adapted, the zero-initialised bias too once non-zero.
        return LARS(head.parameters(), lr=0.0, momentum=o.momentum, weight_decay=o.weight_decay, eta=o.eta)
    raise ConfigError(f"unknown optim.name {o.name!r}; expected 'sgd' or 'lars'")


def _feature_dim(encoder: torch.nn.Module, crop_size: int, device) -> int:
    """``encoder.num_features``, else the width of its output on one blank image."""
    dim = getattr(encoder, "num_features", None)
    if dim:
        return int(dim)
    was_training = encoder.training
    encoder.eval()
    with torch.no_grad():
        dim = encoder(torch.zeros(1, 3, crop_size, crop_size, device=device)).shape[1]
    encoder.train(was_training)
    return int(dim)


def _autocast(device: torch.device, cfg: Config):
    """bf16 for the frozen encoder's forward on GPU (``train.amp``); the heads always train in fp32."""
    if device.type == "cuda" and cfg.train.amp:
        return torch.autocast("cuda", torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------- training


def train_linear_heads(
    encoder: torch.nn.Module,
    dataset,
    indices,
    num_classes: int,
    cfg: Config,
    device="cpu",
    seed: int = 0,
    progress: bool = False,
) -> tuple[list[torch.nn.Linear], dict]:
    """Train one linear head per LR in ``cfg.optim.lrs`` on ``dataset[indices]``, sharing each encoder pass.

    Returns the heads (in the order of ``cfg.optim.lrs``) and ``info`` with
    ``steps``, ``images``, ``seconds`` and ``final_loss`` per head.
    """
    cfg = cfg if isinstance(cfg, Config) else Config(cfg)
    device = torch.device(device)
    d, s = cfg.data, cfg.schedule
    lrs = [float(v) for v in cfg.optim.lrs]
    if not lrs:
        raise ConfigError("optim.lrs is empty: give at least one learning rate")
    view = ViewConfig(crop_size=d.crop_size, crop_scale=tuple(d.crop_scale), crop_mode=d.crop_mode)

    dim = _feature_dim(encoder, d.crop_size, device)
    init = torch.Generator().manual_seed(derive_seed(seed, 23))
    weight = torch.empty(num_classes, dim).normal_(0.0, 0.01, generator=init)
    heads, optimizers = [], []
    for _ in lrs:
        head = torch.nn.Linear(dim, num_classes)
        with torch.no_grad():
            head.weight.copy_(weight)
            head.bias.zero_()
        head = head.to(device)
        heads.append(head)
        optimizers.append(_optimizer(cfg, head))
    peaks = [peak_lr(cfg, lr) for lr in lrs]

    sampler = EpochBatches(indices, s.batch_size, s.epochs, seed)
    workers = d.num_workers
    loader = torch.utils.data.DataLoader(
        CropFlipDataset(dataset, view, d.flip_p),
        batch_sampler=sampler,
        num_workers=workers,
        collate_fn=collate_readable,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
    )
    normalize = Normalize().to(device)
    was_training = encoder.training
    encoder.eval()
    start, images = time.perf_counter(), 0
    losses = [math.nan] * len(heads)
    bar = tqdm(total=len(sampler), desc="linear", disable=not progress, leave=False)
    try:
        for step, batch in enumerate(loader):
            bar.update(1)
            if batch is None:
                continue
            x, y = batch
            x, y = normalize(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.no_grad(), _autocast(device, cfg):
                features = encoder(x)
            features = features.float()
            factor = lr_factor(cfg, step, sampler.steps_per_epoch)
            total = 0.0
            step_losses = []
            for head, opt, peak in zip(heads, optimizers, peaks):
                for group in opt.param_groups:
                    group["lr"] = peak * factor
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(head(features), y)
                step_losses.append(loss.detach())
                total = total + loss
            total.backward()
            for opt in optimizers:
                opt.step()
            images += y.shape[0]
            if progress and step % 10 == 0:
                losses = torch.stack(step_losses).tolist()
                bar.set_postfix(loss=" ".join(f"{v:.3g}" for v in losses))
        losses = torch.stack(step_losses).tolist() if images else losses
    finally:
        bar.close()
        encoder.train(was_training)
    info = {"steps": len(sampler), "images": images, "seconds": time.perf_counter() - start, "final_loss": losses}
    return heads, info


@torch.no_grad()
def _head_scores(heads, features: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    out = []
    for head in heads:
        logits = head(features.to(head.weight.device)).cpu()
        finite = bool(torch.isfinite(logits).all())
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hit = top == labels[:, None]
        out.append({
            "top1": 100.0 * hit[:, 0].double().mean().item() if finite else math.nan,
            "top5": 100.0 * hit.any(1).double().mean().item() if finite else math.nan,
        })
    return out


def run_linear_probe(
    encoder: torch.nn.Module,
    train_set,
    test_set,
    cfg: Config,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
    num_classes: int | None = None,
) -> dict:
    """Train the preset's heads on ``train_set`` minus its held-out split, select on it, score on ``test_set``.

    ``encoder`` maps normalised images to pooled features; it is left as it
    was found (weights, BatchNorm statistics and train/eval mode).
    Returns ``top1`` and ``top5`` on test (percent) of the chosen head,
    ``best_lr`` (as the preset writes it) and ``best_peak_lr`` (as applied),
    ``per_lr_val`` (val top-1 per LR; empty without a held-out split),
    ``head`` (the chosen head's state dict on the CPU), sizes, and timing.
    Ties on val go to the LR listed first.
    """
    cfg = cfg if isinstance(cfg, Config) else Config(cfg)
    device = torch.device(device)
    d = cfg.data
    num_classes = num_classes or getattr(train_set, "num_classes", None)
    if not num_classes:
        raise SiambenchError("the training set has no classes: a linear probe needs labels")
    lrs = [float(v) for v in cfg.optim.lrs]
    if d.val_size == 0 and len(lrs) > 1:
        raise ConfigError(
            f"optim.lrs has {len(lrs)} learning rates but data.val_size is 0: choosing among them needs a "
            "held-out validation split (set data.val_size)"
        )
    train_idx, val_idx = split_train_val(len(train_set), d.val_size, d.val_seed, d.train_subset)
    start = time.perf_counter()
    heads, info = train_linear_heads(encoder, train_set, train_idx, num_classes, cfg, device, seed, progress)

    extract = dict(size=d.crop_size, crop_fraction=d.eval_crop_fraction, batch_size=cfg.train.eval_batch_size,
                   device=device, num_workers=d.num_workers, progress=progress)
    per_lr_val, best = {}, 0
    if len(val_idx):
        fv, lv = extract_features(encoder, torch.utils.data.Subset(train_set, val_idx.tolist()), desc="val", **extract)
        val_scores = _head_scores(heads, fv.float(), lv)
        per_lr_val = {lr: sc["top1"] for lr, sc in zip(lrs, val_scores)}
        ranked = [-math.inf if math.isnan(sc["top1"]) else sc["top1"] for sc in val_scores]
        best = max(range(len(lrs)), key=lambda i: (ranked[i], -i))
    ft, lt = extract_features(encoder, test_set, desc="test", **extract)
    test = _head_scores([heads[best]], ft.float(), lt)[0]
    head = heads[best]
    return {
        "top1": test["top1"],
        "top5": test["top5"],
        "best_lr": lrs[best],
        "best_peak_lr": peak_lr(cfg, lrs[best]),
        "per_lr_val": per_lr_val,
        "selection": "val" if len(val_idx) else "single",
        "train_size": len(train_idx),
        "val_size": len(val_idx),
        "test_size": int(lt.shape[0]),
        "epochs": cfg.schedule.epochs,
        "steps": info["steps"],
        "train_seconds": info["seconds"],
        "images_per_second": info["images"] / max(info["seconds"], 1e-9),
        "final_loss": dict(zip(lrs, info["final_loss"])),
        "seconds": time.perf_counter() - start,
        "head": {k: v.detach().cpu() for k, v in head.state_dict().items()},
    }
