"""The checkpoint layouts siambench reads: one registry entry per format.

Each :class:`Format` has a ``detect(source)`` that recognises the layout
from the container and the key patterns (never from the file name) and an
``extract(source, prefix)`` that returns the backbone under torchvision
names plus everything it set aside. Detection tries the formats in
registration order, most specific first; to add a format, register it above
the generic ones at the end.

What a reader sets aside is counted by group (projector, predictor,
momentum encoder, queue, heads, other networks) so that nothing is dropped
silently; tensors outside the backbone that do not belong to a known group
are kept as "other" unless their names look like ResNet weights, which the
audit then reports as unexpected.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import CheckpointError
from . import byol_jax
from .audit import explain_unknown, looks_like_backbone
from .d2_names import from_detectron2
from .source import Source


@dataclass
class Extracted:
    """A backbone under torchvision names, and what was set aside on the way."""

    tensors: dict[str, torch.Tensor]
    prefix: str = ""
    dropped: Counter = field(default_factory=Counter)
    ignored: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    padding: str = "torch"
    flags: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    declared: dict | None = None
    outside: Counter = field(default_factory=Counter)  # leading names of the keys not under ``prefix``


@dataclass(frozen=True)
class Format:
    name: str
    summary: str
    detect: Callable[[Source], bool]
    extract: Callable[[Source, str | None], Extracted]
    aliases: tuple[str, ...] = ()
    auto: bool = True


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    for fmt in FORMATS.values():
        if name == fmt.name or name in fmt.aliases:
            return fmt
    raise CheckpointError(f"unknown checkpoint format {name!r}; known formats: {', '.join(format_names())}.")


def format_names() -> list[str]:
    return [n for f in FORMATS.values() for n in (f.name, *f.aliases)]


def detect_format(source: Source) -> Format:
    for fmt in FORMATS.values():
        if fmt.auto and fmt.detect(source):
            return fmt
    explain_unknown(_keys(source.obj), str(source.path))
    raise CheckpointError(
        f"{source.path} ({source.container}) has no layout siambench recognises: {_describe(source.obj)}. "
        f"Known formats: {', '.join(format_names())}; pass --format NAME and --prefix P if the backbone is "
        f"there under another name."
    )


# -- helpers -------------------------------------------------------------------------------------------------------

def _is_sd(d) -> bool:
    """A state dict: string keys, and tensors (or numpy arrays) for at least half of its values."""
    if not isinstance(d, Mapping) or not d or not all(isinstance(k, str) for k in d):
        return False
    return 2 * sum(isinstance(v, (torch.Tensor, np.ndarray)) for v in d.values()) >= len(d)


def _holder(obj, names=("state_dict", "model")) -> tuple[Mapping | None, str | None]:
    """The state dict itself, or the entry of ``obj`` that holds it."""
    if _is_sd(obj):
        return obj, None
    if isinstance(obj, Mapping):
        for name in names:
            if _is_sd(obj.get(name)):
                return obj[name], name
    return None, None


def _keys(obj, names=("state_dict", "model")) -> list[str]:
    sd, _ = _holder(obj, names)
    return list(sd) if sd is not None else []


def _has(keys, *prefixes) -> bool:
    return any(k.startswith(prefixes) for k in keys)


def resnet_prefixes(keys) -> list[str]:
    """Every prefix P under which a ResNet trunk sits (``P + 'conv1.weight'`` and ``P + 'layer…'``)."""
    keys = list(keys)
    found = set()
    for k in keys:
        if k.endswith("conv1.weight"):
            p = k[: -len("conv1.weight")]
            if (not p or p.endswith(".")) and any(x.startswith(p + "layer") for x in keys):
                found.add(p)
    return sorted(found)


def _is_lightning(obj) -> bool:
    return isinstance(obj, Mapping) and (
        "pytorch-lightning_version" in obj or {"state_dict", "global_step", "epoch"} <= set(obj)
    )


def _describe(obj) -> str:
    if isinstance(obj, Mapping):
        keys = [str(k) for k in obj]
        return f"a mapping with {len(keys)} entries ({', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''})"
    return f"a {type(obj).__name__}"


def _to_tensor(v) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v
    array = np.asarray(v)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def split(sd: Mapping, prefix: str, drops=(), fc_label: str = "classifier (fc)") -> Extracted:
    """Keys under ``prefix`` become the backbone; ``drops`` (label, key prefix) are counted and set aside.

    Anything else is "other", unless it looks like ResNet weights: those are
    listed as unexpected, because a second trunk the reader does not know
    about means the file is not what it seems.
    """
    out = Extracted({}, prefix=prefix)
    for key, value in sd.items():
        if not isinstance(value, (torch.Tensor, np.ndarray)):
            out.ignored.append(key)
            continue
        if not key.startswith(prefix):
            parts = key.split(".")
            out.outside[".".join(parts[:2]) + ("." if len(parts) > 2 else "")] += 1
        label = next((lab for lab, p in drops if key.startswith(p)), None)
        if label:
            out.dropped[label] += 1
        elif key.startswith(prefix):
            name = key[len(prefix):]
            if name.startswith("fc."):
                out.dropped[fc_label] += 1
            else:
                out.tensors[name] = _to_tensor(value)
        elif looks_like_backbone(key):
            out.unexpected.append(key)
        else:
            out.dropped[f"other ({key.split('.')[0]})"] += 1
    return out


def _prefix_or(prefix: str | None, keys, *candidates: str) -> str:
    if prefix is not None:
        return prefix
    return next((c for c in candidates if _has(keys, c)), candidates[-1])


def _ignored(obj, holder) -> list[str]:
    return [str(k) for k in obj if k != holder] if isinstance(obj, Mapping) and holder else []


# -- siambench's own files -------------------------------------------------------------------------------------------

def _extract_backbone_file(src: Source, prefix):
    out = split(src.obj, prefix or "")
    meta = src.metadata
    out.padding = meta.get("padding", "torch")
    out.declared = {k: meta.get(k) for k in ("arch", "width", "stem")}
    for key in ("input_normalization", "fc_bias_untrained", "stem_padding"):
        if key in meta:
            out.flags[key] = meta[key]
    return out


register(Format(
    "siambench-backbone",
    "siambench's backbone.pth + meta.json (written by pretraining; sha256 checked against meta.json)",
    lambda src: src.container == "siambench-backbone",
    _extract_backbone_file,
))


def _extract_native(src: Source, prefix):
    """The backbone and the set-aside modules where the file's ``layout`` says (version 2); a version-1 file has
    its backbone under ``backbone.`` and everything else is set aside by top-level module name."""
    layout, model = src.obj.get("layout") or {}, src.obj["model"]
    if not isinstance(layout, Mapping):
        raise CheckpointError(f"{src.path}: its layout should be a mapping; found {layout!r:.200}")
    backbone = prefix or layout.get("backbone", "backbone.")
    aside = layout.get("set_aside") or {f"{name}.": name for name in
                                        sorted({k.split(".", 1)[0] for k in model if not k.startswith(backbone)})}
    strings = lambda *xs: all(isinstance(x, str) for x in xs)  # noqa: E731
    if not (isinstance(aside, Mapping) and strings(backbone, *aside, *aside.values())):
        raise CheckpointError(f"{src.path}: its layout should map prefixes to names (strings); found {layout!r:.200}")
    out = split(model, backbone, [(f"{role} ({p.rstrip('.')})", p) for p, role in aside.items()])
    out.ignored += _ignored(src.obj, "model")
    model_cfg = (src.obj.get("config") or {}).get("model") or {}
    out.declared = {k: model_cfg.get(k) for k in ("arch", "width", "stem")} if model_cfg else None
    return out


register(Format(
    "siambench-native",
    "siambench's training checkpoint step_*.pt (format='siambench-native'; the encoder where its layout says)",
    lambda src: isinstance(src.obj, Mapping) and src.obj.get("format") == "siambench-native",
    _extract_native,
))


# -- JAX / detectron2 pickles ----------------------------------------------------------------------------------------

def _extract_byol(src: Source, prefix):
    tensors, dropped, ignored, unplaced, root = byol_jax.extract(src.obj)
    return Extracted(
        tensors, prefix=f"{root}/~/", dropped=dropped, ignored=ignored, unexpected=unplaced, padding="tf_same",
        notes=["BYOL's JAX network used TensorFlow 'SAME' padding; the canonical model pads the same way "
               "(padding='tf_same'), so it computes what the JAX network computed."],
    )


register(Format(
    "byol-jax",
    "BYOL's official JAX release (pretrain_res50x1.pkl, pretrain_res200x2.pkl): haiku params, online network",
    lambda src: src.container == "pickle" and byol_jax.is_byol_pickle(src.obj),
    _extract_byol,
))


def _d2_model(obj):
    model = obj.get("model") if isinstance(obj, Mapping) else None
    return model if _is_sd(model) else None


def _extract_detectron2(src: Source, prefix):
    model = _d2_model(src.obj)
    if prefix is None:
        roots = sorted({k[: -len("stem.conv1.weight")] for k in model if k.endswith("stem.conv1.weight")})
        if len(roots) > 1:
            raise CheckpointError(f"{src.path} holds several detectron2 ResNets (prefixes {roots}); pass --prefix.")
        prefix = roots[0] if roots else ""
    renamed = {}
    for key, value in model.items():
        renamed[prefix + from_detectron2(key[len(prefix):]) if key.startswith(prefix) else key] = value
    out = split(renamed, prefix)
    out.ignored += _ignored(src.obj, "model")
    return out


register(Format(
    "detectron2",
    "detectron2 .pkl ({'model': {stem.*, res2..res5.*}}; the reverse of the detectron2 export, C.5 rules)",
    lambda src: _d2_model(src.obj) is not None and any(k.endswith("stem.conv1.weight") for k in _d2_model(src.obj)),
    _extract_detectron2,
))


# -- third-party PyTorch layouts --------------------------------------------------------------------------------------

def _vissl_trunk(obj):
    node = obj
    for name in ("classy_state_dict", "base_model", "model", "trunk"):
        if not isinstance(node, Mapping) or name not in node:
            return None
        node = node[name]
    return node if _is_sd(node) else None


def _extract_vissl(src: Source, prefix):
    obj = src.obj
    trunk = _vissl_trunk(obj)
    if trunk is None:
        sd, holder = _holder(obj)
        if sd is None:
            raise CheckpointError(
                f"{src.path}: a VISSL checkpoint keeps its trunk at classy_state_dict → base_model → model → "
                f"trunk, which this file lacks ({_describe(obj)})."
            )
        out = split(sd, prefix or "_feature_blocks.")
        out.ignored += _ignored(obj, holder)
        return out
    out = split(trunk, prefix or "_feature_blocks.")
    model = obj["classy_state_dict"]["base_model"]["model"]
    heads = model.get("heads")
    if isinstance(heads, Mapping) and heads:
        out.dropped["heads"] += len(heads)
    out.ignored += [str(k) for k in obj if k != "classy_state_dict"]
    out.ignored += [f"classy_state_dict.{k}" for k in obj["classy_state_dict"] if k != "base_model"]
    return out


register(Format(
    "vissl",
    "VISSL (classy_state_dict → base_model → model → trunk, _feature_blocks.; heads dropped)",
    lambda src: _vissl_trunk(src.obj) is not None or _has(_keys(src.obj), "_feature_blocks."),
    _extract_vissl,
))


def _extract_dino(src: Source, prefix):
    teacher = src.obj["teacher"]
    keys = list(teacher)
    out = split(teacher, _prefix_or(prefix, keys, "module.backbone.", "backbone."),
                [("DINO head (projector)", "module.head."), ("DINO head (projector)", "head.")])
    out.dropped["student network (DINO evaluates the teacher)"] += len(src.obj["student"])
    out.ignored += [str(k) for k in src.obj if k not in ("teacher", "student")]
    return out


register(Format(
    "dino",
    "DINO full training checkpoint ({student, teacher, ...}): the teacher's backbone, head dropped",
    lambda src: isinstance(src.obj, Mapping) and _is_sd(src.obj.get("teacher")) and _is_sd(src.obj.get("student")),
    _extract_dino,
))


def _ddp_format(name, summary, core, drops, marker=None, aliases=(), ddp_only=False):
    """A DDP-era layout: ``[module.]<core>`` holds the trunk, ``drops`` are relative to ``[module.]``.

    ``marker``: key prefixes of which one must be present too; ``ddp_only``: only the ``module.`` form
    (for names as common as ``backbone.``, which alone say little).
    """
    ddps = ("module.",) if ddp_only else ("module.", "")

    def detect(src):
        keys = _keys(src.obj)
        if not _has(keys, *(p + core for p in ddps)) or _is_lightning(src.obj):
            return False
        return marker is None or _has(keys, *(p + m for p in ddps for m in marker))

    def extract(src, prefix):
        sd, holder = _holder(src.obj)
        ddp = "module." if _has(sd, "module." + core) else ""
        out = split(sd, prefix if prefix is not None else ddp + core, [(lab, ddp + p) for lab, p in drops])
        out.ignored += _ignored(src.obj, holder)
        return out

    return register(Format(name, summary, detect, extract, aliases))


_ddp_format("moco", "MoCo v1/v2 (module.encoder_q.; encoder_k, queue and the fc MLP dropped)", "encoder_q.",
            [("projector (encoder_q.fc)", "encoder_q.fc."), ("momentum encoder (encoder_k)", "encoder_k."),
             ("queue", "queue")], aliases=("mocov2",))
_ddp_format("mocov3", "MoCo v3 ResNet (module.base_encoder.; projector fc, momentum encoder, predictor dropped)",
            "base_encoder.",
            [("projector (base_encoder.fc)", "base_encoder.fc."), ("momentum encoder", "momentum_encoder."),
             ("predictor", "predictor.")])
_ddp_format("simsiam", "SimSiam (module.encoder.; the encoder.fc projector and the predictor dropped)", "encoder.",
            [("projector (encoder.fc)", "encoder.fc."), ("predictor", "predictor.")])
_ddp_format("barlowtwins", "Barlow Twins training checkpoint (module.backbone.; projector and bn dropped)",
            "backbone.", [("projector", "projector."), ("cross-correlation BN (bn)", "bn.")],
            marker=("projector.", "bn."), ddp_only=True)


def _extract_swav(src: Source, prefix):
    sd, holder = _holder(src.obj)
    ddp = "module." if _has(sd, "module.conv1.weight") else ""
    out = split(sd, prefix if prefix is not None else ddp,
                [("projection head", ddp + "projection_head."), ("prototypes", ddp + "prototypes.")])
    out.ignored += _ignored(src.obj, holder)
    out.notes.append("SwAV's ResNet pads conv1 by 1 (ConstantPad2d) and then by 2: 3 in all, as torchvision does.")
    return out


register(Format(
    "swav",
    "SwAV (trunk under module.; projection_head and prototypes dropped)",
    lambda src: _has(_keys(src.obj), "module.conv1.weight", "conv1.weight")
    and _has(_keys(src.obj), "module.projection_head.", "module.prototypes.", "projection_head.", "prototypes."),
    _extract_swav,
))


def _extract_mm(src: Source, prefix):
    sd = src.obj["state_dict"]
    drops = [("projector (neck)", "neck."), ("head", "head."), ("momentum encoder (target_net)", "target_net."),
             ("momentum encoder (encoder_k)", "encoder_k."),
             ("data preprocessor (data_preprocessor)", "data_preprocessor."), ("queue", "queue")]
    out = split(sd, _prefix_or(prefix, sd, "backbone.", ""), drops)
    out.ignored += _ignored(src.obj, "state_dict")
    return out


register(Format(
    "mmselfsup",
    "OpenMMLab (mmselfsup, mmpretrain, mmseg): {meta, state_dict}, backbone.; neck, head, target_net dropped",
    lambda src: isinstance(src.obj, Mapping) and "meta" in src.obj and _is_sd(src.obj.get("state_dict"))
    and not _is_lightning(src.obj),
    _extract_mm,
    aliases=("mmpretrain", "mmseg"),
))


def sequential_trunks(sd: Mapping) -> dict[str, dict[str, str]]:
    """Every ``nn.Sequential(*resnet.children())[:-1]`` in ``sd``: prefix → {child prefix → torchvision name}.

    The children are numbered by position (conv1, bn1, relu, maxpool, layer1..4, avgpool), so they are told
    apart by what they hold: a 3-input-channel convolution, the BatchNorm right after it, and four stages of
    blocks, whatever their indices (a replaced max-pool or a CIFAR stem keeps the count).
    """
    found = {}
    for key, value in sd.items():
        m = re.match(r"^((?:.*\.)?)(\d+)\.weight$", key)
        shape = tuple(getattr(value, "shape", ()))
        if not m or len(shape) != 4 or shape[1] != 3:
            continue
        p, conv = m.group(1), int(m.group(2))
        stage_re = re.compile(re.escape(p) + r"(\d+)\.0\.conv1\.weight$")
        stages = sorted({int(x.group(1)) for k in sd if (x := stage_re.match(k))})
        if f"{p}{conv + 1}.running_mean" not in sd or len(stages) != 4 or stages[0] <= conv + 1:
            continue
        found[p] = {f"{p}{conv}.": f"{p}conv1.", f"{p}{conv + 1}.": f"{p}bn1.",
                    **{f"{p}{s}.": f"{p}layer{n + 1}." for n, s in enumerate(stages)}}
    return found


def _renamed(sd: Mapping, trunks: dict[str, dict[str, str]]) -> dict:
    names = {old: new for mapping in trunks.values() for old, new in mapping.items()}
    out = {}
    for key, value in sd.items():
        old = next((o for o in names if key.startswith(o)), None)
        out[names[old] + key[len(old):] if old else key] = value
    return out


def _single_entry(obj) -> tuple[Mapping | None, str | None]:
    """``{"resnet18_parameters": state_dict}``: a dict whose one entry is a state dict."""
    if isinstance(obj, Mapping) and len(obj) == 1:
        (name, value), = obj.items()
        if isinstance(name, str) and _is_sd(value):
            return value, name
    return None, None


def _sequential_holder(obj) -> tuple[Mapping | None, str | None]:
    sd, holder = _holder(obj)
    if sd is None or not sequential_trunks(sd):
        sd, holder = _single_entry(obj)
    return (sd, holder) if sd is not None and sequential_trunks(sd) else (None, None)


_LIGHTLY_HEADS = [
    ("projection head (projection_head)", "projection_head."),
    ("prediction head (prediction_head)", "prediction_head."),
    ("classifier, online probe (online_classifier)", "online_classifier."),
]


def _extract_sequential(src: Source, prefix):
    sd, holder = _sequential_holder(src.obj)
    trunks = sequential_trunks(sd)
    if prefix is None:
        if "backbone." in trunks or len(trunks) == 1:
            prefix = "backbone." if "backbone." in trunks else next(iter(trunks))
        else:
            raise _several(src, sorted(trunks), holder)
    drops = [(f"momentum encoder ({p.rstrip('.')})" if re.search("momentum|teacher|target", p)
              else f"other encoder ({p.rstrip('.')})", p) for p in trunks if p and p != prefix]
    out = split(_renamed(sd, trunks), prefix, drops + _LIGHTLY_HEADS)
    out.ignored += _ignored(src.obj, holder)
    out.notes.append("the backbone is an nn.Sequential of the ResNet's children (lightly's examples): its numbered "
                     "children were mapped to conv1, bn1 and layer1-4 by what they hold.")
    return out


register(Format(
    "lightly-sequential",
    "nn.Sequential(*resnet.children()[:-1]) backbone, as lightly's examples build it (backbone.0 = conv1, .1 = "
    "bn1, .4-.7 = layer1-4): plain, in a Lightning checkpoint or in a one-entry dict; momentum copies, heads dropped",
    lambda src: _sequential_holder(src.obj)[0] is not None,
    _extract_sequential,
))


def _lightning_format(name, summary, markers, drops, note_cifar=False):
    def detect(src):
        keys = _keys(src.obj, ("state_dict",))
        return _is_lightning(src.obj) and _has(keys, "backbone.", "encoder.") and _has(keys, *markers)

    def extract(src, prefix):
        sd = src.obj["state_dict"]
        out = split(sd, _prefix_or(prefix, sd, "backbone.", "encoder."), drops)
        out.ignored += _ignored(src.obj, "state_dict")
        conv1 = out.tensors.get("conv1.weight")
        if note_cifar and conv1 is not None and conv1.shape[-1] == 3:
            out.flags["stem_padding"] = 2
            out.notes.append(
                "solo-learn's CIFAR stem: conv1 is 3×3, stride 1 and no max-pool, but padded by 2 (siambench's "
                "CIFAR stem pads by 1), so its feature maps are 2 pixels larger than the canonical model's."
            )
        return out

    return register(Format(name, summary, detect, extract))


_lightning_format(
    "solo-learn", "solo-learn Lightning checkpoint (backbone.; momentum_backbone, projector, predictor, classifier "
    "dropped; CIFAR stem recognised)",
    ("momentum_backbone.", "projector.", "predictor.", "classifier.", "momentum_projector."),
    [("momentum encoder (momentum_backbone)", "momentum_backbone."), ("momentum projector", "momentum_projector."),
     ("projector", "projector."), ("predictor", "predictor."),
     ("classifier, online probe (classifier)", "classifier.")],
    note_cifar=True,
)
_lightning_format(
    "lightly", "lightly Lightning checkpoint (backbone.; teacher_backbone, projection/prediction heads, "
    "online_classifier dropped)",
    ("teacher_backbone.", "projection_head.", "prediction_head.", "online_classifier.", "student_projection_head."),
    [("momentum encoder (teacher_backbone)", "teacher_backbone."),
     ("teacher projection head (teacher_projection_head)", "teacher_projection_head."),
     ("projection head (projection_head)", "projection_head."),
     ("projection head (student_projection_head)", "student_projection_head."),
     ("prediction head (prediction_head)", "prediction_head."),
     ("classifier, online probe (online_classifier)", "online_classifier.")],
)


def _several(src: Source, found, holder) -> CheckpointError:
    """The error for a file holding several ResNets (or none): the prefixes, and the command that picks one."""
    where = holder or "the state dict"
    if not found:
        return CheckpointError(f"{src.path}: found no ResNet in {where}; pass --prefix P to name the backbone.")
    return CheckpointError(
        f"{src.path}: found ResNets under the prefixes {', '.join(repr(p) for p in found)} in {where}; name the "
        f"backbone with --prefix, e.g. siambench ckpt inspect {src.path} --prefix {found[0]}"
    )


def _extract_one_prefix(src: Source, prefix, holders=("state_dict", "model")):
    sd, holder = _holder(src.obj, holders)
    if sd is None:
        raise CheckpointError(f"{src.path}: no state dict found in {_describe(src.obj)}.")
    if prefix is None:
        found = resnet_prefixes(sd)
        if len(found) != 1:
            raise _several(src, found, holder)
        prefix = found[0]
    out = split(sd, prefix)
    out.ignored += _ignored(src.obj, holder)
    return out


register(Format(
    "lightning",
    "any PyTorch-Lightning checkpoint with a ResNet under any prefix (several: pick one with --prefix)",
    lambda src: _is_lightning(src.obj) and bool(resnet_prefixes(_keys(src.obj, ("state_dict",)))),
    lambda src, prefix: _extract_one_prefix(src, prefix, ("state_dict",)),
))


def _root_names(keys) -> bool:
    keys = set(keys)
    return "conv1.weight" in keys and any(k.startswith("layer") for k in keys)


def _extract_simclr(src: Source, prefix):
    out = split(src.obj["state_dict"], prefix or "")
    out.flags.update(input_normalization="none", fc_bias_untrained=True)
    out.notes += [
        "SimCLR v1 converted to PyTorch expects un-normalised RGB in [0, 1] (no mean/std normalisation).",
        "its fc.bias is not a trained value (the converter assigned the TF bias to fc.weight.bias), so fc was dropped.",
    ]
    return out


register(Format(
    "simclr-v1",
    "SimCLR v1 converted to PyTorch (tonylins/simclr-converter: {'state_dict'} only, torchvision names + fc); "
    "flags un-normalised input and an untrained fc.bias",
    lambda src: isinstance(src.obj, Mapping) and set(src.obj) == {"state_dict"} and _is_sd(src.obj["state_dict"])
    and _root_names(src.obj["state_dict"]) and "fc.weight" in src.obj["state_dict"],
    _extract_simclr,
))


def _extract_safetensors(src: Source, prefix):
    out = split(src.obj, prefix or "")
    try:
        meta = json.loads(src.metadata.get("siambench", "{}") or "{}")
    except ValueError as exc:
        raise CheckpointError(
            f"{src.path}: the 'siambench' entry of its safetensors metadata is not valid JSON ({exc}); expected "
            f"the JSON object siambench's export writes."
        ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{src.path}: the 'siambench' entry of its safetensors metadata is a JSON {type(meta).__name__}; "
            f"expected the JSON object siambench's export writes."
        )
    out.padding = meta.get("padding", src.metadata.get("padding", "torch"))
    for key in ("input_normalization", "fc_bias_untrained", "stem_padding"):
        if key in meta:
            out.flags[key] = meta[key]
    if meta:
        out.declared = {k: meta.get(k) for k in ("arch", "width", "stem")}
    return out


register(Format(
    "safetensors",
    "safetensors file with torchvision names (siambench's export carries the architecture and flags in its metadata)",
    lambda src: src.container == "safetensors" and _root_names(src.obj),
    _extract_safetensors,
))


def _extract_torchvision(src: Source, prefix):
    sd, holder = _holder(src.obj)
    if sd is None:
        raise CheckpointError(f"{src.path}: no state dict found in {_describe(src.obj)}.")
    out = split(sd, prefix or "")
    out.ignored += _ignored(src.obj, holder)
    return out


register(Format(
    "torchvision",
    "torchvision ResNet state dict (also DINO's and Barlow Twins' hub backbones, ssl-transfer models); fc dropped",
    lambda src: _root_names(_keys(src.obj)),
    _extract_torchvision,
))
register(Format(
    "timm",
    "timm resnet state dict: the same names as torchvision's, so auto-detection reports it as torchvision",
    lambda src: False,
    _extract_torchvision,
    auto=False,
))
def _extract_wrapped(src: Source, prefix):
    sd, holder = _single_entry(src.obj)
    if prefix is None:
        found = [""] if _root_names(sd) else resnet_prefixes(sd)
        if len(found) != 1:
            raise _several(src, found, holder)
        prefix = found[0]
    return split(sd, prefix)


register(Format(
    "wrapped",
    "a dict whose one entry holds a ResNet state dict, e.g. lightly's tutorial {'resnet18_parameters': sd}",
    lambda src: _single_entry(src.obj)[0] is not None
    and (_root_names(_single_entry(src.obj)[0]) or bool(resnet_prefixes(_single_entry(src.obj)[0]))),
    _extract_wrapped,
))
register(Format(
    "generic",
    "any state dict (plain, or under state_dict/model) with a ResNet under any prefix, e.g. module. (several: "
    "pick one with --prefix)",
    lambda src: bool(resnet_prefixes(_keys(src.obj))),
    _extract_one_prefix,
))
