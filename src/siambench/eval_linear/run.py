"""``siambench eval linear``: logistic regression on cached features, or the augmented probe."""

from __future__ import annotations

import numpy as np
import torch

from ..data.splits import selection_split
from ..engine.metrics import voc11_map
from ..errors import ConfigError
from ..evaluate import EvalContext, EvalResult, load_protocol, register_stage
from .logistic import logistic_sweep, one_vs_rest_sweep
from .probe import run_linear_probe


def _selection_splits(ctx: EvalContext, dataset: str, train, cfg):
    """``(train, val)`` feature/label pairs: the dataset's val split, else its held-out rule, and the rule's text.

    The held-out draw uses the full training split's labels (:mod:`siambench.data.splits`),
    so it names the same images whichever of them failed to decode.
    """
    info = ctx.info(dataset)
    if info.val_split:
        val = ctx.features(dataset, info.val_split, cfg.image_size, cfg.crop_fraction, cfg.batch_size)
        return (train.features, train.labels), (val.features, val.labels), f"the dataset's {info.val_split} split"
    targets = np.asarray(ctx.dataset(dataset, info.train_split).targets)
    _, held, source = selection_split(info, targets, cfg.val_fraction, cfg.val_seed)
    is_val = np.isin(train.indices, held)
    return (train.features[~is_val], train.labels[~is_val]), (train.features[is_val], train.labels[is_val]), source


def logreg_evaluation(ctx: EvalContext, dataset: str, cfg) -> EvalResult:
    """The frozen-feature linear protocol (PROTOCOLS C.3): λ chosen on val by the dataset's metric, refit, test.

    Multi-label datasets (VOC2007) get one binary classifier per class,
    scored by the mean 11-point AP; the others a multinomial one, scored
    by the dataset's metric (top-1 or mean per-class accuracy).
    """
    info = ctx.info(dataset)
    get = lambda split: ctx.features(dataset, split, cfg.image_size, cfg.crop_fraction, cfg.batch_size)  # noqa: E731
    train, test = get(info.train_split), get(info.test_split)
    fit, val, source = _selection_splits(ctx, dataset, train, cfg)
    lambdas = np.logspace(np.log10(cfg.lambdas.low), np.log10(cfg.lambdas.high), cfg.lambdas.num).tolist()
    metric = cfg.metric or info.metric
    solver = dict(cfg.get("solver") or {})  # the transfer presets' solver options (linear vs linear_ssl_transfer)
    if metric == "map11":
        solver.pop("refit_from", None)
        out = one_vs_rest_sweep(fit, val, (test.features, test.labels), voc11_map, lambdas=lambdas,
                                device=ctx.torch_device, progress=ctx.progress, **solver)
        metrics = {"map11": voc11_map(out["test_scores"], test.labels)}
    else:
        out = logistic_sweep(fit, val, (test.features, test.labels), info.num_classes, lambdas=lambdas,
                             metric=metric, refit=True, device=ctx.torch_device, progress=ctx.progress, **solver)
        metrics = dict(out["test"])
    return EvalResult(
        metrics={**metrics, "val_" + metric: out["best_val"]},
        primary_metric=metric,
        hyperparameters={"lambda": out["best_lambda"], "C": out["best_C"], "validation": source,
                         "train_images": len(fit[1]), "val_images": len(val[1]), "test_images": len(test.labels),
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


# A preset's ``runner`` names its algorithm, so a copy of a preset under another name runs the same.
RUNNERS = {"logreg": logreg_evaluation, "probe": _probe}


@register_stage("linear")
def evaluate(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    cfg = load_protocol("linear", protocol, overrides)
    runner = cfg.get("runner")
    if runner not in RUNNERS:
        raise ConfigError(f"linear preset {protocol!r} has runner {runner!r}; expected one of {', '.join(RUNNERS)} "
                          f"(a preset names its algorithm with `runner:`).")
    torch.manual_seed(ctx.seed)
    return RUNNERS[runner](ctx, dataset, cfg)
