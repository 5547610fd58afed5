import pytest

from siambench.pretrain.config import load_config

TINY = [
    "name=run",
    "data.options={num_images: 64, image_size: 32}",
    "data.num_workers=0",
    "data.monitor_split=null",
    "model.projector.hidden_dim=32",
    "model.projector.out_dim=16",
    "model.predictor.hidden_dim=32",
    "aug.view1.crop_size=32",
    "aug.view2.crop_size=32",
    "schedule.batch_size=16",
    "schedule.total_steps=8",
    "train.progress=false",
    "train.log_every=2",
    "train.save_every=4",
]


@pytest.fixture
def tiny_overrides(tmp_path):
    """A BYOL run small enough to take seconds: quarter-width ResNet-18, 32 px, batch 16."""
    return [f"output_dir={tmp_path / 'out'}", *TINY]


@pytest.fixture
def tiny_cfg(tiny_overrides):
    def make(*extra):
        return load_config("byol_shapes", [*tiny_overrides, *extra])

    return make
