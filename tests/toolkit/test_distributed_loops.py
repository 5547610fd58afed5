"""Training loops under torchrun (segmentation, depth, fine-tuning): two gloo processes train and score as one does."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from siambench.checkpoints import CanonicalBackbone, save_backbone

pytestmark = pytest.mark.slow  # torchrun processes: tens of seconds each
from siambench.configs import apply_overrides, load_preset
from siambench.data import build_dataset
from siambench.eval_dense import depth, segmentation
from siambench.models import backbone_state_dict, build_resnet
from siambench.toolkit import finetune
from siambench.toolkit.finetune import Classifier

# Both tasks on 32-pixel shapes scenes, a global batch of 8 and 4 steps.
SEGMENTATION = ["schedule.iterations=4", "schedule.batch_size=8", "data.crop_size=32", "data.eval_crop_size=32",
                "data.eval_batch_size=4", "sweep.lr=[0.05]"]
FINETUNE = ["data.crop_size=32", "schedule.batch_size=8"]
DEPTH = ["data.shapes.image_size=32", "data.shapes.train_images=32", "data.shapes.test_images=12",
         "data.crop=[32, 32]", "data.eval_batch_size=4", "schedule.batch_size=8", "schedule.steps=4",
         "model.up_channels=[16, 16, 8, 8]"]

WORKER = textwrap.dedent(
    """
    import json, sys
    import torch
    from siambench.engine.dist import init_distributed
    torch.set_default_dtype(torch.float64)
    sys.path.insert(0, sys.argv[1])
    from test_distributed_loops import run

    task, out = sys.argv[2], sys.argv[3]
    rank = init_distributed("cpu").rank
    params, scores = run(task, sys.argv[4:])
    torch.save(params, f"{out}/{task}{rank}.pt")
    with open(f"{out}/{task}{rank}.json", "w") as fh:
        json.dump(scores, fh)
    """
)


def backbone():
    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    return CanonicalBackbone(backbone_state_dict(model), model.spec, {"sha256": "0" * 64})


def setup(task: str, overrides: list[str]):
    """``task``'s config, training and test sets, and its network on a fixed random backbone."""
    if task == "segmentation":
        cfg = apply_overrides(load_preset("segmentation", "tiny"), [*SEGMENTATION, *overrides])
        train_set = build_dataset("shapes_seg", "train", num_images=16, image_size=32)
        test_set = build_dataset("shapes_seg", "test", num_images=10, image_size=32)
        return cfg, train_set, test_set, segmentation.build_fcn(backbone(), train_set.num_classes, cfg, seed=0)
    if task == "finetune":
        cfg = apply_overrides(load_preset("semisup", "tiny"), [*FINETUNE, *overrides])
        train_set = build_dataset("shapes", "train", num_images=24, image_size=32)
        test_set = build_dataset("shapes", "test", num_images=12, image_size=32)
        return cfg, train_set, test_set, Classifier(backbone().build_model(), 12, torch.Generator().manual_seed(0))
    cfg = apply_overrides(load_preset("depth", "tiny"), [*DEPTH, *overrides])
    return cfg, depth.ShapesDepth("train", 32, 32), depth.ShapesDepth("test", 32, 12), \
        depth.build_depth_net(backbone(), cfg, seed=0)


def score(task, net, test_set, cfg) -> dict:
    if task == "finetune":
        logits, _ = finetune.predict(net, test_set, range(len(test_set)), cfg, progress=False)
        return {"logits": logits.ravel().tolist()}
    if task == "segmentation":
        return segmentation.evaluate(net, test_set, None, cfg, progress=False)
    return depth.score(net, test_set, cfg, progress=False)


def run(task: str, overrides: list[str]):
    """Train ``task``'s network for a few steps and score it; returns its state and scores."""
    cfg, train_set, test_set, net = setup(task, overrides)
    if task == "finetune":
        finetune.finetune(net, train_set, list(range(len(train_set))), 0.05, 1, cfg, seed=0, progress=False, steps=3)
    elif task == "segmentation":
        segmentation.train(net, train_set, list(range(len(train_set))), 0.05, cfg, seed=0, progress=False)
    else:
        depth.train(net, train_set, cfg, seed=0, progress=False)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, score(task, net, test_set, cfg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _max_diff(a: dict, b: dict) -> float:
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.mark.parametrize("task", ["segmentation", "depth", "finetune"])
def test_two_gloo_processes_train_and_score_as_one_process(task, tmp_path, float64):
    """In float64, so that the two paths' different summation orders stay far below the bars on any CPU."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(script), os.path.dirname(__file__), task, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"{task}{r}.pt", weights_only=True) for r in range(2))
    assert _max_diff(rank0, rank1) == 0  # weights and BN statistics
    assert all(v.dtype == torch.float64 for v in rank0.values() if v.is_floating_point())
    scores0, scores1 = (json.loads((tmp_path / f"{task}{r}.json").read_text()) for r in range(2))
    assert scores0 == scores1

    # One process with the global batch as two micro-batches: the same samples,
    # augmentations and per-half BN statistics as the two processes.
    single, _ = run(task, ["schedule.accumulate=2"])
    params = {n for n, _ in setup(task, [])[3].named_parameters()}
    assert _max_diff({n: rank0[n] for n in params}, single) < 1e-9
    whole, _ = run(task, [])
    assert _max_diff({n: rank0[n] for n in params}, whole) > 1e-3

    # Scoring shards the test set over the ranks and sums: one process scoring
    # the same network gives the same numbers.
    cfg, _, test_set, net = setup(task, [])
    net.load_state_dict(rank0)
    alone = score(task, net, test_set, cfg)
    assert alone.keys() == scores0.keys()
    for name, value in alone.items():
        # Predictions from batches of another make-up, summed in another order.
        assert scores0[name] == pytest.approx(value, rel=1e-9, nan_ok=True), name


def test_gpus_flag_runs_the_command_under_torchrun_and_writes_one_record(tmp_path):
    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    save_backbone(tmp_path / "random", backbone_state_dict(model), model.spec, method="random-init", name="random")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "siambench", "eval", "segmentation", "--ckpt", str(tmp_path / "random"),
           "--gpus", "2", "--device", "cpu", "--results", str(tmp_path / "results"), "--no-progress",
           *SEGMENTATION, "schedule.iterations=2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = list((tmp_path / "results").glob("segmentation__*.json"))
    assert len(records) == 1 and proc.stdout.count("record written") == 1
    record = json.loads(records[0].read_text())
    assert record["hyperparameters"]["test_images"] == 500 and record["hyperparameters"]["chosen"]["batch_size"] == 8
