"""A SimCLR v1 conversion (trained on raw RGB in [0, 1]) gets raw input in every stage; any other checkpoint gets
ImageNet-normalised input. Each stage reads the canonical backbone's ``input_stats``; these tests look at what
reaches ``conv1``."""

import pytest
import torch

from siambench.checkpoints import load
from siambench.configs import load_preset
from siambench.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalize
from siambench.eval_dense.detection.config import backbone_settings
from siambench.eval_dense.segmentation import build_fcn
from siambench.evaluate import EvalContext, run_stage
from siambench.models import build_resnet

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


@pytest.fixture(scope="module", params=["simclr-v1", "torchvision"])
def backbone(request, tmp_path_factory):
    """A quarter-width ResNet-18 in SimCLR v1's converted layout (flagged raw input) or torchvision's."""
    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    sd = {**model.state_dict(), "fc.weight": torch.randn(10, model.num_features), "fc.bias": torch.zeros(10)}
    path = tmp_path_factory.mktemp(request.param) / "r18.pth"
    torch.save({"state_dict": sd} if request.param == "simclr-v1" else sd, path)
    loaded = load(path)
    assert loaded.meta["source_format"] == request.param
    return loaded


def is_raw(backbone) -> bool:
    return backbone.meta["source_format"] == "simclr-v1"


def expected(images: torch.Tensor, backbone) -> torch.Tensor:
    """What conv1 must see for uint8 ``images``."""
    x = images.float() / 255
    return x if is_raw(backbone) else (x - MEAN) / STD


class Conv1Inputs:
    """Records every input of the ``conv1`` of each model ``CanonicalBackbone.build_model`` builds."""

    def __init__(self, monkeypatch, backbone):
        self.seen = []
        build = type(backbone).build_model

        def build_and_hook(this, **kwargs):
            model = build(this, **kwargs)
            model.conv1.register_forward_pre_hook(lambda _, args: self.seen.append(args[0].detach().clone()))
            return model

        monkeypatch.setattr(type(backbone), "build_model", build_and_hook)


def test_the_flag_is_the_backbones_input_stats(backbone):
    assert backbone.input_normalization == ("none" if is_raw(backbone) else "imagenet")
    assert backbone.input_stats == (((0.0,) * 3, (1.0,) * 3) if is_raw(backbone) else (IMAGENET_MEAN, IMAGENET_STD))


def test_frozen_and_finetuned_encoders(backbone, monkeypatch, tmp_path):
    """knn, linear, semisup and transfer feed ImageNet-normalised batches to ``EvalContext.encoder()``."""
    hook = Conv1Inputs(monkeypatch, backbone)
    ctx = EvalContext(checkpoint="unused", results_dir=str(tmp_path), device="cpu", progress=False)
    ctx.__dict__["backbone"] = backbone
    images = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    ctx.encoder().eval()(Normalize()(images))
    torch.testing.assert_close(hook.seen[0], expected(images, backbone))


def test_segmentation(backbone):
    model = build_fcn(backbone, 13, load_preset("segmentation", "tiny"), seed=0).eval()
    seen = []
    model.backbone.conv1.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    images = torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8)
    model(images)
    torch.testing.assert_close(seen[0], expected(images, backbone))


def test_depth_stage(backbone, monkeypatch, tmp_path):
    """One training step and the test pass of the depth stage: raw input stays in [0, 1]; normalised goes below 0."""
    hook = Conv1Inputs(monkeypatch, backbone)
    ctx = EvalContext(checkpoint="unused", results_dir=str(tmp_path), device="cpu", num_workers=0, progress=False)
    ctx.__dict__["backbone"] = backbone
    small = ["data.shapes.image_size=32", "data.shapes.train_images=16", "data.shapes.test_images=4",
             "data.crop=[32, 32]", "data.eval_batch_size=4", "schedule.batch_size=8", "schedule.steps=1",
             "model.up_channels=[8, 8, 8, 8]", "model.reduce_channels=16"]
    run_stage(ctx, "depth", "shapes", "tiny", small)
    assert len(hook.seen) == 2  # the training step and the one test batch
    for x in hook.seen:
        in_unit_range = bool(x.min() >= 0 and x.max() <= 1)
        assert in_unit_range == is_raw(backbone)


def test_detection_pixel_statistics(backbone):
    """detectron2 computes (x - PIXEL_MEAN) / PIXEL_STD on 0-255 RGB: raw input is x / 255."""
    settings = backbone_settings(backbone)
    if is_raw(backbone):
        assert (settings["MODEL.PIXEL_MEAN"], settings["MODEL.PIXEL_STD"]) == ([0.0] * 3, [255.0] * 3)
    else:
        assert settings["MODEL.PIXEL_MEAN"] == [123.675, 116.28, 103.53]
        assert settings["MODEL.PIXEL_STD"] == [58.395, 57.12, 57.375]
