"""The layouts peers' own code writes: lightly's Sequential backbones and tutorial dict, mmengine training
checkpoints, Lightning checkpoints with any encoder prefix, every pickle protocol; and the checks on values."""

import copy
import json
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import torchvision

from siambench.checkpoints import load
from siambench.cli import main
from siambench.errors import CheckpointError

from .conftest import _lightning, mlp, no_fc, prefixed


@pytest.fixture(scope="module")
def r18():
    """A torchvision ResNet-18 with its own random values, and its Sequential(children[:-1]) twin."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    for buf in model.buffers():
        if buf.is_floating_point():
            buf.copy_(torch.rand_like(buf) + 0.5)
    backbone = torch.nn.Sequential(*list(model.children())[:-1])
    return model.state_dict(), backbone


def same(backbone, sd):
    assert list(backbone.state_dict) == list(no_fc(sd))
    for key, value in backbone.state_dict.items():
        assert torch.equal(value, sd[key]), key


def test_lightly_sequential_plain_state_dict(r18, tmp_path):
    """lightly's BYOL example: model.state_dict() with backbone, backbone_momentum and the heads."""
    sd, backbone = r18
    momentum = copy.deepcopy(backbone)
    state = {**prefixed("backbone.", backbone.state_dict()),
             **prefixed("projection_head.layers.", mlp("", 512, 64, 32)),
             **prefixed("prediction_head.layers.", mlp("", 32, 64, 32)),
             **prefixed("backbone_momentum.", {k: v + 1 for k, v in momentum.state_dict().items()}),
             **prefixed("projection_head_momentum.layers.", mlp("", 512, 64, 32))}
    path = tmp_path / "byol.pth"
    torch.save(state, path)
    out = load(path)
    same(out, sd)
    assert out.meta["source_format"] == "lightly-sequential"
    assert out.meta["dropped"]["momentum encoder (backbone_momentum)"] == len(momentum.state_dict())
    assert out.meta["dropped"]["projection head (projection_head)"] == 9


def test_lightly_sequential_in_lightning(r18, tmp_path):
    sd, backbone = r18
    state = {**prefixed("backbone.", backbone.state_dict()), **mlp("projection_head.layers.", 512, 64, 32)}
    path = tmp_path / "epoch=9.ckpt"
    torch.save(_lightning(state, {"lr": 0.1}), path)
    same(load(path), sd)


def test_lightly_tutorial_dict(r18, tmp_path):
    """torch.save({"resnet18_parameters": backbone.state_dict()}) with the Sequential backbone."""
    sd, backbone = r18
    path = tmp_path / "checkpoint.pth"
    torch.save({"resnet18_parameters": backbone.state_dict()}, path)
    out = load(path)
    same(out, sd)
    assert out.meta["source_format"] == "lightly-sequential"


def test_single_entry_dict_with_torchvision_names(r18, tmp_path):
    sd, _ = r18
    path = tmp_path / "w.pth"
    torch.save({"resnet18_parameters": sd}, path)
    out = load(path)
    same(out, sd)
    assert out.meta["source_format"] == "wrapped"


def _history_buffer_module(monkeypatch):
    """mmengine.logging.history_buffer.HistoryBuffer as mmengine pickles it, statistics methods by getattr."""
    module = types.ModuleType("mmengine.logging.history_buffer")

    class HistoryBuffer:
        def __init__(self):
            self.max_length, self._log_history, self._count_history = 1000000, np.array([0.5]), np.array([1])
            self._statistics_methods = {"mean": getattr(HistoryBuffer, "mean")}

        @classmethod
        def mean(cls):  # a method bound to the class pickles as getattr(HistoryBuffer, 'mean')
            return 0.0

    HistoryBuffer.__module__, HistoryBuffer.__qualname__ = module.__name__, "HistoryBuffer"
    module.HistoryBuffer = HistoryBuffer
    for name in ("mmengine", "mmengine.logging"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return HistoryBuffer


@pytest.mark.parametrize("protocol", [2, 4])
def test_mmengine_training_checkpoint(protocol, r18, tmp_path, monkeypatch):
    """epoch_N.pth of a Runner + CheckpointHook: message_hub holds HistoryBuffers (and builtins.getattr)."""
    sd, _ = r18
    buffer = _history_buffer_module(monkeypatch)()
    path = tmp_path / "epoch_1.pth"
    torch.save({"meta": {"epoch": 1, "iter": 10, "mmengine_version": "0.10.7"},
                "state_dict": {**prefixed("backbone.", no_fc(sd)), **mlp("neck.mlp.", 512, 64, 32)},
                "message_hub": {"log_scalars": {"train/loss": buffer}, "runtime_info": {"iter": 10},
                                "resumed_keys": {"iter": True}},
                "optimizer": {}, "param_schedulers": []}, path, pickle_protocol=protocol)
    monkeypatch.undo()
    data = path.read_bytes()
    assert b"HistoryBuffer" in data and b"getattr" in data
    out = load(path)
    same(out, sd)
    assert out.meta["source_format"] == "mmselfsup"
    assert "mmengine.logging.history_buffer.HistoryBuffer" in out.meta["standins"]


def test_mmengine_written_by_mmengine(r18, tmp_path):
    pytest.importorskip("mmengine", reason="mmengine is not installed")
    from mmengine.logging import MessageHub

    sd, _ = r18
    hub = MessageHub.get_instance("siambench-test")
    hub.update_scalar("train/loss", 0.5)
    path = tmp_path / "epoch_1.pth"
    torch.save({"meta": {"epoch": 1}, "state_dict": prefixed("backbone.", no_fc(sd)),
                "message_hub": hub.state_dict()}, path)
    same(load(path), sd)


def test_lightly_written_by_lightly(r18, tmp_path):
    pytest.importorskip("lightly", reason="lightly is not installed")
    from lightly.models.modules import BYOLProjectionHead

    sd, backbone = r18
    model = torch.nn.ModuleDict({"backbone": backbone, "projection_head": BYOLProjectionHead(512, 64, 32)})
    path = tmp_path / "lightly.pth"
    torch.save(model.state_dict(), path)
    same(load(path), sd)


def test_lightning_with_two_encoders_needs_and_takes_a_prefix(r18, tmp_path, capsys):
    """pl_bolts' BYOL: online_network.encoder.* beside target_network.encoder.*."""
    sd, _ = r18
    state = {**prefixed("online_network.encoder.", no_fc(sd)),
             **prefixed("target_network.encoder.", {k: v + 1 for k, v in no_fc(sd).items()}),
             **mlp("online_network.projector.", 512, 64, 32)}
    path = tmp_path / "epoch=0-step=1.ckpt"
    torch.save(_lightning(state, {"lr": 0.1}), path)
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert "'online_network.encoder.', 'target_network.encoder.'" in message
    assert f"siambench ckpt inspect {path} --prefix online_network.encoder." in message
    assert main(["ckpt", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and err.count("\n") == 1  # one line: never wrapped inside the path
    out = load(path, prefix="online_network.encoder.")
    same(out, sd)
    assert out.meta["source_format"] == "lightning"


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_pickle_protocol(protocol, r18, tmp_path):
    sd, _ = r18
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"model": {k: v.numpy() for k, v in sd.items()}}, protocol=protocol))
    out = load(path)
    for key, value in out.state_dict.items():
        assert np.array_equal(value.numpy(), sd[key].numpy()), key
    if protocol >= 2:
        for legacy in (False, True):
            path = tmp_path / f"model_{legacy}.pth"
            torch.save(sd, path, pickle_protocol=protocol, _use_new_zipfile_serialization=not legacy)
            same(load(path), sd)


def test_nonfinite_weights_are_refused_unless_allowed(r18, tmp_path, capsys):
    sd, _ = r18
    bad = dict(sd)
    bad["layer2.0.conv1.weight"] = bad["layer2.0.conv1.weight"].clone()
    bad["layer2.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    bad["bn1.running_var"] = torch.full_like(sd["bn1.running_var"], float("inf"))
    path = tmp_path / "nan.pth"
    torch.save(bad, path)
    with pytest.raises(CheckpointError, match="2 backbone tensors hold NaN or infinite values") as info:
        load(path)
    assert "bn1.running_var" in str(info.value) and "layer2.0.conv1.weight" in str(info.value)
    out = load(path, allow_nonfinite=True)
    assert out.meta["allow_nonfinite"] is True
    assert out.meta["nonfinite_tensors"] == ["bn1.running_var", "layer2.0.conv1.weight"]
    assert main(["ckpt", "inspect", str(path), "--allow-nonfinite"]) == 0


def test_integer_weights_are_refused(r18, tmp_path, capsys):
    sd, _ = r18
    path = tmp_path / "int.pth"
    torch.save({k: torch.zeros(v.shape, dtype=torch.long) for k, v in sd.items()}, path)
    with pytest.raises(CheckpointError, match="backbone tensors are not floating point") as info:
        load(path)
    assert "100 backbone tensors" in str(info.value) and "bn1.weight (int64)" in str(info.value)


@pytest.mark.parametrize("where", ["safetensors", "meta.json"])
def test_bad_padding_value(where, r18, tmp_path, capsys):
    from safetensors.torch import save_file

    from siambench.checkpoints import save_backbone
    from siambench.models.resnet import ResNetSpec

    sd, _ = r18
    if where == "safetensors":
        path = tmp_path / "m.safetensors"
        save_file(no_fc(sd), str(path), metadata={"siambench": json.dumps({"padding": "evil"})})
    else:
        path = tmp_path / "run"
        save_backbone(path, no_fc(sd), ResNetSpec("resnet18"))
        meta = json.loads((path / "meta.json").read_text())
        (path / "meta.json").write_text(json.dumps({**meta, "padding": "evil"}))
    assert main(["ckpt", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert "padding 'evil'; expected one of torch, tf_same" in err and "Traceback" not in err


def test_safetensors_metadata_that_is_not_json(r18, tmp_path, capsys):
    from safetensors.torch import save_file

    sd, _ = r18
    path = tmp_path / "m.safetensors"
    save_file(no_fc(sd), str(path), metadata={"siambench": "{not json"})
    assert main(["ckpt", "inspect", str(path)]) == 2
    assert "safetensors metadata is not valid JSON" in capsys.readouterr().err


def test_convert_to_an_existing_folder(r18, tmp_path, capsys):
    sd, _ = r18
    path = tmp_path / "m.pth"
    torch.save(sd, path)
    assert main(["ckpt", "convert", str(path), "--to", "torchvision", "-o", str(tmp_path)]) == 2
    assert f"-o {tmp_path} is an existing folder" in capsys.readouterr().err


def test_interrupt_in_ckpt_does_not_speak_of_pretraining(r18, tmp_path, capsys, monkeypatch):
    sd, _ = r18
    path = tmp_path / "m.pth"
    torch.save(sd, path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("siambench.checkpoints.cli.examine", interrupted)
    assert main(["ckpt", "inspect", str(path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume" not in err and "checkpoint is intact" not in err
