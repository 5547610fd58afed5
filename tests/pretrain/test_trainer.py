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
from siambench.errors import CorruptImageError, SiambenchError, TrainingDivergedError
from siambench.engine.logging import read_log
from siambench.pretrain.state import find_checkpoints, load_checkpoint
from siambench.pretrain.trainer import export_only, pretrain


def _run(cfg, resume=None):
    return pretrain(cfg, resume=resume)


def test_a_run_writes_checkpoints_config_log_and_a_torchvision_backbone(tiny_cfg):
    cfg = tiny_cfg("method=simsiam", "optim.name=sgd", "optim.base_lr=0.05", "model.projector.out_dim=32",
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


def test_killed_run_resumes_bit_identically(tmp_path, tiny_overrides, run_cli):
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
    cfg = tiny_cfg("optim.name=sgd", "optim.base_lr=1.0e35", "schedule.warmup_epochs=1", "train.save_every=1",
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
