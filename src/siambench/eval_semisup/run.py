"""``siambench eval semisup``: fine-tuning on 1 % or 10 % of the labels."""

from __future__ import annotations

from ..evaluate import EvalContext, EvalResult, load_protocol, register_stage
from .finetune import run_semisup


def _evaluate(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str], fraction: float) -> EvalResult:
    cfg = load_protocol("semisup", protocol, overrides)
    info = ctx.info(dataset)
    train_set, test_set = ctx.dataset(dataset, info.train_split), ctx.dataset(dataset, info.test_split)
    out = run_semisup(ctx.encoder, train_set, test_set, cfg, fraction, subset_file=ctx.subset_file,
                      device=ctx.torch_device, seed=ctx.seed, progress=ctx.progress)
    notes = [] if out["standard_subset"] else [f"labelled subset: {out['subset']['source']}"]
    return EvalResult(
        metrics={k: float(v) for k, v in out["metrics"].items() if isinstance(v, (int, float))},
        primary_metric="top1",
        hyperparameters={"chosen": out["chosen"], "sweep": out.get("sweep"), "validation": out.get("validation")},
        config=cfg.to_dict(),
        notes=notes,
    )


@register_stage("semisup-1pct")
def evaluate_1pct(ctx, dataset, protocol, overrides):
    return _evaluate(ctx, dataset, protocol, overrides, 0.01)


@register_stage("semisup-10pct")
def evaluate_10pct(ctx, dataset, protocol, overrides):
    return _evaluate(ctx, dataset, protocol, overrides, 0.10)
