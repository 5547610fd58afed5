import pytest
import torch

from siambench.checkpoints import save_backbone
from siambench.models import backbone_state_dict, build_resnet


@pytest.fixture
def random_backbone(tmp_path):
    """A random-init quarter-width ResNet-18 written as a siambench backbone file."""
    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    save_backbone(tmp_path / "random", backbone_state_dict(model), model.spec, method="random-init", name="random-init")
    return tmp_path / "random"
