import pytest
import torch
import torchvision

from siambench.models import ARCHS, backbone_state_dict, build_resnet, byol_mlp, simsiam_predictor, simsiam_projector


@pytest.mark.parametrize("arch", ["resnet18", "resnet50"])
def test_width1_matches_torchvision_keys_shapes_and_outputs(arch):
    ours = build_resnet(arch, 1.0, "imagenet", num_classes=1000)
    ref = getattr(torchvision.models, arch)()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ours.load_state_dict(ref.state_dict())
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=0)


def test_resnet200_has_the_3_24_36_3_bottleneck_layout():
    spec = ARCHS["resnet200"]
    assert spec[0] is torchvision.models.resnet.Bottleneck and spec[1] == (3, 24, 36, 3)
    sd = build_resnet("resnet200", 1.0).state_dict()
    assert "layer2.23.conv3.weight" in sd and "layer2.24.conv3.weight" not in sd
    assert "layer3.35.conv3.weight" in sd and "layer3.36.conv3.weight" not in sd


def test_width_multiplier_scales_every_channel_count():
    sd = build_resnet("resnet50", 2.0).state_dict()
    assert sd["conv1.weight"].shape == (128, 3, 7, 7)
    assert sd["layer1.0.conv1.weight"].shape == (128, 128, 1, 1)
    assert sd["layer4.2.conv3.weight"].shape == (4096, 1024, 1, 1)
    assert build_resnet("resnet50", 4.0).num_features == 8192
    assert build_resnet("resnet18", 0.25).num_features == 128
    with pytest.raises(ValueError):
        build_resnet("resnet18", 0.3)


def test_cifar_stem_keeps_resolution_and_has_no_maxpool():
    model = build_resnet("resnet18", 1.0, "cifar").eval()
    assert model.conv1.weight.shape == (64, 3, 3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    fmap = model.forward_features(torch.randn(1, 3, 32, 32))
    assert fmap.shape == (1, 512, 4, 4)
    imagenet = build_resnet("resnet18", 1.0, "imagenet").eval().forward_features(torch.randn(1, 3, 32, 32))
    assert imagenet.shape == (1, 512, 1, 1)


def test_backbone_state_dict_loads_into_torchvision_with_only_fc_missing():
    model = build_resnet("resnet50", 1.0)
    sd = backbone_state_dict(model)
    assert not any(k.startswith("fc.") for k in sd)
    result = torchvision.models.resnet50().load_state_dict(sd, strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"] and not result.unexpected_keys


def test_zero_init_residual_zeroes_the_last_bn_of_each_block():
    model = build_resnet("resnet50", 1.0, zero_init_residual=True)
    assert model.layer1[0].bn3.weight.abs().sum() == 0 and model.layer1[0].bn1.weight.abs().sum() > 0


def test_byol_mlp_layout():
    mlp = byol_mlp(2048, 4096, 256)
    first, bn, _, last = mlp
    assert first.bias is not None and last.bias is None
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.num_features == 4096
    assert mlp(torch.randn(4, 2048)).shape == (4, 256)


def test_simsiam_heads_layout():
    proj = simsiam_projector(2048, 2048, 2048, num_layers=3)
    linears = [m for m in proj if isinstance(m, torch.nn.Linear)]
    bns = [m for m in proj if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(linears) == 3 and len(bns) == 3
    assert bns[-1].affine is False and bns[0].affine is True
    pred = simsiam_predictor(2048, 512)
    assert pred[0].out_features == 512 and pred[-1].bias is not None and isinstance(pred[-1], torch.nn.Linear)
    assert len(simsiam_projector(512, 2048, 2048, num_layers=2)) == 5
