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

import time

import torch
from torch import nn

from ..configs import Config
from ..data.sampling import derive_seed
from ..data.splits import Holdout, holdout_indices
from ..errors import ConfigError, SiambenchError, TrainingDivergedError
from ..toolkit.finetune import Classifier, evaluate, finetune
from ..toolkit.selection import best_point, sweep_values
from .subsets import select_subset

VAL_SOURCES = ("rest", "labelled")


def select_best(points: list[dict]) -> int:
    """Index of the sweep point with the best validation top-1, then top-5 (:func:`best_point`'s rule)."""
    return best_point(points, "val_top1", "val_top5")


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
    epochs, lrs = sweep_values(epochs, "sweep.epochs", int), sweep_values(cfg.sweep.lr, "sweep.lr")
    return [(lr, ep) for ep in epochs for lr in lrs]


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
    val = [pool[i] for i in holdout_indices(len(pool), Holdout(count=n, seed=derive_seed(seed, 3)))[1]]
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
