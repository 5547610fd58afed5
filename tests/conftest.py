import os
import subprocess
import sys

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Generated data (shapes) is cached in a folder of the test session, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SIAMBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("SIAMBENCH_DATA", raising=False)
    yield
    mp.undo()


def siambench(*args, check=True, **kwargs):
    """Run ``python -m siambench ARGS`` in a subprocess; fails the test on a non-zero exit unless check=False."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "siambench", *args], capture_output=True, text=True, env=env, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"siambench {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture
def run_cli():
    return siambench


def save_random_backbone(folder):
    """A random-init quarter-width ResNet-18 (the byol_shapes architecture) written as a siambench backbone file."""
    from siambench.checkpoints import save_backbone
    from siambench.models import backbone_state_dict, build_resnet

    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    save_backbone(folder, backbone_state_dict(model), model.spec, method="random-init", name="random-init")
    return folder


@pytest.fixture
def random_backbone(tmp_path):
    return save_random_backbone(tmp_path / "random")


@pytest.fixture(scope="session")
def make_pretrain_run(tmp_path_factory):
    """The run `make pretrain` makes (the byol_shapes preset, unchanged), trained once per test session.

    About five minutes on two cores: the tests that use it check that the
    embedded default learns, which no shorter run shows.
    """
    return pretrain_preset("byol_shapes", tmp_path_factory.mktemp("pretrain"))


@pytest.fixture(scope="session")
def simsiam_shapes_run(tmp_path_factory):
    """`make pretrain CONFIG=simsiam_shapes`: the preset unchanged, trained once per session (as long as BYOL's)."""
    return pretrain_preset("simsiam_shapes", tmp_path_factory.mktemp("pretrain-simsiam"))


def pretrain_preset(preset: str, out):
    """``siambench pretrain --config PRESET`` unchanged (progress bars aside) into ``out``; returns the run folder."""
    cmd = [sys.executable, "-m", "siambench", "pretrain", "--config", preset, f"output_dir={out}", "train.progress=false"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / preset


@pytest.fixture(scope="session")
def random_init_run(tmp_path_factory):
    """make_pretrain_run's architecture at random init, seed 0."""
    return save_random_backbone(tmp_path_factory.mktemp("random") / "random-init")


@pytest.fixture(scope="session")
def embedded_scores(make_pretrain_run, random_init_run, tmp_path_factory):
    """``siambench eval-all --tasks knn,linear`` for make pretrain's backbone and for random init, once per session.

    Returns ``{(checkpoint name, task, protocol): primary metric}`` on shapes'
    test split; the learning tests share it rather than each computing it.
    """
    from siambench.report import load_records

    results = tmp_path_factory.mktemp("embedded-results")
    for ckpt in (make_pretrain_run, random_init_run):
        siambench("eval-all", "--ckpt", str(ckpt), "--results", str(results), "--tasks", "knn,linear", "--no-progress")
    return {
        (r["checkpoint"]["name"], r["task"], r["protocol"]): r["metrics"][r["primary_metric"]]
        for r in load_records(results)
        if r["dataset"] == "shapes"
    }


@pytest.fixture
def float64():
    """Tensors and modules made in the test are float64, so two code paths that sum in different orders agree
    to ~1e-12 on any CPU (float32 results differ between AVX2 and AVX-512 kernels)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
