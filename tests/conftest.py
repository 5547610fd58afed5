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


@pytest.fixture
def run_cli():
    """Run ``python -m siambench ARGS`` in a subprocess; fails the test on a non-zero exit unless check=False."""

    def run(*args, check=True, **kwargs):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run([sys.executable, "-m", "siambench", *args], capture_output=True, text=True, env=env, **kwargs)
        if check and proc.returncode != 0:
            raise AssertionError(f"siambench {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return proc

    return run


@pytest.fixture
def random_backbone(tmp_path):
    """A random-init quarter-width ResNet-18 written as a siambench backbone file."""
    from siambench.checkpoints import save_backbone
    from siambench.models import backbone_state_dict, build_resnet

    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    save_backbone(tmp_path / "random", backbone_state_dict(model), model.spec, method="random-init", name="random-init")
    return tmp_path / "random"
