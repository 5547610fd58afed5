"""Every zoo entry is complete: where to get it, how to check and read it, what it should score, and who said so."""

from __future__ import annotations

import re

import pytest

from siambench.checkpoints.formats import FORMATS
from siambench.configs import load_preset
from siambench.report.published import published_numbers
from siambench.stages import TASK_ORDER
from siambench.zoo.registry import ZOO

REQUIRED = ("byol_r50_1000ep", "simsiam_r50_100ep_bs256", "mocov2_r50_800ep", "mocov3_r50_1000ep", "swav_r50_800ep",
            "dino_r50", "barlowtwins_r50", "simclr_v1_r50_1x", "supervised_r50_tv1")
HEX = re.compile(r"^[0-9a-f]+$")


def _datasets():
    from siambench.data import get_dataset_info, list_datasets

    return {name: get_dataset_info(name) for name in list_datasets()}


def _metrics(task: str, dataset, datasets) -> set[str]:
    """The metric names a record of ``task`` on ``dataset`` carries."""
    if task == "knn":
        return {f"top1@k{k}" for k in load_preset("knn", "default").ks}
    if task in ("linear", "semisup-1pct", "semisup-10pct"):
        return {"top1", "top5"}
    if task == "detection":
        return {"AP50", "AP", "AP75"}
    if task.startswith("transfer-"):
        return {datasets[dataset].metric}
    raise AssertionError(f"no metric list for {task}")


def test_the_issue_names_are_all_there():
    assert set(REQUIRED) <= set(ZOO)
    assert len(ZOO) >= 9


@pytest.mark.parametrize("name", sorted(ZOO))
def test_entry_is_complete(name):
    entry = ZOO[name]
    assert entry.name == name and re.match(r"^[a-z0-9][a-z0-9_]*$", name)
    assert entry.urls and all(u.startswith("https://") for u in entry.urls)
    assert entry.url_source.startswith(("github.com/", "torchvision")), "the source names the repository"
    assert entry.layout in FORMATS, f"{entry.layout} is not a layout siambench reads"
    assert entry.input_normalization in ("imagenet", "none")
    assert entry.license.strip() and entry.method.strip()
    assert entry.arch == "resnet50" and entry.width > 0
    assert entry.published, "at least one published number"
    for checksum in (entry.sha256, entry.sha256_prefix, entry.md5_prefix):
        assert checksum is None or HEX.match(checksum)
    assert entry.sha256 is None or len(entry.sha256) == 64
    text = " ".join(entry.notes)
    if not (entry.sha256 or entry.sha256_prefix or entry.md5_prefix):
        assert "no checksum" in text, "an entry without a published checksum says so"
    if entry.epochs is None:
        assert "epochs" in text, "an entry without epochs says why"
    if entry.layout == "simclr-v1":
        assert entry.input_normalization == "none"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_published_numbers_name_their_source_and_a_record_metric(name):
    datasets = _datasets()
    numbers = published_numbers(ZOO[name])
    assert numbers
    for p in numbers:
        assert p.source.strip() and ("line" in p.source or "Table" in p.source or "_metrics" in p.source), p
        assert p.task in TASK_ORDER and p.dataset in datasets, p
        assert p.metric in _metrics(p.task, p.dataset, datasets), p
        assert 0 < p.value <= 100


def test_the_byol_entry_carries_the_transfer_row():
    numbers = published_numbers(ZOO["byol_r50_1000ep"])
    transfer = [p for p in numbers if p.task.startswith("transfer-")]
    assert len(transfer) == 24 and {p.dataset for p in transfer} >= {"food101", "flowers102"}

