import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from siambench.checkpoints import load_backbone
from siambench.checkpoints.random_init import materialize
from siambench.configs import Config, apply_overrides
from siambench.engine.logging import read_log
from siambench.engine.threads import loader_workers, set_threads
from siambench.errors import ConfigError, CorruptImageError, SiambenchError, TrainingDivergedError
from siambench.pretrain.config import load_config
from siambench.pretrain.state import find_checkpoints, load_checkpoint
from siambench.pretrain.trainer import (
    COLLAPSE_STAT,
    collapse_statistic,
    export_only,
    monitor_bank,
    pretrain,
    schedule_steps,
)

# byol_shapes with SGD: LARS' settings go back to their defaults, as unused keys must.
SGD = ("optim.name=sgd", "optim.eta=0.001", "optim.clip_lr=false")


def _run(cfg, resume=None):
    return pretrain(cfg, resume=resume)


def test_a_run_writes_checkpoints_config_log_and_a_torchvision_backbone(tiny_cfg):
    cfg = tiny_cfg("method=simsiam", "ema.tau_base=null", *SGD, "optim.base_lr=0.05", "model.projector.out_dim=32",
                   "aug.view1.preset=simsiam", "aug.view2.preset=simsiam")
    run = _run(cfg)
    assert [p.name for p in find_checkpoints(run)] == ["step_00000004.pt", "step_00000008.pt"]
    assert (run / "config.yaml").is_file() and (run / "tb").is_dir()
    log = read_log(run)
    assert [r["step"] for r in log if "loss" in r] == [2, 4, 6, 8]
    assert all(-1.0 <= r["loss"] <= 1.0 for r in log if "loss" in r)

    sd, meta = load_backbone(run)
    assert (meta["arch"], meta["width"], meta["stem"], meta["method"]) == ("resnet18", 0.25, "imagenet", "simsiam")
    state = load_checkpoint(find_checkpoints(run)[-1], torch.device("cpu"))
    for k, v in sd.items():
        assert torch.equal(v, state["model"][f"backbone.{k}"])
    # the same file through --export-only
    before = (run / "backbone.pth").read_bytes()
    export_only(run)
    assert torch.load(run / "backbone.pth", weights_only=True).keys() == torch.load(
        __import__("io").BytesIO(before), weights_only=True).keys()


def test_backbone_loads_into_torchvision_with_only_fc_missing(tiny_cfg):
    run = _run(tiny_cfg("model.width=1.0", "schedule.total_steps=2", "train.save_every=2"))
    sd, _ = load_backbone(run)
    result = torchvision.models.resnet18().load_state_dict(sd, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys


def test_an_existing_run_is_never_overwritten(tiny_cfg):
    cfg = tiny_cfg("schedule.total_steps=4")
    run = _run(cfg)
    stamp = (run / "step_00000004.pt").stat().st_mtime_ns
    with pytest.raises(SiambenchError, match="--resume auto"):
        _run(cfg)
    assert (run / "step_00000004.pt").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_killed_run_resumes_bit_identically(tmp_path, tiny_overrides, run_cli):
    """Exact equality, not a tolerance: the killed run, its resumption and the reference all run on this CPU in
    the same kind of process (the CLI, same thread count), so they use the same kernels and summation orders."""
    args = ["pretrain", "--config", "byol_shapes", *tiny_overrides, "schedule.total_steps=40", "train.save_every=2",
            "train.keep_last=40"]
    killed = [*args[:-1], "train.keep_last=40"]
    run = tmp_path / "out" / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "siambench", *killed, "--resume", "auto"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (run / "step_00000002.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    interrupted_at = int(find_checkpoints(run)[-1].stem.split("_")[1])
    assert interrupted_at < 40, "the run finished before it could be killed"
    run_cli(*killed, "--resume", "auto")
    run_cli(*[a if a != "name=run" else "name=reference" for a in killed])

    resumed = load_checkpoint(run / "step_00000040.pt", torch.device("cpu"))
    reference = load_checkpoint(tmp_path / "out" / "reference" / "step_00000040.pt", torch.device("cpu"))
    assert resumed["model"].keys() == reference["model"].keys()
    for key in reference["model"]:
        assert torch.equal(resumed["model"][key], reference["model"][key]), key
    for a, b in zip(resumed["optimizer"]["state"].values(), reference["optimizer"]["state"].values()):
        assert torch.equal(a["momentum_buffer"], b["momentum_buffer"])


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tiny_cfg):
    cfg = tiny_cfg(*SGD, "optim.base_lr=1.0e35", "schedule.warmup_epochs=1", "train.save_every=1",
                   "train.log_every=1")
    with pytest.raises(TrainingDivergedError, match="NaN or infinite") as err:
        _run(cfg)
    run = Path(cfg.output_dir) / "run"
    assert "step_00000001.pt" in str(err.value)
    assert [p.name for p in find_checkpoints(run)] == ["step_00000001.pt"]
    state = load_checkpoint(run / "step_00000001.pt", torch.device("cpu"))
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def _image_folder(root: Path, n_per_class=21, corrupt=2):
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(n_per_class):
            color = tuple(int(v) for v in torch.randint(0, 255, (3,)))
            Image.new("RGB", (40, 36), color).save(root / f"class{c}" / f"{i:03d}.png")
    bad = [root / "class0" / f"zz_broken{i}.jpg" for i in range(corrupt)]
    for p in bad:
        p.write_bytes(b"this is not a jpeg")
    return bad


def test_corrupt_images_are_skipped_and_counted_or_stop_a_strict_run(tmp_path, tiny_cfg):
    bad = _image_folder(tmp_path / "images")
    common = ["data.dataset=imagefolder", f"data.path={tmp_path / 'images'}", "data.options={}",
              "schedule.batch_size=44", "schedule.total_steps=1", "train.save_every=1", "train.log_every=1"]
    run = _run(tiny_cfg(*common))
    skipped = load_checkpoint(run / "step_00000001.pt", torch.device("cpu"))["skipped_images"]
    assert sorted(skipped) == sorted(str(p) for p in bad)
    assert any(r.get("skipped_images") == 2 for r in read_log(run))

    with pytest.raises(CorruptImageError, match="zz_broken"):
        _run(tiny_cfg(*common, "name=strict", "data.strict=true"))


def test_missing_or_empty_data_root_is_one_clear_message(tmp_path, run_cli):
    proc = run_cli("pretrain", "--config", "byol_cifar_r18", check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "SIAMBENCH_DATA" in proc.stderr and "cifar-10-batches-py" in proc.stderr
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    proc = run_cli("pretrain", "--config", "byol_cifar_r18", "--data-root", str(tmp_path / "data"), check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "is empty" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoints").exists() or not find_checkpoints(tmp_path / "checkpoints" / "byol_cifar_r18")


def test_total_steps_0_exports_the_untrained_backbone_without_reading_data(tiny_cfg):
    # cifar10 with no data root: a run would stop at the missing data; the random-init export needs none.
    run = _run(tiny_cfg("schedule.total_steps=0", "data.dataset=cifar10", "seed=3"))
    sd, meta = load_backbone(run)
    assert meta["random_init"] is True and meta["steps"] == 0 and meta["seed"] == 3 and meta["name"] == "run"
    assert not find_checkpoints(run) and (run / "config.yaml").is_file()
    # the same weights as the `random:` checkpoint name of that architecture and seed
    reference, _ = load_backbone(materialize("resnet18@0.25,seed=3"))
    assert sd.keys() == reference.keys() and all(torch.equal(sd[k], reference[k]) for k in sd)
    with pytest.raises(SiambenchError, match="Nothing was overwritten"):
        _run(tiny_cfg("schedule.total_steps=0"))


def test_random_init_flag_names_its_own_run_folder(tmp_path, run_cli):
    proc = run_cli("pretrain", "--config", "simsiam_cifar_r18", "--random-init", f"output_dir={tmp_path}",
                   "model.width=0.25")
    run = tmp_path / "simsiam_cifar_r18_random_init"
    assert "random-init" in proc.stdout and str(run) in proc.stdout
    _, meta = load_backbone(run)
    assert (meta["stem"], meta["width"], meta["random_init"]) == ("cifar", 0.25, True)


@pytest.mark.parametrize("overrides, expected", [
    ([], (120, 20)),                                                   # 6 epochs × 20 steps, warm-up 1 epoch
    (["schedule.total_steps=0"], (0, 20)),
    (["schedule.warmup_steps=7"], (120, 7)),
    (["schedule.warmup_steps=0"], (120, 0)),
    (["schedule.warmup_epochs=0.25"], (120, 5)),
])
def test_schedule_steps_take_0_as_a_value_and_warmup_in_steps_or_epochs(overrides, expected):
    cfg = load_config("byol_shapes", overrides)
    assert schedule_steps(cfg, steps_per_epoch=20) == expected


def test_warmup_in_both_units_is_an_error():
    cfg = load_config("byol_cifar_r18")
    with pytest.raises(ConfigError, match="both"):
        apply_overrides(cfg, ["schedule.warmup_steps=20", "schedule.warmup_epochs=1"])
    both = Config({**cfg.to_dict(), "schedule": {**cfg.schedule.to_dict(), "warmup_steps": 20}})
    with pytest.raises(ConfigError, match="give one of them"):
        schedule_steps(both, 10)
    with pytest.raises(ConfigError, match="whole number"):
        schedule_steps(apply_overrides(cfg, ["schedule.total_steps=-1"]), 10)


def test_the_log_console_and_warning_share_one_collapse_statistic(tiny_cfg, capsys):
    run = _run(tiny_cfg("train.collapse_threshold=100"))  # every logged step is below: the warning fires
    rows = [r for r in read_log(run) if "loss" in r]
    assert all(0 < r[COLLAPSE_STAT] < 2 for r in rows) and not any("collapse_std" in r for r in rows)
    warnings = [r["warning"] for r in read_log(run) if "warning" in r]
    assert warnings and all(f"{COLLAPSE_STAT} = " in w for w in warnings)
    assert collapse_statistic(torch.randn(4096, 64)) == pytest.approx(1.0, abs=0.02)
    assert collapse_statistic(torch.ones(64, 32)) == pytest.approx(0.0, abs=1e-6)


def test_the_monitor_subsamples_its_bank_and_says_when_it_runs(tiny_cfg, capsys):
    run = _run(tiny_cfg("data.monitor_split=val", "data.monitor_bank_size=40"))
    out = capsys.readouterr().out
    assert "step 8: kNN monitor, features of 40 train and" in out and "data.monitor_split=null" in out
    assert [r["step"] for r in read_log(run) if "knn_top1" in r] == [8]
    bank = list(range(100))
    assert len(monitor_bank(bank, 40, 0)) == 40 and monitor_bank(bank, None, 0) is bank
    assert list(monitor_bank(bank, 40, 0)) == list(monitor_bank(bank, 40, 0))


def test_threads_and_workers_default_to_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        assert loader_workers(4) == 2 and loader_workers(1) == 1 and loader_workers(0) == 0
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        assert set_threads(None) == 1  # never above torch's own count, here the 1 just set
        torch.set_num_threads(8)
        assert set_threads(None) == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_threads(None) == 1
        with pytest.raises(ConfigError, match="positive integer"):
            set_threads(0)
    finally:
        torch.set_num_threads(before)
