"""Every export: loaded by the consumer's own model class where it is installed, computing the same features."""

import pickle
import re

import numpy as np
import pytest
import torch
import torchvision

from siambench.checkpoints import export, load
from siambench.checkpoints.canonical import CanonicalBackbone
from siambench.cli import main
from siambench.models.resnet import ResNetSpec, backbone_state_dict, build_resnet


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    """A ResNet-50 with torchvision's initialisation and randomised BN statistics, read back through ``load``."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("export") / "resnet50.pth"
    torch.save(model.state_dict(), path)
    return load(path)


@pytest.fixture(scope="module")
def images():
    """Float64 input: each export is run in float64 against our network, so the two agree to rounding on any CPU."""
    return torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.fixture(scope="module")
def reference(canonical, images):
    with torch.no_grad():
        return canonical.build_model().double().eval()(images)


def max_diff(a, b):
    return (a - b).abs().max().item()


def test_torchvision_export_loads_with_only_fc_missing(canonical, images, reference, tmp_path):
    paths, notes = export(canonical, "torchvision", tmp_path / "r50.pth")
    sd = torch.load(paths[0], weights_only=True)
    model = torchvision.models.resnet50()
    result = model.load_state_dict(sd, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys
    model.fc = torch.nn.Identity()
    with torch.no_grad():
        assert max_diff(model.double().eval()(images), reference) < 1e-10


def test_timm_export_loads_into_timm_resnet(canonical, images, reference, tmp_path):
    timm = pytest.importorskip("timm")
    paths, _ = export(canonical, "timm", tmp_path / "r50_timm.pth")
    model = timm.create_model("resnet50", num_classes=0, checkpoint_path=str(paths[0]))
    with torch.no_grad():
        assert max_diff(model.double().eval()(images), reference) < 1e-10
    result = timm.create_model("resnet50").load_state_dict(torch.load(paths[0], weights_only=True), strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys


def test_safetensors_export_keeps_tensors_and_metadata(tmp_path):
    from safetensors import safe_open

    sd = backbone_state_dict(build_resnet("resnet18", 0.25))
    backbone = CanonicalBackbone(sd, ResNetSpec("resnet18", 0.25, padding="tf_same"),
                                 {"source_format": "byol-jax", "sha256": "ab" * 32, "input_normalization": "none"})
    paths, _ = export(backbone, "safetensors", tmp_path / "b.safetensors")
    with safe_open(str(paths[0]), "pt") as f:
        meta = f.metadata()
    assert (meta["arch"], meta["width"], meta["padding"]) == ("resnet18", "0.25", "tf_same")
    again = load(paths[0])
    assert again.spec == backbone.spec and again.meta["input_normalization"] == "none"
    assert all(torch.equal(again.state_dict[k], v) for k, v in sd.items())


def detectron2_rules(key):
    """PROTOCOLS C.5 restated independently: stem prefix, res2..res5, convN.norm, shortcut(.norm)."""
    key = key if re.match(r"layer\d", key) else "stem." + key
    key = re.sub(r"layer(\d)", lambda m: f"res{int(m[1]) + 1}", key)
    key = re.sub(r"\bbn(\d)", r"conv\1.norm", key)
    return key.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def test_detectron2_export_has_exactly_the_rules_keys_and_shapes(canonical, tmp_path):
    paths, _ = export(canonical, "detectron2", tmp_path / "r50.pkl")
    with open(paths[0], "rb") as f:
        obj = pickle.load(f)
    assert obj["__author__"] == "siambench" and obj["matching_heuristics"] is True
    expected = {detectron2_rules(k): tuple(v.shape) for k, v in canonical.state_dict.items()}
    assert {k: v.shape for k, v in obj["model"].items()} == expected
    assert all(isinstance(v, np.ndarray) for v in obj["model"].values())
    assert "stem.conv1.norm.running_var" in obj["model"] and "res5.2.conv3.norm.weight" in obj["model"]
    assert "res2.0.shortcut.weight" in obj["model"] and "res3.0.shortcut.norm.bias" in obj["model"]
    back = load(paths[0])
    assert back.meta["source_format"] == "detectron2"
    assert all(torch.equal(back.state_dict[k], v) for k, v in canonical.state_dict.items())


def test_detectron2_backbone_computes_the_same_features(canonical, images, reference, tmp_path):
    pytest.importorskip("detectron2", reason="detectron2 is not installed (it has no PyPI wheel)")
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.config import get_cfg
    from detectron2.layers import ShapeSpec
    from detectron2.modeling.backbone import build_resnet_backbone

    paths, _ = export(canonical, "detectron2", tmp_path / "r50.pkl")
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    backbone = build_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    DetectionCheckpointer(backbone).load(str(paths[0]))
    backbone.double()
    with torch.no_grad():
        res5 = backbone(images)["res5"].mean((2, 3))
    assert max_diff(res5, reference) < 1e-10


def test_mmseg_export_checkpoint_and_config(canonical, tmp_path):
    paths, _ = export(canonical, "mmseg", tmp_path / "r50_mmseg.pth")
    ckpt, config = paths
    obj = torch.load(ckpt, weights_only=True)
    assert set(obj) == {"state_dict", "meta"}
    assert {k: v.shape for k, v in obj["state_dict"].items()} == {k: v.shape for k, v in canonical.state_dict.items()}
    namespace = {}
    exec(compile(config.read_text(), str(config), "exec"), namespace)
    backbone = namespace["model"]["backbone"]
    assert (backbone["type"], backbone["depth"], backbone["style"], backbone["deep_stem"]) == ("ResNet", 50,
                                                                                               "pytorch", False)
    assert backbone["init_cfg"] == {"type": "Pretrained", "checkpoint": str(ckpt.resolve())}
    assert backbone["base_channels"] == backbone["stem_channels"] == 64
    # The rest is mmselfsup's VOC12aug FCN-D8 benchmark (PROTOCOLS C.6, mmseg's fcn_r50-d8_4xb4-20k_voc12aug-512x512).
    assert (backbone["dilations"], backbone["strides"]) == ((1, 1, 2, 4), (1, 2, 1, 1))
    model = namespace["model"]
    assert (model["decode_head"]["in_channels"], model["auxiliary_head"]["in_channels"]) == (2048, 1024)
    assert model["decode_head"]["num_classes"] == model["auxiliary_head"]["num_classes"] == 21
    assert namespace["optimizer"] == {"type": "SGD", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0005}
    assert namespace["train_cfg"]["max_iters"] == 20000 and namespace["crop_size"] == (512, 512)
    assert namespace["train_dataloader"]["batch_size"] == 4
    assert namespace["data_preprocessor"]["mean"] == [123.675, 116.28, 103.53]


def test_mmseg_resnet_computes_the_same_features(canonical, images, reference, tmp_path):
    pytest.importorskip("mmseg", reason="mmsegmentation is not installed (it needs a compiled mmcv)")
    from mmseg.models.backbones import ResNet as MMResNet

    paths, _ = export(canonical, "mmseg", tmp_path / "r50_mmseg.pth")
    namespace = {}
    exec(compile(paths[1].read_text(), str(paths[1]), "exec"), namespace)
    cfg = dict(namespace["model"]["backbone"])
    cfg.pop("type")
    model = MMResNet(**cfg)
    model.init_weights()
    with torch.no_grad():
        last = model.double().eval()(images)[-1].mean((2, 3))
    assert max_diff(last, reference) < 1e-10


def test_exports_refuse_what_the_consumer_cannot_build(tmp_path):
    sd = backbone_state_dict(build_resnet("resnet18", 1.0, "cifar"))
    cifar = CanonicalBackbone(sd, ResNetSpec("resnet18", 1.0, "cifar"), {"source_format": "solo-learn"})
    for target in ("detectron2", "mmseg", "timm"):
        with pytest.raises(Exception, match="CIFAR-stem"):
            export(cifar, target, tmp_path / f"x.{target}")
    wide = CanonicalBackbone(backbone_state_dict(build_resnet("resnet18", 2.0)), ResNetSpec("resnet18", 2.0), {})
    with pytest.raises(Exception, match="64-channel stem"):
        export(wide, "timm", tmp_path / "w.pth")


def test_tf_same_exports_say_that_the_consumer_pads_differently(tmp_path):
    sd = backbone_state_dict(build_resnet("resnet18", 0.25))
    backbone = CanonicalBackbone(sd, ResNetSpec("resnet18", 0.25, padding="tf_same"), {"source_format": "byol-jax"})
    _, notes = export(backbone, "torchvision", tmp_path / "b.pth")
    assert any("'SAME' padding" in n for n in notes)
    _, notes = export(backbone, "safetensors", tmp_path / "b.safetensors")
    assert not any("'SAME' padding" in n for n in notes)


def test_convert_command_writes_and_reports(canonical, tmp_path, capsys):
    src = canonical.meta["source_path"]
    out = tmp_path / "r50.pkl"
    assert main(["ckpt", "convert", src, "--to", "detectron2", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "resnet50" in text and out.is_file()
    assert main(["ckpt", "convert", str(tmp_path / "missing.pth"), "--to", "timm", "-o", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
