"""``random:ARCH[@WIDTH][,seed=S]``: a random-init backbone wherever a checkpoint is accepted."""

import pytest
import torch

from siambench.checkpoints import load, load_backbone
from siambench.checkpoints.random_init import materialize, parse, spec_name
from siambench.errors import CheckpointError
from siambench.models import ResNetSpec, backbone_state_dict, build_resnet


def test_a_random_spec_is_a_cached_backbone_folder_with_its_meta(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMBENCH_CACHE", str(tmp_path / "cache"))
    backbone = load("random:resnet18@0.25,seed=3")
    folder = tmp_path / "cache" / "random" / "resnet18_w0.25_seed3"
    sd, meta = load_backbone(folder)
    assert (meta["arch"], meta["width"], meta["stem"]) == ("resnet18", 0.25, "imagenet")
    assert meta["random_init"] is True and meta["seed"] == 3 and meta["steps"] == 0
    assert meta["name"] == "random:resnet18@0.25,seed=3" and backbone.meta["sha256"] == meta["sha256"]
    # the weights are torchvision's initialisation drawn from the seed, as a hand-made baseline would be
    torch.manual_seed(3)
    reference = backbone_state_dict(build_resnet("resnet18", 0.25, "imagenet"))
    assert sd.keys() == reference.keys() and all(torch.equal(sd[k], reference[k]) for k in sd)
    # written once: a second use finds the folder and leaves it as it is
    stamp = (folder / "backbone.pth").stat().st_mtime_ns
    assert materialize("resnet18@0.25,seed=3") == folder and (folder / "backbone.pth").stat().st_mtime_ns == stamp
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_the_weights_depend_only_on_the_spec_and_the_global_rng_is_left_alone(tmp_path, monkeypatch):
    weights = []
    for cache in ("a", "b"):
        monkeypatch.setenv("SIAMBENCH_CACHE", str(tmp_path / cache))
        torch.manual_seed(123)
        before = torch.rand(3)
        torch.manual_seed(123)
        folder = materialize("resnet18@0.25,stem=cifar")
        assert torch.equal(torch.rand(3), before)
        weights.append(load_backbone(folder)[0])
    assert folder.name == "resnet18_w0.25_cifar_seed0"
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    other = load_backbone(materialize("resnet18@0.25,stem=cifar,seed=1"))[0]
    assert not torch.equal(other["conv1.weight"], weights[0]["conv1.weight"])


@pytest.mark.parametrize("rest, spec, seed", [
    ("resnet50", ResNetSpec("resnet50"), 0),
    ("resnet18@0.25,seed=1", ResNetSpec("resnet18", 0.25), 1),
    ("resnet18@0.5,stem=cifar", ResNetSpec("resnet18", 0.5, "cifar"), 0),
    ("resnet50@2,padding=tf_same,seed=7", ResNetSpec("resnet50", 2.0, "imagenet", "tf_same"), 7),
])
def test_parse_and_canonical_name_round_trip(rest, spec, seed):
    assert parse(rest) == (spec, seed)
    assert parse(spec_name(spec, seed).removeprefix("random:")) == (spec, seed)


@pytest.mark.parametrize("rest, message", [
    ("resnet19", "unknown architecture"), ("resnet18@0.3", "64·width"), ("resnet18,seed=x", "seed"),
    ("resnet18,colour=red", "not an option"), ("resnet18,seed=-1", "0 or more"), ("resnet18,stem=tiny", "stem"),
])
def test_a_bad_spec_is_one_clear_error(rest, message, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMBENCH_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError, match=message) as err:
        load(f"random:{rest}")
    assert "random:ARCH" in str(err.value) or "0 or more" in str(err.value)
