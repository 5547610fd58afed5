"""The effective detectron2 config of a detection run, as plain data.

A preset (``configs/detection/*.yaml``) states MoCo's settings as detectron2
keys. :func:`effective_config` adds what the run decides: the backbone's
depth and widths (from the checkpoint), the datasets and the class count,
the weights, the output folder, the device and the seed, and, with
``--gpus N``, the schedule scaled by the linear-scaling rule. The result is
a nested dict that detectron2's ``merge_from_file`` reads over its
defaults; it is written beside the run, so the run can be repeated with
detectron2's own tools. Nothing here imports detectron2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ...checkpoints.canonical import CanonicalBackbone
from ...configs import Config
from ...data.detection import DetectionSplit
from ...errors import CheckpointError, ConfigError

DETECTRON2_DEPTHS = (18, 34, 50, 101, 152)
NARROW_BASIC_BUILDER = "build_basic_resnet_backbone"


def get_key(d2: dict, key: str):
    """``d2['A']['B']`` for the dotted key ``'A.B'``."""
    node = d2
    for part in key.split("."):
        node = node[part]
    return node


def set_key(d2: dict, key: str, value) -> None:
    """Set the dotted ``key`` in the nested dict ``d2``, creating sections on the way."""
    *sections, last = key.split(".")
    node = d2
    for part in sections:
        node = node.setdefault(part, {})
    node[last] = value


def pixel_stats(backbone: CanonicalBackbone) -> dict[str, list[float]]:
    """detectron2's ``PIXEL_MEAN`` and ``PIXEL_STD`` (of 0-255 RGB) for the backbone's ``input_stats``."""
    mean, std = backbone.input_stats
    return {"PIXEL_MEAN": [round(255 * v, 6) for v in mean], "PIXEL_STD": [round(255 * v, 6) for v in std]}


def backbone_settings(backbone: CanonicalBackbone) -> dict[str, object]:
    """detectron2's ResNet settings (dotted keys) for a canonical backbone, or why it cannot take it.

    detectron2 builds depths 18-152 with the ImageNet stem. A wider or
    narrower ResNet scales the stem, res2 and the per-group width together,
    as siambench's ``width`` does; detectron2's builder takes R18 and R34
    only at the standard width, so narrower ones use siambench's builder
    (:mod:`.backbone`).
    """
    spec = backbone.spec
    depth = int(spec.arch.removeprefix("resnet"))
    if spec.stem != "imagenet":
        raise CheckpointError(f"detectron2 has no ResNet with a {spec.stem} stem (3x3 conv1, no max-pool), which "
                              f"this {spec.arch} has; detection needs an ImageNet-stem checkpoint.")
    if depth not in DETECTRON2_DEPTHS:
        raise CheckpointError(f"detectron2's ResNet builds depths {', '.join(map(str, DETECTRON2_DEPTHS))}, "
                              f"not {spec.arch}.")
    base = int(64 * spec.width)
    pixels = pixel_stats(backbone)
    narrow_basic = {"MODEL.BACKBONE.NAME": NARROW_BASIC_BUILDER} if depth in (18, 34) and spec.width != 1 else {}
    return {
        **narrow_basic,
        "MODEL.RESNETS.DEPTH": depth,
        "MODEL.RESNETS.STEM_OUT_CHANNELS": base,
        "MODEL.RESNETS.RES2_OUT_CHANNELS": base if depth in (18, 34) else 4 * base,
        "MODEL.RESNETS.WIDTH_PER_GROUP": base,
        "MODEL.RESNETS.NUM_GROUPS": 1,
        **{f"MODEL.{k}": list(v) for k, v in pixels.items()},
    }


def dataset_settings(train: DetectionSplit, test: DetectionSplit, mask_on: bool) -> dict[str, object]:
    """The datasets detectron2 trains and tests on, and the class count."""
    if train.num_classes != test.num_classes:
        raise ConfigError(f"{train.dataset} {train.split} has {train.num_classes} classes but {test.dataset} "
                          f"{test.split} has {test.num_classes}.")
    if mask_on and not (train.has_masks and test.has_masks):
        raise ConfigError(f"the preset trains Mask R-CNN (MODEL.MASK_ON), but {train.dataset} has no instance masks; "
                          f"use a box-only preset (voc0712, tiny) or set detectron2.MODEL.MASK_ON=false.")
    return {
        "DATASETS.TRAIN": train.names,
        "DATASETS.TEST": test.names,
        "MODEL.ROI_HEADS.NUM_CLASSES": train.num_classes,
    }


def parse_opts(opts: list) -> dict[str, object]:
    """``[KEY, VALUE, ...]`` as detectron2's command line takes it; numbers written as strings become numbers."""
    if len(opts) % 2:
        raise ConfigError(f"opts must alternate detectron2 keys and values, got an odd number of items: {opts}")
    out = {}
    for key, value in zip(opts[::2], opts[1::2]):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        out[str(key)] = value
    return out


@dataclass(frozen=True)
class Launch:
    """How detectron2's ``launch`` runs: processes per machine, machines, and this machine's rank."""

    num_gpus: int
    num_machines: int
    machine_rank: int
    dist_url: str
    scaled: bool

    @property
    def world_size(self) -> int:
        return self.num_gpus * self.num_machines


def plan_launch(launch: Config, device: str, visible_gpus: int) -> Launch:
    """The processes to start: ``launch.num_gpus`` if set (then the schedule is scaled), else every visible GPU."""
    requested = launch.get("num_gpus")
    if requested is not None and int(requested) < 1:
        raise ConfigError(f"--gpus must be at least 1, got {requested}")
    if requested is not None and device == "cuda" and int(requested) > visible_gpus:
        raise ConfigError(f"--gpus {requested} asks for more GPUs than the {visible_gpus} visible here.")
    per_machine = int(requested) if requested is not None else (visible_gpus if device == "cuda" else 1)
    if device != "cuda" and per_machine * int(launch.num_machines) > 1:
        raise ConfigError(f"detectron2 trains on a CPU in one process only (its DistributedDataParallel wrapper "
                          f"needs GPUs); got --gpus {per_machine} on {launch.num_machines} machine(s) without CUDA.")
    return Launch(per_machine, int(launch.num_machines), int(launch.machine_rank), str(launch.dist_url),
                  scaled=requested is not None)


def scale_schedule(d2: dict, world_size: int, reference_world_size: int) -> dict:
    """The linear-scaling rule: the same images per GPU on ``world_size`` GPUs as on the reference count.

    The total batch and the LR are multiplied by ``world_size /
    reference_world_size`` and every length in iterations (training,
    warmup, LR steps, checkpoint and evaluation periods) divided by it, so
    the run sees the same number of images with the same LR per image
    (Goyal et al., "ImageNet in 1 hour"). Rounding is detectron2's
    (``DefaultTrainer.auto_scale_workers``). Precise BN's iteration count
    is stretched too, so that its statistics cover the same images.
    """
    out = copy.deepcopy(d2)
    if world_size == reference_world_size:
        return out
    solver = out["SOLVER"]
    if solver["IMS_PER_BATCH"] % reference_world_size:
        raise ConfigError(f"SOLVER.IMS_PER_BATCH {solver['IMS_PER_BATCH']} does not divide among the "
                          f"{reference_world_size} GPUs the schedule is written for (launch.reference_world_size).")
    scale = world_size / reference_world_size
    solver["IMS_PER_BATCH"] = round(solver["IMS_PER_BATCH"] * scale)
    solver["BASE_LR"] = solver["BASE_LR"] * scale
    for key in ("MAX_ITER", "WARMUP_ITERS", "CHECKPOINT_PERIOD"):
        solver[key] = round(solver[key] / scale)
    solver["STEPS"] = [round(s / scale) for s in solver["STEPS"]]
    test = out.setdefault("TEST", {})
    if "EVAL_PERIOD" in test:
        test["EVAL_PERIOD"] = round(test["EVAL_PERIOD"] / scale)
    precise = test.get("PRECISE_BN", {})
    if "NUM_ITER" in precise:
        precise["NUM_ITER"] = round(precise["NUM_ITER"] / scale)
    return out


@dataclass(frozen=True)
class EffectiveConfig:
    """The detectron2 config to run, how to launch it, and what the scaling rule changed."""

    detectron2: dict
    launch: Launch
    scaling: dict


def effective_config(preset: Config, backbone: CanonicalBackbone, train: DetectionSplit, test: DetectionSplit, *,
                     weights: str, output_dir: str, device: str = "cpu", seed: int = 0,
                     visible_gpus: int = 0) -> EffectiveConfig:
    """The preset's detectron2 keys, completed for this checkpoint, these datasets and this machine."""
    d2 = preset.detectron2.to_dict()
    settings = {
        **backbone_settings(backbone),
        **dataset_settings(train, test, bool(get_key(d2, "MODEL.MASK_ON"))),
        "MODEL.WEIGHTS": str(weights),
        "MODEL.DEVICE": device,
        "OUTPUT_DIR": str(output_dir),
        "SEED": int(seed),
        "VERSION": 2,
        **parse_opts(list(preset.get("opts") or [])),
    }
    for key, value in settings.items():
        set_key(d2, key, value)
    launch = plan_launch(preset.launch, device, visible_gpus)
    reference = int(preset.launch.reference_world_size)
    run_world = launch.world_size if launch.scaled else reference
    scaled = scale_schedule(d2, run_world, reference)
    if scaled["SOLVER"]["IMS_PER_BATCH"] % launch.world_size:
        raise ConfigError(
            f"SOLVER.IMS_PER_BATCH {scaled['SOLVER']['IMS_PER_BATCH']} does not divide among {launch.world_size} "
            f"processes; pass --gpus N (the linear-scaling rule then keeps 2 images per GPU) or use a GPU count "
            f"that divides it."
        )
    keys = ("IMS_PER_BATCH", "BASE_LR", "MAX_ITER", "STEPS", "WARMUP_ITERS")
    scaling = {
        "world_size": launch.world_size,
        "reference_world_size": reference,
        "factor": run_world / reference,
        "reference": {k: d2["SOLVER"][k] for k in keys},
        "run": {k: scaled["SOLVER"][k] for k in keys},
    }
    return EffectiveConfig(scaled, launch, scaling)
