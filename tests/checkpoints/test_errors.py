"""Bad input: each gets one clear paragraph, a non-zero exit, and nothing from the file runs."""

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from siambench.checkpoints import load
from siambench.checkpoints.audit import expected_shapes
from siambench.checkpoints.source import read_source
from siambench.cli import main
from siambench.engine.safe_pickle import RestrictedUnpickler
from siambench.errors import CheckpointError
from siambench.models.resnet import ResNetSpec


def refused(path, capsys, *fragments):
    """``load`` raises with every fragment in one paragraph, and the command line exits 2 saying the same."""
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert main(["ckpt", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("siambench: error:") and "Traceback" not in err
    return message


@pytest.fixture(scope="module")
def r18(net):
    return net("resnet18")


def test_truncated_zip_file(r18, tmp_path, capsys):
    spec, sd = r18
    path = tmp_path / "cut.pth"
    torch.save(sd, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    refused(path, capsys, "damaged", str(path))


def test_truncated_legacy_file(r18, tmp_path, capsys):
    spec, sd = r18
    path = tmp_path / "cut.pth.tar"
    torch.save({"state_dict": sd}, path, _use_new_zipfile_serialization=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    refused(path, capsys, "truncated or damaged")


def test_truncated_pickle(r18, tmp_path, capsys, writers):
    spec, sd = r18
    path, _ = writers["byol-jax"](tmp_path / "pretrain.pkl", sd, spec)
    path.write_bytes(path.read_bytes()[:100_000])
    refused(path, capsys, "truncated or damaged")


@pytest.mark.parametrize("content,fragment", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "is not a checkpoint"),
    (b"model: resnet50\nlr: 0.1\n", "is not a checkpoint"),
])
def test_not_a_checkpoint(content, fragment, tmp_path, capsys):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    refused(path, capsys, fragment)


def test_zip_that_torch_did_not_write(tmp_path, capsys):
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.zeros(3))
    refused(path, capsys, "not one written by torch.save")


def test_pickle_without_a_resnet(tmp_path, capsys):
    path = tmp_path / "dict.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=2))
    refused(path, capsys, "no layout siambench recognises", "weights")


def test_vit_checkpoint(tmp_path, capsys):
    import timm

    with torch.device("meta"):
        model = timm.create_model("vit_tiny_patch16_224")
    sd = {k: torch.zeros(v.shape) for k, v in model.state_dict().items()}
    path = tmp_path / "dino_vits16.pth"
    torch.save(sd, path)
    refused(path, capsys, "Vision Transformer", "cls_token", "not a ResNet")


def test_resnet_missing_layer4(net, tmp_path, capsys):
    spec, sd = net("resnet50")
    path = tmp_path / "no_layer4.pth"
    torch.save({k: v for k, v in sd.items() if not k.startswith("layer4.")}, path)
    n = len([k for k in expected_shapes(ResNetSpec()) if not k.endswith("num_batches_tracked")])
    missing = len([k for k in sd if k.startswith("layer4.") and not k.endswith("num_batches_tracked")])
    message = refused(path, capsys, f"expected {n} backbone tensors of a resnet50", f"found {n - missing}",
                      f"missing layer4.* ({missing} tensors)")
    assert "layer3" not in message


@pytest.mark.parametrize("style", ["mmseg", "mmpretrain"])
def test_deep_stem_resnet_v1c(style, r18, tmp_path, capsys):
    """ResNetV1c's stem is three 3×3 convs (32-32-64) instead of conv1/bn1: mmseg/mmdet name them
    stem.{0,1,3,4,6,7}, mmpretrain stem.{0,1,2}.conv / .bn (ConvModule)."""
    spec, sd = r18
    state = {f"backbone.{k}": v for k, v in sd.items() if not k.startswith(("conv1.", "bn1.", "fc."))}
    for i, (cout, cin) in enumerate(((32, 3), (32, 32), (64, 32))):
        conv, norm = (f"stem.{3 * i}", f"stem.{3 * i + 1}") if style == "mmseg" else (f"stem.{i}.conv", f"stem.{i}.bn")
        state[f"backbone.{conv}.weight"] = torch.randn(cout, cin, 3, 3)
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            state[f"backbone.{norm}.{leaf}"] = torch.randn(cout)
    path = tmp_path / "fcn_r50-d8.pth"
    torch.save({"meta": {"mmseg_version": "1.2.2"}, "state_dict": state}, path)
    first = "stem.0.weight" if style == "mmseg" else "stem.0.bn.bias"
    refused(path, capsys, "not a torchvision ResNet", "deep stem", first, "ResNetV1c")


def test_mismatched_shapes(r18, tmp_path, capsys):
    spec, sd = r18
    bad = dict(sd)
    bad["layer2.0.conv2.weight"] = torch.randn(32, 32, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    refused(path, capsys, "misshapen layer2.0.conv2.weight [32, 32, 1, 1] (expected [32, 32, 3, 3])")


def test_extra_backbone_tensors_are_an_error(r18, tmp_path, capsys):
    spec, sd = r18
    state = {**{f"module.encoder_q.{k}": v for k, v in sd.items()},
             "module.encoder_q.layer4.2.conv1.weight": torch.randn(128, 128, 3, 3),
             "module.extra.layer1.0.conv1.weight": torch.randn(16, 16, 3, 3)}
    path = tmp_path / "moco.pth"
    torch.save({"state_dict": state}, path)
    refused(path, capsys, "unexpected backbone tensors", "layer4.2.conv1.weight", "module.extra.layer1.0.conv1.weight")


def test_declared_architecture_must_match_the_tensors(r18, tmp_path, capsys):
    from siambench.checkpoints import save_backbone

    spec, sd = r18
    save_backbone(tmp_path, {k: v for k, v in sd.items()}, ResNetSpec("resnet18", 0.5))
    refused(tmp_path, capsys, "declares a resnet18 (0.5× width", "tensors are a resnet18 (0.25× width")


def test_tampered_backbone_file(r18, tmp_path, capsys):
    from siambench.checkpoints import save_backbone

    spec, sd = r18
    path = save_backbone(tmp_path, sd, spec)
    state = torch.load(path, weights_only=True)
    state["bn1.bias"] += 1
    torch.save(state, path)
    refused(tmp_path, capsys, "does not match its meta.json")


# -- safety ------------------------------------------------------------------------------------------------------

class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, capsys):
    marker = tmp_path / "executed"
    path = tmp_path / "pretrain_res50x1.pkl"
    path.write_bytes(pickle.dumps({"experiment_state": RunsACommand(marker), "step": 1}, protocol=2))
    refused(path, capsys, "refused", "system", "Nothing from the file was executed")
    assert not marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_torch_file_is_refused_and_does_not_run(legacy, r18, tmp_path, capsys):
    spec, sd = r18
    marker = tmp_path / "executed"
    path = tmp_path / "model.pth"
    torch.save({"state_dict": sd, "args": RunsACommand(marker)}, path, _use_new_zipfile_serialization=not legacy)
    refused(path, capsys, "system", "Nothing from the file was executed")
    assert not marker.exists()


def test_byol_pickle_naming_eval_is_refused(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return eval, ("__import__('os').system('true')",)

    path = tmp_path / "byol.pkl"
    path.write_bytes(pickle.dumps({"experiment_state": Evil()}, protocol=2))
    refused(path, capsys, "refused to load global builtins.eval")


def test_dill_array_wrapper_only_rebuilds_numpy_arrays(tmp_path):
    """``dill._dill._create_array(f, ...)`` is admitted, but only with numpy's reconstructor as ``f``."""
    from siambench.checkpoints.byol_jax import resolve_global

    create = resolve_global("dill._dill", "_create_array")
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    f, args, state = a.__reduce__()
    np.testing.assert_array_equal(create(f, args, state, None), a)
    with pytest.raises(TypeError):
        create(os.system, ("true",), None)


def test_jax_and_haiku_names_become_inert_data():
    from siambench.checkpoints.byol_jax import Record, resolve_global

    assert resolve_global("haiku._src.data_structures", "FlatMapping")({"a": 1}) == {"a": 1}
    record = resolve_global("optax._src.transform", "ScaleByAdamState")(1, 2)
    assert isinstance(record, Record) and tuple(record) == (1, 2)
    assert resolve_global("os", "system") is None and resolve_global("builtins", "getattr") is None
    for module, name in [("subprocess", "Popen"), ("builtins", "exec"), ("posix", "system")]:
        with pytest.raises(pickle.UnpicklingError, match="refused"):
            RestrictedUnpickler(io.BytesIO(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."),
                                resolve=resolve_global).load()


def test_lightning_attribute_dict_comes_back_as_a_dict(tmp_path, monkeypatch):
    """Older Lightning versions pickled hparams as AttributeDict (a dict subclass): kept as a plain dict."""
    module = types.ModuleType("lightning_fabric.utilities.data")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = module.__name__, "AttributeDict"
    module.AttributeDict = AttributeDict
    for name in ("lightning_fabric", "lightning_fabric.utilities"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    path = tmp_path / "hp.ckpt"
    torch.save({"hyper_parameters": AttributeDict(lr=0.1), "state_dict": {"w": torch.ones(1)}}, path)
    monkeypatch.undo()
    source = read_source(path)
    assert source.obj["hyper_parameters"] == {"lr": 0.1} and type(source.obj["hyper_parameters"]) is dict
    assert source.standins == ["lightning_fabric.utilities.data.AttributeDict"]
