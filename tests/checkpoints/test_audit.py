"""Architecture inference from shapes and the key audit, on state dicts made in memory."""

import json

import pytest
import torch

from siambench.checkpoints import load_backbone, save_backbone
from siambench.checkpoints.audit import audit, expected_shapes, infer_spec, looks_like_backbone, summarize
from siambench.errors import CheckpointError
from siambench.models.resnet import ARCHS, ResNet, ResNetSpec


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("width,stem", [(1.0, "imagenet"), (2.0, "imagenet"), (0.25, "cifar")])
def test_expected_shapes_are_the_models_and_the_spec_is_inferred_back(arch, width, stem):
    spec = ResNetSpec(arch, width, stem)
    with torch.device("meta"):
        model = ResNet(spec)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(expected_shapes(spec).items()) == list(shapes.items())
    tensors = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    assert infer_spec(tensors) == spec
    assert audit(tensors, spec).ok


def test_file_names_do_not_matter(tmp_path):
    """A ResNet-18 saved as 'resnet50_x2.pth' is a ResNet-18."""
    from siambench.checkpoints import load

    model = ResNet(ResNetSpec("resnet18", 0.5))
    torch.save(model.state_dict(), tmp_path / "resnet50_x2.pth")
    assert load(tmp_path / "resnet50_x2.pth").spec == ResNetSpec("resnet18", 0.5)


def test_truncated_stage_is_reported_as_missing_blocks():
    spec = ResNetSpec("resnet50", 0.25)
    tensors = {k: torch.empty(s, device="meta") for k, s in expected_shapes(spec).items()
               if not k.startswith("layer3.5.")}
    assert infer_spec(tensors) == spec
    result = audit(tensors, spec)
    assert "missing layer3.5.* (15 tensors)" in result.problem("x")


def test_num_batches_tracked_is_optional():
    spec = ResNetSpec("resnet18", 0.25)
    tensors = {k: torch.empty(s, device="meta") for k, s in expected_shapes(spec).items()
               if not k.endswith("num_batches_tracked")}
    result = audit(tensors, spec)
    assert result.ok and len(result.filled) == 20 and result.found == result.expected


def test_backbone_names_are_recognised_under_any_prefix():
    assert looks_like_backbone("module.encoder_k.layer3.4.conv2.weight")
    assert looks_like_backbone("teacher.bn1.running_mean") and looks_like_backbone("conv1.weight")
    assert not looks_like_backbone("projector.0.weight") and not looks_like_backbone("module.queue")


def test_summary_names_whole_stages():
    spec = ResNetSpec("resnet18", 0.25)
    universe = [k for k in expected_shapes(spec) if not k.endswith("num_batches_tracked")]
    layer4 = [k for k in universe if k.startswith("layer4.")]
    assert summarize(layer4, universe) == f"layer4.* ({len(layer4)} tensors)"
    assert summarize(["layer1.0.conv1.weight"], universe) == "layer1.0.conv1.weight"


def test_non_resnet_is_named_as_such():
    with pytest.raises(CheckpointError, match="holds no ResNet"):
        infer_spec({"encoder.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"\[64, 3, 5, 5\]"):
        infer_spec({"conv1.weight": torch.zeros(64, 3, 5, 5), "layer1.0.conv1.weight": torch.zeros(1)})


def test_backbone_file_round_trip_keeps_padding(tmp_path):
    spec = ResNetSpec("resnet18", 0.25, padding="tf_same")
    sd = ResNet(spec).state_dict()
    save_backbone(tmp_path, sd, spec, source_format="byol-jax")
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["padding"] == "tf_same" and meta["arch"] == "resnet18"
    loaded, meta = load_backbone(tmp_path)
    assert set(loaded) == set(sd)
    from siambench.checkpoints import load

    backbone = load(tmp_path)
    assert backbone.spec == spec and backbone.meta["source_format"] == "siambench-backbone"
    assert backbone.meta["source_meta"]["source_format"] == "byol-jax"
