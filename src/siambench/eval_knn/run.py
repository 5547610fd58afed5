"""``siambench eval knn``: the kNN stage over cached frozen features."""

from __future__ import annotations

from ..evaluate import EvalContext, EvalResult, load_protocol, register_stage
from .knn import knn_classify


@register_stage("knn")
def evaluate(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    cfg = load_protocol("knn", protocol, overrides)
    info = ctx.info(dataset)
    feats = {split: ctx.features(dataset, split, cfg.image_size, cfg.crop_fraction, cfg.batch_size)
             for split in (info.train_split, info.test_split)}
    bank, queries = feats[info.train_split], feats[info.test_split]
    metrics = knn_classify(bank.features, bank.labels, queries.features, queries.labels, info.num_classes or
                           int(max(bank.labels.max(), queries.labels.max()) + 1), ks=tuple(cfg.ks),
                           temperature=cfg.temperature, progress=ctx.progress)
    primary = f"top1@k{cfg.primary_k}"
    notes = [f"{bank.skipped + queries.skipped} unreadable images skipped"] if bank.skipped + queries.skipped else []
    return EvalResult(
        metrics={k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        primary_metric=primary,
        hyperparameters={"ks": list(cfg.ks), "temperature": cfg.temperature, "bank": info.train_split,
                         "queries": info.test_split, "bank_size": len(bank), "num_queries": len(queries)},
        config=cfg.to_dict(),
        notes=notes,
    )
