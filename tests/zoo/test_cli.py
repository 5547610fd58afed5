"""``siambench zoo list / info / fetch``, and ``eval knn --ckpt zoo:NAME`` end to end against the local server."""

from __future__ import annotations

import hashlib
import json

import pytest

from siambench.cli import main
from siambench.zoo.registry import INDEX_ENV, ZOO

REQUIRED = ("byol_r50_1000ep", "simsiam_r50_100ep_bs256", "mocov2_r50_800ep", "mocov3_r50_1000ep", "swav_r50_800ep",
            "dino_r50", "barlowtwins_r50", "simclr_v1_r50_1x", "supervised_r50_tv1")


def _index_item(name: str, url: str, data: bytes, published: float = 50.0) -> dict:
    return {"name": name, "method": "MoCo v2", "arch": "resnet18", "width": 0.25, "epochs": 1, "urls": [url],
            "url_source": "the test server", "layout": "moco", "input_normalization": "imagenet", "license": "test",
            "sha256": hashlib.sha256(data).hexdigest(),
            "published": [{"task": "knn", "dataset": "digits", "metric": "top1@k20", "value": published,
                           "source": "a test value, line 1"},
                          {"task": "linear", "dataset": "imagenet", "metric": "top1", "value": 12.5,
                           "source": "a test value, line 2"}]}


def test_list_shows_every_entry_with_its_source(capsys):
    assert main(["zoo", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:8] == ["name", "method", "arch", "epochs", "size", "cached", "linear", "top-1"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(REQUIRED) <= set(rows) and len(rows) == len(ZOO)
    for name in REQUIRED:
        entry = ZOO[name]
        assert rows[name].endswith(entry.url_source)
        assert f" {entry.linear_top1().value:.1f} " in rows[name] and " no " in rows[name]
    assert "800" in rows["mocov2_r50_800ep"].split()


def test_info_shows_urls_checksum_layout_and_sources(capsys):
    assert main(["zoo", "info", "mocov2_r50_800ep"]) == 0
    out = capsys.readouterr().out
    assert "https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar" in out
    assert "md5 starting a04e12f8" in out and "layout:        moco" in out and "CC BY-NC 4.0" in out
    assert "linear imagenet top1 = 71.1   [github.com/facebookresearch/moco @132aea9 README.md line 128]" in out
    assert "detection voc0712 AP75 = 64.0   [github.com/facebookresearch/moco @132aea9 detection/README.md" in out


def test_info_of_an_unknown_name_is_one_clear_error(capsys):
    assert main(["zoo", "info", "mocov9"]) == 2
    assert "zoo:mocov9 is not in the zoo" in capsys.readouterr().err


def test_fetch_then_list_shows_it_cached(server, write_index, monkeypatch, moco_bytes, capsys):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    monkeypatch.setenv(INDEX_ENV, write_index([_index_item("t_cli", f"{base}/moco.pth.tar", moco_bytes)]))
    assert main(["zoo", "fetch", "t_cli"]) == 0
    assert capsys.readouterr().out.strip().endswith("zoo/t_cli/moco.pth.tar")
    assert main(["zoo", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("t_cli "))
    assert " yes " in row and " 3 MB " in row and " 12.5 " in row


@pytest.mark.slow
def test_eval_knn_with_a_zoo_name_end_to_end(server, write_index, monkeypatch, moco_bytes, run_cli, tmp_path):
    """Download from the local server, evaluate, and see the published number beside the measured one."""
    base, files = server
    files.content["/ckpt/moco.pth.tar"] = moco_bytes
    monkeypatch.setenv(INDEX_ENV, write_index([_index_item("t_e2e", f"{base}/ckpt/moco.pth.tar", moco_bytes)]))
    results = tmp_path / "results"
    run_cli("eval", "knn", "--ckpt", "zoo:t_e2e", "--dataset", "digits", "--results", str(results), "--no-progress",
            "--num-workers", "0")
    assert [path for path, _ in files.requests] == ["/ckpt/moco.pth.tar"]
    (record_file,) = results.glob("knn__digits__*.json")
    record = json.loads(record_file.read_text())
    assert record["checkpoint"]["path"] == "zoo:t_e2e"
    assert record["checkpoint"]["sha256"] == hashlib.sha256(moco_bytes).hexdigest()
    measured = record["metrics"]["top1@k20"]
    inspect = run_cli("ckpt", "inspect", "zoo:t_e2e").stdout
    assert "format:       moco" in inspect and len(files.requests) == 1, "the second use reads the cache"
    report = run_cli("report", str(results)).stdout
    row = next(line for line in report.splitlines() if line.startswith("| zoo:t_e2e | knn | digits"))
    assert f"| {measured:.2f} |" in row and "| 50.0 [1] |" in row and f"| {measured - 50:+.2f} |" in row
    assert ("⚠ beyond spread" in row) == (abs(measured - 50) > 0.05)
