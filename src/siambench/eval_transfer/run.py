"""``siambench eval transfer``: the 12-dataset benchmark, one record per dataset and seed.

``transfer-linear`` is the frozen-feature logistic regression of
:mod:`siambench.eval_linear` with the transfer preset; ``transfer-finetune``
fine-tunes the whole network (:mod:`.finetune`). Both take each dataset's
protocol split (its official validation split, or the held-out rule of its
registry entry) and its metric from the registry.
"""

from __future__ import annotations

import numpy as np

from ..data.registry import benchmark_datasets
from ..data.splits import selection_split
from ..eval_linear.run import logreg_evaluation
from ..evaluate import EvalContext, EvalResult, load_protocol, register_stage
from .finetune import Splits, run_transfer_finetune

BENCHMARK = tuple(info.name for info in benchmark_datasets())  # BYOL Table 3's order
GRIDS = {"full": "finetune", "small": "finetune_small", "tiny": "finetune_tiny"}


@register_stage("transfer-linear")
def evaluate_linear(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    return logreg_evaluation(ctx, dataset, load_protocol("transfer", protocol, overrides))


def protocol_splits(ctx: EvalContext, dataset: str, val_fraction: float = 0.2, val_seed: int = 0) -> tuple[Splits, str]:
    """Train, val and test of ``dataset`` as the protocol defines them, and how val was made."""
    info = ctx.info(dataset)
    train, test = ctx.dataset(dataset, info.train_split), ctx.dataset(dataset, info.test_split)
    everything = lambda ds: list(range(len(ds)))  # noqa: E731
    if info.val_split:
        val = ctx.dataset(dataset, info.val_split)
        return Splits((train, everything(train)), (val, everything(val)), (test, everything(test))), \
            f"the dataset's {info.val_split} split"
    kept, held, source = selection_split(info, np.asarray(train.targets), val_fraction, val_seed)
    return Splits((train, kept.tolist()), (train, held.tolist()), (test, everything(test))), source


@register_stage("transfer-finetune")
def evaluate_finetune(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    cfg = load_protocol("transfer", protocol, overrides)
    info = ctx.info(dataset)
    if cfg.data.crop_size is None:
        cfg.data["crop_size"] = info.eval_size
    splits, source = protocol_splits(ctx, dataset)
    num_outputs = np.asarray(splits.train[0].targets).shape[1] if info.metric == "map11" else info.num_classes
    out = run_transfer_finetune(ctx.encoder, splits, num_outputs, info.metric, cfg, seed=ctx.seed,
                                device=ctx.torch_device, progress=ctx.progress)
    best = out["best"]
    return EvalResult(
        metrics={info.metric: out["test"], "val_" + info.metric: best["val"]},
        primary_metric=info.metric,
        hyperparameters={"lr": best["lr"], "wd": best["wd"], "applied_weight_decay": best["wd"] / best["lr"],
                         "validation": source, "train_images": out["train_images"], "val_images": out["val_images"],
                         "steps": out["final"]["steps"], "grid": out["grid"]},
        config=cfg.to_dict(),
    )
