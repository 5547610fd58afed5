"""``padding="tf_same"`` against an independent implementation of TensorFlow's 'SAME' rule.

TF documents 'SAME' as: out = ceil(in / stride); pad_total = max((out - 1) * stride
+ (k - 1) * dilation + 1 - in, 0); pad_before = pad_total // 2; pad_after = the
rest. The reference forward below applies that rule by hand to every
convolution and the max-pool of a ResNet, from the state dict alone.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from siambench.models.resnet import ARCHS, TFSameConv2d, TFSameMaxPool2d, build_resnet


def tf_pads(size, k, stride, dilation=1):
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def same_conv(x, w, stride):
    top, bottom = tf_pads(x.shape[2], w.shape[2], stride)
    left, right = tf_pads(x.shape[3], w.shape[3], stride)
    return F.conv2d(F.pad(x, (left, right, top, bottom)), w, stride=stride)


def same_maxpool(x, k=3, stride=2):
    top, bottom = tf_pads(x.shape[2], k, stride)
    left, right = tf_pads(x.shape[3], k, stride)
    return F.max_pool2d(F.pad(x, (left, right, top, bottom), value=float("-inf")), k, stride)


def bn(x, sd, name):
    return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                        sd[f"{name}.bias"], training=False, eps=1e-5)


def reference_forward(sd, arch, x):
    """A JAX-style ResNet v1.5 forward: every conv padded by TF's rule, stride on the 3×3 conv."""
    block, layout = ARCHS[arch]
    bottleneck = block.__name__ == "Bottleneck"
    x = F.relu(bn(same_conv(x, sd["conv1.weight"], 2), sd, "bn1"))
    x = same_maxpool(x)
    for stage, blocks in enumerate(layout):
        for b in range(blocks):
            p = f"layer{stage + 1}.{b}"
            stride = 2 if stage > 0 and b == 0 else 1
            strides = (1, stride, 1) if bottleneck else (stride, 1)
            out = x
            for i, s in enumerate(strides, 1):
                out = bn(same_conv(out, sd[f"{p}.conv{i}.weight"], s), sd, f"{p}.bn{i}")
                if i < len(strides):
                    out = F.relu(out)
            shortcut = x
            if f"{p}.downsample.0.weight" in sd:
                shortcut = bn(same_conv(x, sd[f"{p}.downsample.0.weight"], stride), sd, f"{p}.downsample.1")
            x = F.relu(out + shortcut)
    return x


@pytest.mark.parametrize("size", [5, 6, 7, 8, 31, 64])
@pytest.mark.parametrize("k,stride", [(1, 2), (3, 2), (7, 2), (3, 1)])
def test_conv_pads_as_tf(size, k, stride):
    torch.manual_seed(size)
    conv = TFSameConv2d(3, 4, k, stride, padding=0, bias=False)
    x = torch.randn(1, 3, size, size + 1)
    torch.testing.assert_close(conv(x), same_conv(x, conv.weight, stride), rtol=0, atol=0)
    assert conv(x).shape[-2:] == (math.ceil(size / stride), math.ceil((size + 1) / stride))


@pytest.mark.parametrize("size", [5, 6, 7, 8, 112])
def test_maxpool_pads_as_tf(size):
    x = torch.randn(2, 3, size, size + 3)
    torch.testing.assert_close(TFSameMaxPool2d(3, 2)(x), same_maxpool(x), rtol=0, atol=0)


@pytest.mark.parametrize("arch", ["resnet50", "resnet18"])
@pytest.mark.parametrize("size", [64, 71])
def test_resnet_tf_same_matches_the_reference_and_differs_from_torch(arch, size, float64):
    """In float64: two implementations of the same maths, summed in different orders."""
    torch.manual_seed(0)
    model = build_resnet(arch, 0.25, padding="tf_same").eval()
    sd = model.state_dict()
    with torch.no_grad():
        for key, value in sd.items():
            if key.endswith("running_var"):
                value.uniform_(0.5, 1.5)
            elif key.endswith(("running_mean", "bn1.bias", "bn2.bias", "bn3.bias")):
                value.uniform_(-0.1, 0.1)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ours = model.forward_features(x)
        ref = reference_forward(sd, arch, x)
        torch_padded = build_resnet(arch, 0.25)
        torch_padded.load_state_dict(sd)
        symmetric = torch_padded.eval().forward_features(x)
    assert ours.shape == ref.shape == symmetric.shape
    assert ours.dtype == torch.float64 and (ours - ref).abs().max().item() < 1e-10
    assert (symmetric - ref).abs().max().item() > 1e-3


def test_tf_same_keeps_the_state_dict_keys():
    torch_keys = {k: v.shape for k, v in build_resnet("resnet50", 0.25).state_dict().items()}
    assert {k: v.shape for k, v in build_resnet("resnet50", 0.25, padding="tf_same").state_dict().items()} == torch_keys


def test_spec_records_padding_and_rejects_unknown():
    from siambench.models.resnet import ResNetSpec

    assert ResNetSpec().to_dict() == {"arch": "resnet50", "width": 1.0, "stem": "imagenet", "padding": "torch"}
    with pytest.raises(ValueError, match="padding"):
        ResNetSpec(padding="reflect")
