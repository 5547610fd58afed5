import json
import os
import signal
import subprocess
import sys
import time

from siambench.eval_all import EMBEDDED_PLAN, DATA_PLAN, plan
from siambench.evaluate import EvalContext, run_stage
from siambench.report import load_records


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
    assert "| random-init |" in out
