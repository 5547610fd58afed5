"""Every input format: write a random ResNet in the format's real layout, load it back, get the same tensors."""

import json

import pytest
import torch

from siambench.checkpoints import load
from siambench.checkpoints.source import resolve_path
from siambench.cli import main
from siambench.engine.io import sha256_file
from siambench.errors import CheckpointError

FORMATS = [
    "torchvision", "timm", "safetensors", "siambench-backbone", "siambench-native", "moco", "mocov3", "simsiam",
    "simclr-v1", "byol-jax", "swav", "dino", "barlowtwins", "vissl", "mmselfsup", "solo-learn", "lightly",
    "lightning", "detectron2", "generic", "lightly-sequential", "wrapped",
]
CASES = [(fmt, arch) for fmt in FORMATS for arch in ("resnet50", "resnet200") if (fmt, arch) != ("timm", "resnet200")]
# The formats that publish wide ResNets: SimCLR 2×/4×, BYOL R200 2× (here R50 2×), SwAV RN50-w2.
CASES += [("simclr-v1", "resnet50x2"), ("solo-learn", "resnet18-cifar")]
HASHED = {"torchvision", "byol-jax", "siambench-backbone"}


def assert_same_backbone(backbone, sd, filled_ok=False):
    expected = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    assert list(backbone.state_dict) == list(expected)
    for key, value in backbone.state_dict.items():
        if filled_ok and key.endswith("num_batches_tracked"):
            assert value.item() == 0
            continue
        assert value.dtype == expected[key].dtype and torch.equal(value, expected[key]), key


def assert_dropped(meta, dropped):
    for fragment, count in dropped.items():
        found = meta["dropped"]
        assert any(fragment in label and n == count for label, n in found.items()), (fragment, found)


@pytest.mark.parametrize("fmt,arch", CASES)
def test_round_trip_is_bitwise(fmt, arch, net, write):
    spec, sd = net(arch)
    # BYOL's protocol-2 pickles are slow to write and read: the target network, whose presence proves that the
    # online one is read, is written beside the ResNet-200 only.
    options = {"full_target": arch != "resnet50"} if fmt == "byol-jax" else {}
    path, dropped = write(fmt, sd, spec, **options)
    backbone = load(path)
    assert backbone.meta["source_format"] == ("torchvision" if fmt == "timm" else fmt)
    assert (backbone.spec.arch, backbone.spec.width, backbone.spec.stem) == (spec.arch, spec.width, spec.stem)
    assert backbone.spec.padding == ("tf_same" if fmt == "byol-jax" else "torch")
    assert_same_backbone(backbone, sd, filled_ok=fmt == "byol-jax")
    assert_dropped(backbone.meta, dropped if fmt != "byol-jax" or options["full_target"] else {})
    if fmt in HASHED:
        assert backbone.meta["sha256"] == sha256_file(resolve_path(path))
    assert backbone.meta["num_tensors"] == backbone.meta["expected_tensors"]
    if fmt == "timm":
        assert load(path, format="timm").meta["source_format"] == "timm"
    if fmt == "byol-jax":
        # Haiku keeps no num_batches_tracked; the online network is read, its optimiser state and rng set aside.
        assert backbone.meta["filled_num_batches_tracked"] == len([k for k in sd if k.endswith("batches_tracked")])
        assert {"opt_state", "rng", "step"} <= set(backbone.meta["ignored_entries"])
        if arch == "resnet200":
            model = backbone.build_model()
            assert type(model.conv1).__name__ == "TFSameConv2d"
            assert type(model.maxpool).__name__ == "TFSameMaxPool2d"


def test_byol_dill_and_plain_pickle_read_alike(net, tmp_path, writers):
    """The round trip above writes with dill (as BYOL did); the C pickler's stream must read the same."""
    spec, sd = net("resnet200")
    path, _ = writers["byol-jax"](tmp_path / "res200.pkl", sd, spec, writer="pickle")
    assert_same_backbone(load(path), sd, filled_ok=True)


@pytest.mark.slow
@pytest.mark.parametrize("fmt,arch", [("byol-jax", "resnet50x2"), ("byol-jax", "resnet200-full"),
                                      ("swav", "resnet50x2")])
def test_big_networks(fmt, arch, net, tmp_path, writers):
    """BYOL publishes R200 2×, SwAV RN50-w2: width and depth both read from the shapes (files of ~0.5 GB)."""
    spec, sd = net(arch)
    kwargs = {"writer": "pickle", "full_target": False} if fmt == "byol-jax" else {}
    path, _ = writers[fmt](tmp_path / "big", sd, spec, **kwargs)
    backbone = load(path)
    assert (backbone.spec.arch, backbone.spec.width) == (spec.arch, spec.width)
    assert_same_backbone(backbone, sd, filled_ok=fmt == "byol-jax")


def test_simclr_flags_unnormalised_input_and_untrained_fc_bias(net, write):
    spec, sd = net("resnet18")
    path, _ = write("simclr-v1", sd, spec)
    meta = load(path).meta
    assert meta["input_normalization"] == "none" and meta["fc_bias_untrained"] is True


def test_torchvision_layout_reports_imagenet_normalisation(net, write):
    spec, sd = net("resnet18")
    path, _ = write("torchvision", sd, spec)
    meta = load(path).meta
    assert meta["input_normalization"] == "imagenet" and "fc_bias_untrained" not in meta


def test_solo_learn_cifar_stem_is_recognised(net, write):
    spec, sd = net("resnet18-cifar")
    path, _ = write("solo-learn", sd, spec)
    backbone = load(path)
    assert backbone.spec.stem == "cifar" and backbone.meta["stem_padding"] == 2
    assert "omegaconf.dictconfig.DictConfig" in backbone.meta["standins"]


def test_dino_uses_the_teacher_and_keeps_args_inert(net, write):
    spec, sd = net("resnet18")
    path, dropped = write("dino", sd, spec)
    backbone = load(path)
    assert_same_backbone(backbone, sd)
    assert "argparse.Namespace" in backbone.meta["standins"]


def test_native_checkpoint_from_pretraining_state(tmp_path):
    """The real writer of step_*.pt, with a BYOL module: the online encoder comes back."""
    from siambench.models import build_resnet
    from siambench.pretrain.byol import BYOL
    from siambench.pretrain.state import save_checkpoint

    model = BYOL(build_resnet("resnet18", 0.25), 64, 32, 64)
    with torch.no_grad():
        for p in model.target_backbone.parameters():
            p.add_(1.0)

    class Cfg:
        def to_dict(self):
            return {"model": {"arch": "resnet18", "width": 0.25, "stem": "imagenet"}}

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = save_checkpoint(tmp_path, 3, model, optimizer, Cfg(), [])
    for where in (path, tmp_path):
        backbone = load(where)
        assert backbone.meta["source_format"] == "siambench-native"
        online = model.backbone.state_dict()
        assert all(torch.equal(v, online[k]) for k, v in backbone.state_dict.items())


def test_native_checkpoint_of_a_method_with_other_module_names(tmp_path):
    """The reader knows no method: a momentum encoder under another name is set aside as the checkpoint's layout
    says, and a version-1 file (no layout) has everything but ``backbone.`` set aside by module name."""
    from siambench.models import build_resnet
    from siambench.pretrain.state import save_checkpoint

    class Momentum(torch.nn.Module):
        STATE_PARTS = {"momentum_encoder": "momentum encoder", "head": "projector"}

        def __init__(self):
            super().__init__()
            self.backbone = build_resnet("resnet18", 0.25)
            self.momentum_encoder = build_resnet("resnet18", 0.25)
            self.head = torch.nn.Linear(128, 8)

    class Cfg:
        def to_dict(self):
            return {"model": {"arch": "resnet18", "width": 0.25, "stem": "imagenet"}}

    model = Momentum()
    path = save_checkpoint(tmp_path, 1, model, torch.optim.SGD(model.parameters(), lr=0.1), Cfg(), [])
    backbone = load(path)
    online = model.backbone.state_dict()
    assert all(torch.equal(v, online[k]) for k, v in backbone.state_dict.items())
    assert backbone.meta["dropped"] == {"momentum encoder (momentum_encoder)": len(online), "projector (head)": 2}

    state = torch.load(path, weights_only=True)
    del state["layout"]
    torch.save({**state, "version": 1}, tmp_path / "old.pt")
    old = load(tmp_path / "old.pt")
    assert old.meta["dropped"] == {"momentum_encoder (momentum_encoder)": len(online), "head (head)": 2}


@pytest.mark.parametrize("layout", ["backbone.", {"set_aside": 5}, {"set_aside": {"head.": 3}}, {"backbone": 1}])
def test_a_native_layout_of_the_wrong_shape_is_refused(net, tmp_path, writers, layout):
    spec, sd = net("resnet18")
    path, _ = writers["siambench-native"](tmp_path / "step_00000010.pt", sd, spec)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "layout": layout}, path)
    with pytest.raises(CheckpointError, match="layout"):
        load(path)


def test_a_method_must_declare_every_module_of_its_state(tmp_path):
    from siambench.pretrain.method import checkpoint_layout

    class Undeclared(torch.nn.Module):
        STATE_PARTS = {}

        def __init__(self):
            super().__init__()
            self.backbone, self.target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

    model = Undeclared()
    with pytest.raises(TypeError, match="target"):
        checkpoint_layout(model, model.state_dict())


def test_run_folder_prefers_the_backbone_file(net, tmp_path, writers):
    spec, sd = net("resnet18")
    writers["siambench-backbone"](tmp_path, sd, spec)
    writers["siambench-native"](tmp_path / "step_00000010.pt", sd, spec)
    assert load(tmp_path).meta["source_format"] == "siambench-backbone"


def test_prefix_and_format_override_detection(net, tmp_path):
    spec, sd = net("resnet18")
    state = {**{f"net.trunk.{k}": v for k, v in sd.items()}, **{f"ema.trunk.{k}": v + 1 for k, v in sd.items()}}
    torch.save(state, tmp_path / "two.pth")
    with pytest.raises(Exception, match="--prefix"):
        load(tmp_path / "two.pth")
    backbone = load(tmp_path / "two.pth", format="generic", prefix="net.trunk.")
    assert_same_backbone(backbone, sd)
    assert backbone.meta["dropped"] == {"other (ema)": len(sd), "classifier (fc)": 2}


def test_inspect_json_reports_format_architecture_and_drops(net, write, capsys):
    spec, sd = net("resnet18")
    path, dropped = write("moco", sd, spec)
    n = len([k for k in sd if not k.startswith("fc.") and not k.endswith("num_batches_tracked")])
    assert main(["ckpt", "inspect", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["source_format"] == "moco" and report["ok"] is True
    assert (report["arch"], report["depth"], report["width"], report["stem"], report["padding"]) == (
        "resnet18", 18, 0.25, "imagenet", "torch")
    assert report["num_tensors"] == report["expected_tensors"] == n
    assert report["dropped"]["queue"] == 2 and report["prefix"] == "module.encoder_q."
    assert report["sha256"] == sha256_file(path) and report["problems"] == []
    assert main(["ckpt", "inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"{n} of {n} backbone tensors" in text
    assert f"momentum encoder (encoder_k): {dropped['encoder_k']}" in text
