import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import siambench.eval_all as eval_all_module
from siambench.checkpoints import save_backbone
from siambench.cli import main
from siambench.eval_all import DATA_PLAN, EMBEDDED_PLAN, Job, eval_all, plan, twin
from siambench.evaluate import EvalContext, load_protocol, run_stage
from siambench.report import RecordKey, load_records


def test_a_finished_record_is_not_recomputed(tmp_path, random_backbone):
    ctx = EvalContext(str(random_backbone), results_dir=str(tmp_path / "results"), progress=False, num_workers=0)
    record, computed = run_stage(ctx, "knn", "digits", None)
    assert computed and record["protocol"] == "default" and record["primary_metric"] == "top1@k20"
    assert "embedded dataset" in " ".join(record["notes"])
    stamp = os.stat(record["_path"]).st_mtime_ns
    again, computed = run_stage(ctx, "knn", "digits", None)
    assert not computed and again["metrics"] == record["metrics"]
    assert os.stat(record["_path"]).st_mtime_ns == stamp
    # An override is a protocol of its own and does not replace the preset's record.
    variant, computed = run_stage(ctx, "knn", "digits", "default", ["temperature=0.5"])
    assert computed and variant["protocol"].startswith("default+") and variant["_path"] != record["_path"]


def test_the_plan_follows_the_data_root(tmp_path, monkeypatch):
    monkeypatch.delenv("SIAMBENCH_DATA", raising=False)
    assert plan(None) == EMBEDDED_PLAN
    assert plan(str(tmp_path)) == DATA_PLAN


def test_an_unknown_task_in_tasks_is_refused_before_anything_runs(tmp_path, random_backbone, capsys):
    status = main(["eval-all", "--ckpt", str(random_backbone), "--results", str(tmp_path / "results"),
                   "--tasks", "knn,knn-tiny", "--no-progress"])
    assert status == 2 and "'knn-tiny'" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_missing_datasets_are_skipped_with_the_reason(tmp_path, random_backbone, run_cli):
    proc = run_cli("eval-all", "--ckpt", str(random_backbone), "--data-root", str(tmp_path / "data"),
                   "--results", str(tmp_path / "results"), "--no-progress", "--tasks", "knn,linear,transfer-linear")
    assert "Traceback" not in proc.stderr
    assert "skipped knn on imagenet" in proc.stdout and "To prepare it" in proc.stdout
    assert "skipped knn on cifar10" in proc.stdout and "skipped transfer-linear on food101" in proc.stdout
    # None of the 12 transfer datasets is there: the embedded stand-ins run instead, labelled as such.
    records = load_records(tmp_path / "results")
    assert sorted((r["task"], r["dataset"]) for r in records) == [("transfer-linear", "digits"),
                                                                   ("transfer-linear", "shapes")]
    assert all(any("stand-in" in n for n in r["notes"]) for r in records)


@pytest.mark.slow
def test_killed_eval_all_finishes_only_what_is_missing(tmp_path, random_backbone, run_cli):
    results = tmp_path / "results"
    args = ["eval-all", "--ckpt", str(random_backbone), "--results", str(results), "--tasks", "knn", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "siambench", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while not list(results.glob("*.json")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = list(results.glob("*.json"))
    assert len(first) == 1, "eval-all finished before it could be killed"
    stamp = first[0].stat().st_mtime_ns
    json.loads(first[0].read_text())  # a whole record, not a partial one

    out = run_cli(*args).stdout
    records = load_records(results)
    assert sorted(r["dataset"] for r in records) == ["digits", "shapes"]
    assert first[0].stat().st_mtime_ns == stamp
    assert out.count("found") == 1 and out.count("done ") == 1
    header = next(line for line in out.splitlines() if line.startswith("| task "))
    assert [c.strip() for c in header.strip("|").split("|")][-1] == "random-init"


@pytest.mark.slow
def test_a_job_with_the_same_features_and_solver_as_another_is_computed_once(tmp_path, random_backbone, monkeypatch):
    first, second = Job("linear", "digits", "logreg"), Job("transfer-linear", "digits", "linear")
    assert twin(Job("knn", "digits", "default")) is None
    assert twin(Job("transfer-linear", "imagenet", "linear")) is None  # its held-out share is used: not the same
    if twin(second) is None:  # the two presets differ today in more than the held-out share
        monkeypatch.setattr(eval_all_module, "_same_solver", lambda a, b: True)
    assert twin(second) == first
    ctx = EvalContext(str(random_backbone), results_dir=str(tmp_path / "results"), progress=False, num_workers=0)
    outcome = eval_all(ctx, jobs=(first, second))
    linear, transfer = outcome["records"]
    assert transfer["metrics"] == linear["metrics"] and transfer["hyperparameters"] == linear["hyperparameters"]
    assert any(n.startswith("computed once with linear digits (logreg)") for n in transfer["notes"])
    assert any("stand-in" in n for n in transfer["notes"])
    assert transfer["config"] == load_protocol("transfer", "linear", []).to_dict()
    assert transfer["_path"].endswith(RecordKey(ctx.sha256, "transfer-linear", "digits", "linear").filename)
    # The shared record is found like any other; without a twin the job is computed as before.
    again = eval_all(ctx, jobs=(first, second))
    assert [r["_path"] for r in again["records"]] == [linear["_path"], transfer["_path"]]
    monkeypatch.setattr(eval_all_module, "_same_solver", lambda a, b: False)
    alone = eval_all(dataclasses.replace(ctx, results_dir=str(tmp_path / "alone")), jobs=(first, second))
    assert not any("computed once" in n for n in alone["records"][1]["notes"])


@pytest.mark.slow
def test_eval_all_with_a_random_baseline_shows_it_beside_the_checkpoint(tmp_path, capsys, monkeypatch):
    # A network of the baseline's architecture but another seed (seed 0 would be the baseline's very file,
    # whose records are the checkpoint's own).
    checkpoint = tmp_path / "other-init"
    save_backbone(checkpoint, *_resnet18_quarter(seed=1), method="random-init", name="other-init")
    monkeypatch.setattr(eval_all_module, "EMBEDDED_PLAN", (Job("knn", "digits", "default"),))
    status = main(["eval-all", "--ckpt", str(checkpoint), "--results", str(tmp_path / "results"), "--tasks",
                   "knn", "--baseline", "random", "--no-progress"])
    out = capsys.readouterr().out
    assert status == 0
    records = load_records(tmp_path / "results")
    assert sorted((r["checkpoint"]["name"], r["dataset"]) for r in records) == [
        ("other-init", "digits"), ("random:resnet18@0.25", "digits")]
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert [c.strip() for c in table[0].strip("|").split("|")] == [
        "task", "dataset", "preset", "metric", "other-init", "random:resnet18@0.25"]
    assert "- baseline: random:resnet18@0.25 is a random-init backbone" in out
    wide = main(["eval-all", "--ckpt", str(checkpoint), "--results", str(tmp_path / "results"), "--tasks",
                 "knn", "--baseline", "random", "--no-progress", "--wide"])
    assert wide == 0 and "| checkpoint | knn digits (default) top1@k20 |" in capsys.readouterr().out


def _resnet18_quarter(seed: int):
    """``(state dict, spec)`` of a random-init quarter-width ResNet-18 drawn with ``seed``."""
    import torch

    from siambench.models import backbone_state_dict, build_resnet

    torch.manual_seed(seed)
    model = build_resnet("resnet18", 0.25, "imagenet")
    return backbone_state_dict(model), model.spec
