"""Plots of records and runs (PNG): what people would rather look at than tables."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from ..engine.logging import read_log
from .tables import checkpoint_label


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def knn_per_k(records: list[dict], out: Path) -> Path | None:
    """Top-1 kNN accuracy against k, one line per (checkpoint, dataset)."""
    rows = [r for r in records if r["task"] == "knn"]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for r in rows:
        pts = sorted((int(m.group(1)), v) for k, v in r["metrics"].items() if (m := re.fullmatch(r"top1@k(\d+)", k)))
        if pts:
            ax.plot(*zip(*pts), marker="o", label=f"{checkpoint_label(r)} · {r['dataset']}")
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("top-1 (%)")
    ax.set_title("kNN accuracy per k")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def bar_values(records: list[dict]) -> tuple[list[str], dict[str, dict[str, list[float]]]]:
    """``(groups, values[checkpoint][group])``: one group per (task, dataset, preset), labelled with all three,
    so that two presets of one evaluation (``linear shapes (logreg)`` and ``(tiny)``) are two groups."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        group = f"{r['task']}\n{r['dataset']}\n({r['protocol']})"
        values[checkpoint_label(r)][group].append(r["metrics"][r["primary_metric"]])
    return sorted({c for v in values.values() for c in v}), values


def per_dataset_bars(records: list[dict], out: Path) -> Path | None:
    """The primary metric of every (task, dataset, preset), bars grouped by checkpoint."""
    if not records:
        return None
    plt = _pyplot()
    columns, values = bar_values(records)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(columns) + 2), 4.2))
    width = 0.8 / max(1, len(values))
    for i, (ckpt, cols) in enumerate(values.items()):
        xs = [j + i * width for j in range(len(columns))]
        ys = [sum(cols[c]) / len(cols[c]) if c in cols else 0.0 for c in columns]
        ax.bar(xs, ys, width=width, label=ckpt)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))])
    ax.set_xticklabels(columns, fontsize=7)
    ax.set_ylabel("primary metric")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def pretraining_curves(run_dir: Path, out: Path) -> Path | None:
    """Loss, learning rate and the kNN monitor of a pretraining run, from its ``log.jsonl``."""
    log = read_log(run_dir)
    steps = [(r["step"], r["loss"]) for r in log if "loss" in r]
    if not steps:
        return None
    plt = _pyplot()
    knn = [(r["step"], r["knn_top1"]) for r in log if "knn_top1" in r]
    fig, axes = plt.subplots(1, 2 if knn else 1, figsize=(9 if knn else 5, 3.5), squeeze=False)
    axes[0][0].plot(*zip(*steps))
    axes[0][0].set_xlabel("step")
    axes[0][0].set_ylabel("loss")
    axes[0][0].set_title(Path(run_dir).name)
    if knn:
        axes[0][1].plot(*zip(*knn), marker="o")
        axes[0][1].set_xlabel("step")
        axes[0][1].set_ylabel("kNN top-1 (%)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def write_plots(records: list[dict], out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    made = [knn_per_k(records, out_dir / "knn_per_k.png"), per_dataset_bars(records, out_dir / "per_dataset.png")]
    runs = {r["checkpoint"].get("run_dir") for r in records if r["checkpoint"].get("run_dir")}
    for run in sorted(runs):
        if Path(run, "log.jsonl").exists():
            made.append(pretraining_curves(Path(run), out_dir / f"pretraining_{Path(run).name}.png"))
    return [p for p in made if p is not None]
