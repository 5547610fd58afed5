"""The published number beside the measured one, with the difference and the spread mark."""

from __future__ import annotations

import pytest

from siambench.eval_all import summary
from siambench.report.published import BEYOND, compare, section
from siambench.zoo.download import cached_path, pin_path
from siambench.zoo.registry import ZOO


def record(ckpt: str, task: str, dataset: str, metrics: dict, seed: int = 0, protocol: str = "byol",
           sha: str = "ab" * 32) -> dict:
    return {"task": task, "dataset": dataset, "protocol": protocol, "seed": seed, "metrics": metrics,
            "primary_metric": next(iter(metrics)), "notes": [],
            "checkpoint": {"name": ckpt, "path": ckpt, "sha256": sha}}


def only(rows, **match):
    found = [r for r in rows if all(getattr(r, k) == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


def test_difference_and_mark_against_the_documented_spread():
    rows = compare([
        record("zoo:mocov2_r50_800ep", "linear", "imagenet", {"top1": 70.8, "top5": 90.0}),
        record("zoo:mocov2_r50_800ep", "detection", "voc0712", {"AP50": 82.6, "AP": 57.4, "AP75": 64.3},
               protocol="voc0712"),
    ])
    linear = only(rows, task="linear")
    assert linear.published == 71.1 and linear.difference == pytest.approx(-0.3)
    assert linear.spread == pytest.approx(0.2) and linear.beyond_spread and linear.mark == BEYOND
    ap75 = only(rows, metric="AP75")
    assert ap75.difference == pytest.approx(0.3) and ap75.spread == pytest.approx(0.4) and not ap75.beyond_spread
    assert only(rows, metric="AP50").beyond_spread is False  # 0.1 within 0.2
    assert len(rows) == 4, "top5 has no published value and is not compared"


def test_knn_has_no_run_to_run_spread_beyond_rounding():
    rows = compare([record("zoo:dino_r50", "knn", "imagenet", {"top1@k20": 67.6, "top1@k10": 66.0}, protocol="default"),
                    record("zoo:dino_r50", "knn", "imagenet", {"top1@k20": 67.54}, protocol="other")])
    assert only(rows, protocol="default").beyond_spread is True
    assert only(rows, protocol="other").beyond_spread is False


def test_without_a_documented_spread_seeds_decide_or_it_says_unknown():
    one = compare([record("zoo:byol_r50_1000ep", "semisup-1pct", "imagenet", {"top1": 52.0})])
    assert one[0].spread is None and one[0].beyond_spread is None and one[0].mark == "spread unknown"
    seeds = compare([record("zoo:byol_r50_1000ep", "semisup-1pct", "imagenet", {"top1": v}, seed=s)
                     for s, v in enumerate((52.9, 53.3, 53.1))])
    pooled = seeds[0]
    assert pooled.n == 3 and pooled.measured == pytest.approx(53.1) and pooled.std == pytest.approx(0.2)
    assert pooled.difference == pytest.approx(-0.1) and pooled.beyond_spread is False


def test_transfer_rows_of_the_paper_are_compared():
    rows = compare([record("zoo:byol_r50_1000ep", "transfer-linear", "fgvc_aircraft", {"mean_per_class": 58.6},
                           protocol="linear")])
    assert rows[0].published == 60.6 and "Table 3" in rows[0].source and rows[0].difference == pytest.approx(-2.0)


def test_records_of_other_checkpoints_add_nothing():
    records = [record("byol_shapes", "linear", "imagenet", {"top1": 71.0}),
               record("mocov2_r50_800ep", "linear", "imagenet", {"top1": 71.0})]  # a name alone is not the zoo's
    assert compare(records) == [] and section(records) == ""


def test_a_cached_zoo_file_evaluated_by_path_is_recognised_by_its_pinned_sha256():
    entry = ZOO["swav_r50_800ep"]
    pin = pin_path(cached_path(entry))
    pin.parent.mkdir(parents=True, exist_ok=True)
    pin.write_text("cd" * 32 + "  swav_800ep_pretrain.pth.tar\n")
    try:
        rows = compare([record("/data/ckpt/swav_800ep_pretrain.pth.tar", "linear", "imagenet", {"top1": 75.0},
                               sha="cd" * 32)])
    finally:
        pin.unlink()
    assert [(r.zoo, r.published) for r in rows] == [("swav_r50_800ep", 75.3)]


def test_markdown_and_latex_sections():
    records = [record("zoo:mocov2_r50_800ep", "linear", "imagenet", {"top1": 70.8})]
    md = section(records)
    assert "### Published vs measured (zoo checkpoints)" in md
    row = next(line for line in md.splitlines() if line.startswith("| zoo:mocov2_r50_800ep"))
    assert "| 70.80 |" in row and "71.1 [1]" in row and "| -0.30 |" in row and "±0.20" in row and BEYOND in row
    assert "[1] github.com/facebookresearch/moco @132aea9 README.md line 128" in md
    latex = section(records, "latex")
    assert r"\begin{tabular}" in latex and "beyond spread" in latex and "-0.30" in latex
    assert section(records, "csv") == ""


def test_eval_all_summary_appends_the_section_after_the_table():
    records = [record("zoo:mocov2_r50_800ep", "linear", "imagenet", {"top1": 71.0})]
    text = summary({"records": records, "skipped": [], "failed": []})
    block = section(records)
    assert block and text.endswith(block) and text.index("zoo:mocov2_r50_800ep") < text.index(block)
    assert "| -0.10 |" in block
