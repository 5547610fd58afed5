"""Random ResNets, and writers that put one into each published checkpoint layout.

Every tensor gets its own random values (BN statistics included), so a key
that the reader maps to the wrong place cannot go unnoticed in a bitwise
comparison. The networks are made once per session from shapes taken on
the meta device: ResNet-50 from torchvision itself, ResNet-200 and the ×2
ResNet-50 from siambench's builder (torchvision has neither). The ResNet-200
used for the per-format round trips is a quarter-width one: its keys and
block counts (24 and 36 blocks per stage, ``block_10`` before ``block_2``)
are those of the full network at a sixteenth of its bytes; the full-width
ResNet-200 is read once, through BYOL's layout.

Each writer builds the file the way the publisher's code does (containers,
prefixes, extra heads, momentum encoders, Lightning's structure, haiku's
pickle with HWIO arrays, VISSL's nesting) and returns the path and the
groups the reader must report as dropped (label fragment → tensor count).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import types
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from siambench.checkpoints import save_backbone
from siambench.models.resnet import ResNet, ResNetSpec

NETS = {
    "resnet50": None,
    "resnet200": ResNetSpec("resnet200", 0.25),
    "resnet200-full": ResNetSpec("resnet200", 1.0),
    "resnet50x2": ResNetSpec("resnet50", 2.0),
    "resnet18-cifar": ResNetSpec("resnet18", 1.0, "cifar"),
    "resnet18": ResNetSpec("resnet18", 0.25),
}


def shapes_of(name: str) -> dict[str, tuple]:
    with torch.device("meta"):
        model = torchvision.models.resnet50() if NETS[name] is None else ResNet(NETS[name], num_classes=1000)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def random_state_dict(shapes: Mapping[str, tuple], seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            out[key] = torch.randint(1, 10_000, (), generator=g)
        elif key.endswith("running_var"):
            out[key] = torch.rand(shape, generator=g) + 0.5
        else:
            out[key] = torch.randn(shape, generator=g)
    return out


@pytest.fixture(scope="session")
def net():
    """``net(name)`` → (expected spec, state dict with torchvision keys and fc), made once per session."""
    cache = {}

    def get(name: str):
        if name not in cache:
            spec = NETS[name] or ResNetSpec("resnet50")
            cache[name] = (spec, random_state_dict(shapes_of(name), seed=len(cache) + 1))
        return cache[name]

    return get


def no_fc(sd):
    return {k: v for k, v in sd.items() if not k.startswith("fc.")}


def prefixed(prefix: str, sd: Mapping) -> dict:
    return {prefix + k: v for k, v in sd.items()}


def mlp(prefix: str, *dims: int, bn: bool = True, seed: int = 0) -> dict:
    """A projector/predictor MLP under ``prefix``, numbered as nn.Sequential numbers it.

    With ``bn``: Linear, BatchNorm1d, ReLU, ..., Linear (indices 0, 1, 3, 4, ...);
    without: Linear, ReLU, ..., Linear (indices 0, 2, ...), as MoCo v2's fc.
    """
    g = torch.Generator().manual_seed(seed)
    out, index = {}, 0
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        out[f"{prefix}{index}.weight"] = torch.randn(b, a, generator=g)
        out[f"{prefix}{index}.bias"] = torch.randn(b, generator=g)
        hidden = i < len(dims) - 2
        if hidden and bn:
            out[f"{prefix}{index + 1}.weight"] = torch.randn(b, generator=g)
            out[f"{prefix}{index + 1}.bias"] = torch.randn(b, generator=g)
            out[f"{prefix}{index + 1}.running_mean"] = torch.randn(b, generator=g)
            out[f"{prefix}{index + 1}.running_var"] = torch.rand(b, generator=g) + 0.5
            out[f"{prefix}{index + 1}.num_batches_tracked"] = torch.tensor(7)
        index += 3 if bn else 2
    return out


_OTHERS: dict = {}


def other(sd: Mapping, seed: int) -> dict:
    """A second network with the same keys and different values (momentum encoders, students), made once."""
    shapes = tuple((k, tuple(v.shape)) for k, v in sd.items())
    if shapes not in _OTHERS:
        _OTHERS.clear()
        _OTHERS[shapes] = random_state_dict(dict(shapes), seed=1000 + len(shapes))
    return _OTHERS[shapes]


def optimizer_state(n: int = 3) -> dict:
    return {"state": {i: {"momentum_buffer": torch.randn(4)} for i in range(n)},
            "param_groups": [{"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "params": list(range(n))}]}


# -- writers: (path, sd with torchvision keys incl. fc, spec) -> (path, expected dropped groups) -------------------

def write_torchvision(path, sd, spec):
    torch.save(sd, path)
    return path, {"fc": 2}


def write_timm(path, sd, spec):
    import timm

    with torch.device("meta"):
        model = timm.create_model(spec.arch, pretrained=False)
    model.load_state_dict(sd, strict=True, assign=True)
    torch.save(model.state_dict(), path)
    return path, {"fc": 2}


def write_safetensors(path, sd, spec):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path, {"fc": 2}


def write_siambench_backbone(path, sd, spec):
    save_backbone(path, no_fc(sd), spec, method="byol", source_format="siambench-native")
    return path, {}


def write_moco(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    query = {**prefixed("module.encoder_q.", no_fc(sd)), **mlp("module.encoder_q.fc.", c, c, 128, bn=False)}
    key = prefixed("module.encoder_k.", other(state_without(query, "module.encoder_q."), 11))
    queue = {"module.queue": torch.randn(128, 1024), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    # MoCo's files date from PyTorch 1.4: the legacy (non-zip) torch.save stream.
    torch.save({"epoch": 800, "arch": spec.arch, "state_dict": {**query, **key, **queue},
                "optimizer": optimizer_state()}, path, _use_new_zipfile_serialization=False)
    return path, {"encoder_q.fc": 4, "encoder_k": len(key), "queue": 2}


def state_without(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def write_mocov3(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    base = {**prefixed("module.base_encoder.", no_fc(sd)), **mlp("module.base_encoder.fc.", c, 64, 32)}
    momentum = prefixed("module.momentum_encoder.", other(state_without(base, "module.base_encoder."), 12))
    pred = mlp("module.predictor.", 32, 64, 32, seed=3)
    torch.save({"epoch": 300, "arch": spec.arch, "state_dict": {**base, **momentum, **pred},
                "optimizer": optimizer_state(), "scaler": {"scale": 1024.0}}, path)
    n_fc = len(base) - len(no_fc(sd))
    return path, {"base_encoder.fc": n_fc, "momentum": len(momentum), "predictor": len(pred)}


def write_simsiam(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    proj = mlp("module.encoder.fc.", c, 64, 64, 64)
    pred = mlp("module.predictor.", 64, 16, 64, seed=4)
    state = {**prefixed("module.encoder.", no_fc(sd)), **proj, **pred}
    torch.save({"epoch": 100, "arch": spec.arch, "state_dict": state, "optimizer": optimizer_state()}, path)
    return path, {"encoder.fc": len(proj), "predictor": len(pred)}


def write_simclr_v1(path, sd, spec):
    # tonylins/simclr-converter: torch.save({'state_dict': model.state_dict()}), torchvision names with fc.
    torch.save({"state_dict": sd}, path)
    return path, {"fc": 2}


def write_swav(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    state = {**prefixed("module.", no_fc(sd)), **mlp("module.projection_head.", c, 64, 32)}
    state["module.prototypes.weight"] = torch.randn(3000, 32)
    torch.save(state, path)
    return path, {"projection head": len(state) - len(no_fc(sd)) - 1, "prototypes": 1}


def write_dino(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    head = mlp("module.head.mlp.", c, 64, 32)
    teacher = {**prefixed("module.backbone.", no_fc(sd)), **head}
    student = {**prefixed("module.backbone.", other(no_fc(sd), 13)), **head}
    torch.save({"student": student, "teacher": teacher, "optimizer": optimizer_state(), "epoch": 800,
                "args": argparse.Namespace(arch="resnet50", out_dim=60000, lr=0.03),
                "dino_loss": {"center": torch.randn(1, 32)}}, path)
    return path, {"head": len(head), "student": len(student)}


def write_barlowtwins(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    proj = mlp("module.projector.", c, 64, 64)
    bn = {"module.bn.running_mean": torch.randn(64), "module.bn.running_var": torch.rand(64) + 0.5,
          "module.bn.num_batches_tracked": torch.tensor(3)}
    state = {**prefixed("module.backbone.", no_fc(sd)), **proj, **bn}
    torch.save({"epoch": 1000, "model": state, "optimizer": optimizer_state()}, path)
    return path, {"projector": len(proj), "bn": 3}


def write_vissl(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    heads = {"0.clf.0.weight": torch.randn(1000, c), "0.clf.0.bias": torch.randn(1000)}
    torch.save({
        "classy_state_dict": {
            "base_model": {"model": {"trunk": prefixed("_feature_blocks.", no_fc(sd)), "heads": heads},
                           "meta": {"trunk": {}, "heads": {}}},
            "optimizer": optimizer_state(), "loss": {},
        },
        "phase_idx": 199, "iteration_num": 250_000, "train_phase_idx": 99, "iteration": 250_000, "type": "checkpoint",
    }, path)
    return path, {"heads": 2}


def write_mmselfsup(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    neck = mlp("neck.mlp.", c, 64, 32)
    head = mlp("head.predictor.mlp.", 32, 64, 32, seed=5)
    target = {**prefixed("target_net.module.0.", other(no_fc(sd), 14)), **prefixed("target_net.module.1.", neck)}
    state = OrderedDict({**prefixed("backbone.", no_fc(sd)), **neck, **head, **target})
    state["data_preprocessor.mean"] = torch.randn(3, 1, 1)
    torch.save({"meta": {"mmengine_version": "0.7.3", "epoch": 200, "iter": 62_600, "dataset_meta": {}},
                "state_dict": state, "message_hub": {"log_scalars": {}}}, path)
    return path, {"neck": len(neck), "head": len(head), "target_net": len(target), "data_preprocessor": 1}


def _lightning(state, hyper):
    return {"epoch": 399, "global_step": 40_000, "pytorch-lightning_version": "2.0.2", "state_dict": state,
            "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"current": {"completed": 399}}}},
            "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_score": None, "dirpath": "trained"}},
            "optimizer_states": [optimizer_state()], "lr_schedulers": [{"last_epoch": 399}],
            "hparams_name": "kwargs", "hyper_parameters": hyper}


def write_solo_learn(path, sd, spec):
    from omegaconf import OmegaConf

    c = sd["fc.weight"].shape[1]
    proj = mlp("projector.", c, 64, 32)
    pred = mlp("predictor.", 32, 64, 32, seed=6)
    mom = {**prefixed("momentum_backbone.", other(no_fc(sd), 15)), **mlp("momentum_projector.", c, 64, 32, seed=7)}
    cls = {"classifier.weight": torch.randn(100, c), "classifier.bias": torch.randn(100)}
    state = {**prefixed("backbone.", no_fc(sd)), **proj, **pred, **mom, **cls}
    cfg = OmegaConf.create({"method": "byol", "backbone": {"name": spec.arch}, "data": {"dataset": "imagenet100"},
                            "optimizer": {"name": "lars", "lr": 1.0, "kwargs": {"eta": 0.02}}})
    torch.save(_lightning(state, {"cfg": cfg}), path)
    return path, {"momentum_backbone": len(no_fc(sd)), "momentum projector": len(mom) - len(no_fc(sd)),
                  "projector": len(proj), "predictor": len(pred), "classifier": 2}


def write_lightly(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    state = {**prefixed("backbone.", no_fc(sd)), **prefixed("teacher_backbone.", other(no_fc(sd), 16)),
             **mlp("projection_head.layers.", c, 64, 32), **mlp("teacher_projection_head.layers.", c, 64, 32),
             **mlp("prediction_head.layers.", 32, 64, 32, seed=8),
             "online_classifier.classification_head.weight": torch.randn(1000, c),
             "online_classifier.classification_head.bias": torch.randn(1000)}
    torch.save(_lightning(state, {"batch_size_per_device": 256, "num_classes": 1000}), path)
    return path, {"teacher_backbone": len(no_fc(sd)), "online_classifier": 2, "prediction head": 9,
                  "teacher projection head": 9}


def write_lightning(path, sd, spec):
    state = {**prefixed("model.encoder.", no_fc(sd)), **mlp("model.head.", 8, 4)}
    torch.save(_lightning(state, {"lr": 0.1}), path)
    return path, {"other (model)": 2}


# torchvision's child modules → their index in Sequential(*resnet.children()[:-1]), the backbone lightly's examples build.
SEQUENTIAL_INDEX = {"conv1": "0", "bn1": "1", "layer1": "4", "layer2": "5", "layer3": "6", "layer4": "7"}


def sequential(sd):
    return {f"{SEQUENTIAL_INDEX[k.split('.', 1)[0]]}.{k.split('.', 1)[1]}": v for k, v in no_fc(sd).items()}


def write_lightly_sequential(path, sd, spec):
    # lightly's BYOL example: model.state_dict() with the Sequential backbone, its momentum copy and the heads.
    c = sd["fc.weight"].shape[1]
    momentum = prefixed("backbone_momentum.", sequential(other(no_fc(sd), 18)))
    state = {**prefixed("backbone.", sequential(sd)), **mlp("projection_head.layers.", c, 64, 32), **momentum}
    torch.save(state, path)
    return path, {"momentum encoder (backbone_momentum)": len(momentum), "projection head (projection_head)": 9}


def write_wrapped(path, sd, spec):
    # A one-entry dict around torchvision names, e.g. torch.save({"resnet18_parameters": model.state_dict()}).
    torch.save({"resnet_parameters": sd}, path)
    return path, {"fc": 2}


def write_generic(path, sd, spec):
    # ssl-transfer's CMC layout: one encoder under module.encoder1., nothing else.
    torch.save({"model": prefixed("module.encoder1.", no_fc(sd)), "epoch": 240}, path)
    return path, {}


def write_detectron2(path, sd, spec):
    """MoCo's convert-pretrain-to-detectron2.py, restated: its rules in its order, numpy values, pickled."""
    out = {}
    for k, v in no_fc(sd).items():
        if "layer" not in k:
            k = "stem." + k
        for t in [1, 2, 3, 4]:
            k = k.replace(f"layer{t}", f"res{t + 1}")
        for t in [1, 2, 3]:
            k = k.replace(f"bn{t}", f"conv{t}.norm")
        k = k.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")
        out[k] = v.numpy()
    with open(path, "wb") as f:
        pickle.dump({"model": out, "__author__": "MOCO", "matching_heuristics": True}, f)
    return path, {}


def write_siambench_native(path, sd, spec):
    c = sd["fc.weight"].shape[1]
    model = {**prefixed("backbone.", no_fc(sd)), **mlp("projector.", c, 64, 32), **mlp("predictor.", 32, 64, 32),
             **prefixed("target_backbone.", other(no_fc(sd), 17)), **mlp("target_projector.", c, 64, 32, seed=9)}
    layout = {"backbone": "backbone.", "set_aside": {"predictor.": "predictor", "projector.": "projector",
                                                     "target_backbone.": "target network",
                                                     "target_projector.": "target projector"}}
    torch.save({"format": "siambench-native", "version": 2, "step": 10, "model": model, "layout": layout,
                "optimizer": optimizer_state(), "rng": {"torch": torch.get_rng_state()},
                "config": {"model": {"arch": spec.arch, "width": spec.width, "stem": spec.stem}},
                "skipped_images": []}, path)
    return path, {"projector": 9, "predictor": 9, "target network": len(no_fc(sd)), "target projector": 9}


# -- BYOL's JAX release ------------------------------------------------------------------------------------------

class FlatMapping(Mapping):
    """Pickles as haiku's FlatMap/FlatMapping do: ``(FlatMapping, (dict,))``."""

    def __init__(self, mapping):
        self._mapping = dict(mapping)

    def __getitem__(self, key):
        return self._mapping[key]

    def __iter__(self):
        return iter(self._mapping)

    def __len__(self):
        return len(self._mapping)

    def __reduce__(self):
        return FlatMapping, (self._mapping,)


def _reconstruct_array(fun, args, arr_state, aval_state):
    raise AssertionError("the reader must not call JAX's own reconstructor")


class JaxArray:
    """Pickles as a ``jax.Array`` does: ``jax._src.array._reconstruct_array(np reconstruct, args, state, aval)``."""

    def __init__(self, value):
        self.value = np.asarray(value)

    def __reduce__(self):
        fun, args, state = self.value.__reduce__()
        return _reconstruct_array, (fun, args, state, {"weak_type": False})


_ByolExperimentState = namedtuple("_ByolExperimentState",
                                  "online_params target_params online_state target_state opt_state")
LarsState = namedtuple("LarsState", "momentum")

_FAKE_MODULES = {
    "haiku._src.data_structures": {"FlatMapping": FlatMapping},
    "byol.byol_experiment": {"_ByolExperimentState": _ByolExperimentState},
    "byol.utils.optimizers": {"LarsState": LarsState},
    "jax._src.array": {"_reconstruct_array": _reconstruct_array},
}


def _haiku_modules(monkeypatch):
    """Put the classes above under the module names BYOL's files reference, only while writing."""
    for module, members in _FAKE_MODULES.items():
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if not getattr(sys.modules.get(name), "_siambench_fake", False):
                fake = types.ModuleType(name)
                fake._siambench_fake = True
                monkeypatch.setitem(sys.modules, name, fake)
                if i > 1:
                    setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], fake)
        for attr, obj in members.items():
            obj.__module__ = module
            setattr(sys.modules[module], attr, obj)


def haiku_from_torchvision(sd, root: str, rng: np.random.Generator):
    """torchvision tensors → haiku (params, state) as BYOL's ResNet names them, HWIO kernels, [1,1,1,C] BN."""
    params, state = {}, {}

    def module(name):
        if name == "conv1":
            return "initial_conv"
        if name == "bn1":
            return "initial_batchnorm"
        layer, block, rest = name.split(".", 2)
        g, b = int(layer[5:]) - 1, int(block)
        inner = {"downsample.0": "shortcut_conv", "downsample.1": "shortcut_batchnorm"}.get(rest)
        inner = inner or (f"conv_{int(rest[4:]) - 1}" if rest.startswith("conv") else f"batchnorm_{int(rest[2:]) - 1}")
        return f"block_group_{g}/~/block_{b}/~/{inner}"

    for key, value in no_fc(sd).items():
        name, leaf = key.rsplit(".", 1)
        path = f"{root}/~/{module(name)}"
        a = value.numpy()
        if leaf == "weight" and a.ndim == 4:
            params.setdefault(path, {})["w"] = np.ascontiguousarray(a.transpose(2, 3, 1, 0))
        elif leaf in ("weight", "bias"):
            params.setdefault(path, {})["scale" if leaf == "weight" else "offset"] = a.reshape(1, 1, 1, -1)
        elif leaf in ("running_mean", "running_var"):
            ema = {"counter": np.array(1000, np.int32), "hidden": a.reshape(1, 1, 1, -1).copy(),
                   "average": a.reshape(1, 1, 1, -1)}
            state[f"{path}/~/{'mean_ema' if leaf == 'running_mean' else 'var_ema'}"] = ema
    c = sd["fc.weight"].shape[1]
    params["classifier"] = {"w": sd["fc.weight"].numpy().T.copy(), "b": sd["fc.bias"].numpy()}
    for head, dims in (("projector", (c, 64, 32)), ("predictor", (32, 64, 32))):
        params[f"{head}/linear"] = {"w": rng.standard_normal(dims[:2], np.float32), "b": np.zeros(dims[1], np.float32)}
        params[f"{head}/batch_norm"] = {"scale": np.ones((1, dims[1]), np.float32),
                                        "offset": np.zeros((1, dims[1]), np.float32)}
        params[f"{head}/linear_1"] = {"w": rng.standard_normal(dims[1:], np.float32)}
        for ema in ("mean_ema", "var_ema"):
            state[f"{head}/batch_norm/~/{ema}"] = {"counter": np.array(5, np.int32),
                                                   "hidden": np.ones((1, dims[1]), np.float32),
                                                   "average": np.ones((1, dims[1]), np.float32)}
    # Haiku keeps insertion order, not sorted order: shuffle so that no reader can rely on either.
    order = rng.permutation(len(params))
    params = {k: params[k] for k in np.array(list(params), dtype=object)[order]}
    return params, state


def write_byol_jax(path, sd, spec, monkeypatch=None, writer="dill", full_target=True):
    """``dill.dump(dict(experiment_state=..., step=..., rng=...), protocol=2)`` as BYOL's checkpointing does.

    ``writer="pickle"`` uses the C pickler (same protocol-2 stream for these
    objects, less dill's array wrapper), and ``full_target=False`` keeps only
    the target's heads: both only to keep the test of the big networks quick.
    """
    rng = np.random.default_rng(0)
    root = f"res_net{spec.arch.removeprefix('resnet')}"
    online, online_state = haiku_from_torchvision(sd, root, rng)
    target, target_state = haiku_from_torchvision(other(sd, 18), root, rng) if full_target else ({}, {})
    if not full_target:
        target = {k: v for k, v in online.items() if not k.startswith(root)}

    def freeze(tree):
        return FlatMapping({k: FlatMapping(v) for k, v in tree.items()})

    opt_state = (LarsState(momentum=freeze({k: {n: np.zeros_like(a) for n, a in v.items()} for k, v in online.items()
                                            if k.startswith("projector")})), ())
    experiment = _ByolExperimentState(freeze(online), freeze(target), freeze(online_state), freeze(target_state),
                                      opt_state)
    obj = {"experiment_state": experiment, "step": 312_784, "rng": JaxArray(np.array([0, 42], np.uint32))}
    mp = monkeypatch or pytest.MonkeyPatch()
    try:
        _haiku_modules(mp)
        with open(path, "wb") as f:
            if writer == "dill":
                import dill

                dill.dump(obj, f, protocol=2)
            else:
                pickle.dump(obj, f, protocol=2)
    finally:
        if monkeypatch is None:
            mp.undo()
    return path, {"classifier": 2, "projector": 5, "predictor": 5,
                  "target network (params)": sum(len(v) for v in target.values())}


WRITERS = {
    "torchvision": write_torchvision,
    "timm": write_timm,
    "safetensors": write_safetensors,
    "siambench-backbone": write_siambench_backbone,
    "siambench-native": write_siambench_native,
    "moco": write_moco,
    "mocov3": write_mocov3,
    "simsiam": write_simsiam,
    "simclr-v1": write_simclr_v1,
    "byol-jax": write_byol_jax,
    "swav": write_swav,
    "dino": write_dino,
    "barlowtwins": write_barlowtwins,
    "vissl": write_vissl,
    "mmselfsup": write_mmselfsup,
    "solo-learn": write_solo_learn,
    "lightly": write_lightly,
    "lightning": write_lightning,
    "detectron2": write_detectron2,
    "generic": write_generic,
    "lightly-sequential": write_lightly_sequential,
    "wrapped": write_wrapped,
}


@pytest.fixture(scope="session")
def writers():
    return WRITERS


def file_name(fmt: str) -> str:
    return {"byol-jax": "pretrain_res50x1.pkl", "detectron2": "model.pkl", "safetensors": "model.safetensors",
            "siambench-backbone": "run", "solo-learn": "byol.ckpt", "lightly": "epoch=99.ckpt",
            "lightning": "last.ckpt"}.get(fmt, "checkpoint.pth.tar")


@pytest.fixture
def write(tmp_path, writers):
    """``write(fmt, sd, spec)`` → (path, expected dropped groups)."""

    def run(fmt, sd, spec, **options):
        path = tmp_path / file_name(fmt)
        return writers[fmt](Path(path), sd, spec, **options)

    return run
