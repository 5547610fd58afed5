"""``siambench eval linear``: logistic regression on cached features, or the augmented probe."""

from __future__ import annotations

import numpy as np
import torch

from ..evaluate import EvalContext, EvalResult, load_protocol, register_stage
from .logistic import logistic_sweep
from .probe import run_linear_probe


def _held_out(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * fraction))
    return np.sort(order[cut:]), np.sort(order[:cut])


def _logreg(ctx: EvalContext, dataset: str, cfg) -> EvalResult:
    info = ctx.info(dataset)
    get = lambda split: ctx.features(dataset, split, cfg.image_size, cfg.crop_fraction, cfg.batch_size)  # noqa: E731
    train, test = get(info.train_split), get(info.test_split)
    if info.val_split:
        val = get(info.val_split)
        splits = ((train.features, train.labels), (val.features, val.labels))
        source = f"the dataset's {info.val_split} split"
    else:
        keep, held = _held_out(len(train), cfg.val_fraction, cfg.val_seed)
        splits = ((train.features[keep], train.labels[keep]), (train.features[held], train.labels[held]))
        source = f"{len(held)} training images held out (seed {cfg.val_seed})"
    lambdas = np.logspace(np.log10(cfg.lambdas.low), np.log10(cfg.lambdas.high), cfg.lambdas.num).tolist()
    out = logistic_sweep(*splits, (test.features, test.labels), info.num_classes, lambdas=lambdas,
                         metric=cfg.metric, refit=True, device=ctx.torch_device, progress=ctx.progress)
    return EvalResult(
        metrics={"top1": out["test"]["top1"], "mean_per_class": out["test"]["mean_per_class"],
                 "val_" + cfg.metric: out["best_val"]},
        primary_metric=cfg.metric,
        hyperparameters={"lambda": out["best_lambda"], "C": out["best_C"], "validation": source,
                         "val_scores": dict(zip(map(float, out["lambdas"]), map(float, out["val_scores"])))},
        config=cfg.to_dict(),
    )


def _probe(ctx: EvalContext, dataset: str, cfg) -> EvalResult:
    info = ctx.info(dataset)
    out = run_linear_probe(ctx.encoder(), ctx.dataset(dataset, info.train_split), ctx.dataset(dataset, info.test_split),
                           cfg, device=ctx.torch_device, seed=ctx.seed, progress=ctx.progress,
                           num_classes=info.num_classes)
    return EvalResult(
        metrics={"top1": out["top1"], "top5": out["top5"]},
        primary_metric="top1",
        hyperparameters={k: out[k] for k in ("best_lr", "best_peak_lr", "per_lr_val", "selection", "train_size",
                                             "val_size", "epochs", "steps") if k in out},
        config=cfg.to_dict(),
    )


@register_stage("linear")
def evaluate(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    cfg = load_protocol("linear", protocol, overrides)
    torch.manual_seed(ctx.seed)
    return _logreg(ctx, dataset, cfg) if protocol == "logreg" else _probe(ctx, dataset, cfg)
