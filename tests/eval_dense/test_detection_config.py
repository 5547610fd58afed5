"""The effective detectron2 config equals MoCo's per task, and the GPU-scaling rule.

The expected values are written out from PROTOCOLS C.5 (MoCo's
Base-RCNN-C4-BN.yaml, pascal_voc_R_50_C4_24k[_moco].yaml,
coco_R_50_C4_2x[_moco].yaml, and detectron2's 1x COCO schedule), not taken
from the code under test.
"""

import sys

import pytest
import torch
import yaml

from siambench.checkpoints.canonical import CanonicalBackbone
from siambench.configs import apply_overrides, list_presets, load_preset
from siambench.data.detection import VOC_CLASSES, CocoSource, DetectionSplit, VocSource
from siambench.errors import CheckpointError, ConfigError
from siambench.eval_dense.detection import EngineNotInstalledError, require_detectron2
from siambench.eval_dense.detection.config import effective_config, get_key
from siambench.eval_dense.detection.run import run_dir, write_config
from siambench.models.resnet import ResNetSpec
from siambench.stages import default_protocol

MOCO_BASE = {
    "MODEL.META_ARCHITECTURE": "GeneralizedRCNN",
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 6000,
    "MODEL.RPN.POST_NMS_TOPK_TEST": 1000,
    "MODEL.ROI_HEADS.NAME": "Res5ROIHeadsExtraNorm",
    "MODEL.BACKBONE.FREEZE_AT": 0,
    "MODEL.RESNETS.NORM": "naiveSyncBN",
    "TEST.PRECISE_BN.ENABLED": True,
    "TEST.PRECISE_BN.NUM_ITER": 200,
    "SOLVER.IMS_PER_BATCH": 16,
    "SOLVER.BASE_LR": 0.02,
    # the *_moco.yaml additions for torchvision-layout weights
    "MODEL.PIXEL_MEAN": [123.675, 116.280, 103.530],
    "MODEL.PIXEL_STD": [58.395, 57.120, 57.375],
    "MODEL.RESNETS.STRIDE_IN_1X1": False,
    "INPUT.FORMAT": "RGB",
    # an R50: detectron2's default widths
    "MODEL.RESNETS.DEPTH": 50,
    "MODEL.RESNETS.STEM_OUT_CHANNELS": 64,
    "MODEL.RESNETS.RES2_OUT_CHANNELS": 256,
    "MODEL.RESNETS.WIDTH_PER_GROUP": 64,
    "MODEL.RESNETS.NUM_GROUPS": 1,
}

MOCO_TASKS = {
    "voc0712": {
        "MODEL.MASK_ON": False,
        "MODEL.ROI_HEADS.NUM_CLASSES": 20,
        "INPUT.MIN_SIZE_TRAIN": [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800],
        "INPUT.MIN_SIZE_TEST": 800,
        "SOLVER.STEPS": [18000, 22000],
        "SOLVER.MAX_ITER": 24000,
        "SOLVER.WARMUP_ITERS": 100,
    },
    "coco_2x": {
        "MODEL.MASK_ON": True,
        "MODEL.ROI_HEADS.NUM_CLASSES": 80,
        "INPUT.MIN_SIZE_TRAIN": [640, 672, 704, 736, 768, 800],
        "INPUT.MIN_SIZE_TEST": 800,
        "SOLVER.STEPS": [120000, 160000],
        "SOLVER.MAX_ITER": 180000,
        "SOLVER.WARMUP_ITERS": 1000,
    },
    "coco_1x": {
        "MODEL.MASK_ON": True,
        "MODEL.ROI_HEADS.NUM_CLASSES": 80,
        "INPUT.MIN_SIZE_TRAIN": [640, 672, 704, 736, 768, 800],
        "INPUT.MIN_SIZE_TEST": 800,
        "SOLVER.STEPS": [60000, 80000],
        "SOLVER.MAX_ITER": 90000,
        "SOLVER.WARMUP_ITERS": 1000,
    },
}

# detectron2 defaults that MoCo's configs leave alone: the effective config must not change them.
D2_DEFAULTS = {
    "SOLVER.MOMENTUM": 0.9,
    "SOLVER.WEIGHT_DECAY": 1e-4,
    "SOLVER.GAMMA": 0.1,
    "SOLVER.WARMUP_FACTOR": 1.0 / 1000,
    "INPUT.MAX_SIZE_TRAIN": 1333,
    "INPUT.MAX_SIZE_TEST": 1333,
    "MODEL.RESNETS.OUT_FEATURES": ["res4"],
    "MODEL.BACKBONE.NAME": "build_resnet_backbone",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN": 2000,
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE": 512,
    "SOLVER.REFERENCE_WORLD_SIZE": 0,
}


def backbone(arch="resnet50", width=1.0, stem="imagenet", **meta):
    return CanonicalBackbone({}, ResNetSpec(arch, width, stem), {"sha256": "ab" * 32, **meta})


def voc_splits():
    train = DetectionSplit("voc0712", "train", (
        VocSource("siambench_voc_2007_trainval", "/d/VOC2007", "trainval", 2007, VOC_CLASSES, 5011),
        VocSource("siambench_voc_2012_trainval", "/d/VOC2012", "trainval", 2012, VOC_CLASSES, 11540),
    ), 20)
    test = DetectionSplit("voc0712", "test", (
        VocSource("siambench_voc_2007_test", "/d/VOC2007", "test", 2007, VOC_CLASSES, 4952),), 20)
    return train, test


def coco_splits():
    def split(name):
        source = CocoSource(f"siambench_coco_2017_{name}", f"/c/annotations/instances_{name}2017.json", f"/c/{name}2017")
        return DetectionSplit("coco2017", name, (source,), 80, has_masks=True)

    return split("train"), split("val")


def effective(preset="voc0712", overrides=(), bb=None, device="cpu", visible_gpus=0, seed=0):
    cfg = apply_overrides(load_preset("detection", preset), list(overrides))
    train, test = voc_splits() if cfg.dataset == "voc0712" else coco_splits()
    return effective_config(cfg, bb or backbone(), train, test, weights="/run/backbone.pkl", output_dir="/run",
                            device=device, seed=seed, visible_gpus=visible_gpus)


def absent_or(d2, key, value):
    try:
        return get_key(d2, key) == value
    except KeyError:
        return True


@pytest.mark.parametrize("task", sorted(MOCO_TASKS))
def test_effective_config_equals_moco(task):
    d2 = effective(task).detectron2
    expected = {**MOCO_BASE, **MOCO_TASKS[task]}
    got = {key: get_key(d2, key) for key in expected}
    assert got == expected
    for key, value in D2_DEFAULTS.items():
        assert absent_or(d2, key, value), key


def test_effective_config_names_the_datasets_weights_and_run():
    d2 = effective("voc0712", seed=3).detectron2
    assert d2["DATASETS"] == {"TRAIN": ["siambench_voc_2007_trainval", "siambench_voc_2012_trainval"],
                              "TEST": ["siambench_voc_2007_test"]}
    assert (d2["MODEL"]["WEIGHTS"], d2["OUTPUT_DIR"], d2["MODEL"]["DEVICE"], d2["SEED"]) == (
        "/run/backbone.pkl", "/run", "cpu", 3)
    coco = effective("coco_2x").detectron2["DATASETS"]
    assert coco == {"TRAIN": ["siambench_coco_2017_train"], "TEST": ["siambench_coco_2017_val"]}


def test_presets_name_their_dataset_and_the_defaults_map_back():
    assert {p: load_preset("detection", p).dataset for p in list_presets("detection")} == {
        "voc0712": "voc0712", "coco_1x": "coco2017", "coco_2x": "coco2017", "tiny": "shapes_voc"}
    defaults = [default_protocol("detection", d) for d in ("voc0712", "coco2017", "shapes_voc")]
    assert defaults == ["voc0712", "coco_1x", "tiny"]
    with pytest.raises(ConfigError, match="voc0712"):
        default_protocol("detection", "cifar10")


# GPUs -> (IMS_PER_BATCH, BASE_LR, MAX_ITER, STEPS, WARMUP_ITERS, CHECKPOINT_PERIOD, PRECISE_BN iters) for VOC:
# 2 images per GPU, LR x N/8, every length x 8/N (rounded to the nearest iteration).
VOC_SCALED = {
    1: (2, 0.0025, 192000, [144000, 176000], 800, 40000, 1600),
    2: (4, 0.005, 96000, [72000, 88000], 400, 20000, 800),
    3: (6, 0.0075, 64000, [48000, 58667], 267, 13333, 533),
    4: (8, 0.01, 48000, [36000, 44000], 200, 10000, 400),
    8: (16, 0.02, 24000, [18000, 22000], 100, 5000, 200),
    16: (32, 0.04, 12000, [9000, 11000], 50, 2500, 100),
}


def solver_values(d2):
    s = d2["SOLVER"]
    return (s["IMS_PER_BATCH"], s["BASE_LR"], s["MAX_ITER"], s["STEPS"], s["WARMUP_ITERS"], s["CHECKPOINT_PERIOD"],
            d2["TEST"]["PRECISE_BN"]["NUM_ITER"])


@pytest.mark.parametrize("gpus", sorted(VOC_SCALED))
def test_gpus_scale_the_schedule_linearly(gpus):
    overrides = [f"launch.num_gpus={min(gpus, 8)}", f"launch.num_machines={max(gpus // 8, 1)}"]
    run = effective("voc0712", overrides, device="cuda", visible_gpus=8)
    ims, lr, *rest = VOC_SCALED[gpus]
    got_ims, got_lr, *got_rest = solver_values(run.detectron2)
    assert (got_ims, got_rest) == (ims, rest) and got_lr == pytest.approx(lr)
    assert run.launch.world_size == gpus and run.scaling["factor"] == pytest.approx(gpus / 8)
    assert run.scaling["reference"]["MAX_ITER"] == 24000 and run.scaling["run"]["MAX_ITER"] == rest[0]


def test_coco_1x_on_four_gpus():
    run = effective("coco_1x", ["launch.num_gpus=4"], device="cuda", visible_gpus=4)
    assert solver_values(run.detectron2)[:5] == (8, 0.01, 180000, [120000, 160000], 2000)


def test_without_gpus_the_schedule_is_as_written():
    on_cpu = effective("voc0712")
    assert (on_cpu.launch.num_gpus, on_cpu.launch.world_size, on_cpu.scaling["factor"]) == (1, 1, 1)
    assert solver_values(on_cpu.detectron2) == VOC_SCALED[8]
    four = effective("voc0712", device="cuda", visible_gpus=4)
    assert four.launch.num_gpus == 4 and solver_values(four.detectron2) == VOC_SCALED[8]
    with pytest.raises(ConfigError, match="does not divide among 3"):
        effective("voc0712", device="cuda", visible_gpus=3)
    with pytest.raises(ConfigError, match="more GPUs"):
        effective("voc0712", ["launch.num_gpus=4"], device="cuda", visible_gpus=2)
    with pytest.raises(ConfigError, match="at least 1"):
        effective("voc0712", ["launch.num_gpus=0"])
    with pytest.raises(ConfigError, match="one process"):
        effective("voc0712", ["launch.num_gpus=2"])
    one = effective("voc0712", ["launch.num_gpus=1"])
    assert one.launch.world_size == 1 and solver_values(one.detectron2) == VOC_SCALED[1]


def test_backbone_settings_follow_the_checkpoint():
    wide = effective(bb=backbone("resnet50", 2.0)).detectron2["MODEL"]["RESNETS"]
    assert (wide["STEM_OUT_CHANNELS"], wide["RES2_OUT_CHANNELS"], wide["WIDTH_PER_GROUP"]) == (128, 512, 128)
    quarter = effective(bb=backbone("resnet50", 0.25)).detectron2["MODEL"]["RESNETS"]
    assert (quarter["STEM_OUT_CHANNELS"], quarter["RES2_OUT_CHANNELS"], quarter["WIDTH_PER_GROUP"]) == (16, 64, 16)
    r18 = effective(bb=backbone("resnet18")).detectron2["MODEL"]
    assert (r18["RESNETS"]["DEPTH"], r18["RESNETS"]["STEM_OUT_CHANNELS"], r18["RESNETS"]["RES2_OUT_CHANNELS"]) == (
        18, 64, 64)
    assert "NAME" not in r18["BACKBONE"]  # detectron2's own builder
    narrow = effective(bb=backbone("resnet18", 0.25)).detectron2["MODEL"]
    assert (narrow["RESNETS"]["STEM_OUT_CHANNELS"], narrow["RESNETS"]["RES2_OUT_CHANNELS"]) == (16, 16)
    assert narrow["BACKBONE"]["NAME"] == "build_basic_resnet_backbone"
    assert effective(bb=backbone("resnet101")).detectron2["MODEL"]["RESNETS"]["DEPTH"] == 101
    raw = effective(bb=backbone(input_normalization="none")).detectron2["MODEL"]
    assert (raw["PIXEL_MEAN"], raw["PIXEL_STD"]) == ([0.0, 0.0, 0.0], [255.0, 255.0, 255.0])
    with pytest.raises(CheckpointError, match="cifar stem"):
        effective(bb=backbone("resnet18", 1.0, "cifar"))
    with pytest.raises(CheckpointError, match="not resnet200"):
        effective(bb=backbone("resnet200"))


def test_masks_need_a_dataset_with_masks_and_opts_reach_detectron2():
    cfg = load_preset("detection", "coco_2x")
    train, test = voc_splits()
    with pytest.raises(ConfigError, match="MASK_ON"):
        effective_config(cfg, backbone(), train, test, weights="w", output_dir="o")
    d2 = effective("voc0712", ["opts=[SOLVER.WEIGHT_DECAY, 5e-5, MODEL.RPN.NMS_THRESH, 0.6]"]).detectron2
    assert d2["SOLVER"]["WEIGHT_DECAY"] == 5e-5 and d2["MODEL"]["RPN"]["NMS_THRESH"] == 0.6
    assert effective("voc0712", ["detectron2.SOLVER.BASE_LR=0.01"]).detectron2["SOLVER"]["BASE_LR"] == 0.01
    with pytest.raises(ConfigError, match="odd"):
        effective("voc0712", ["opts=[SOLVER.WEIGHT_DECAY]"])


def test_written_config_reads_back(tmp_path):
    d2 = effective("coco_2x").detectron2
    path = write_config(d2, tmp_path / "effective_config.yaml")
    assert yaml.safe_load(path.read_text()) == d2


def test_run_folder_is_named_like_the_record(tmp_path):
    from siambench.evaluate import EvalContext

    ctx = EvalContext(checkpoint="unused", results_dir=str(tmp_path), seed=2)
    ctx.__dict__["backbone"] = backbone()
    assert run_dir(ctx, "voc0712", "voc0712", []) == (
        tmp_path / "detection" / f"detection__voc0712__voc0712__seed2__{'ab' * 8}")
    other = run_dir(ctx, "voc0712", "voc0712", ["launch.num_gpus=1"])
    assert other.name.startswith("detection__voc0712__voc0712-") and other != run_dir(ctx, "voc0712", "voc0712", [])


def test_without_detectron2_one_message_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2", None)
    with pytest.raises(EngineNotInstalledError) as err:
        require_detectron2()
    message = str(err.value)
    assert "pip install --no-build-isolation" in message and "facebookresearch/detectron2" in message
    assert torch.__version__ in message


def test_the_stage_stops_before_any_work_without_detectron2(monkeypatch, tmp_path):
    from siambench.checkpoints import save_backbone
    from siambench.evaluate import EvalContext, run_stage
    from siambench.models import backbone_state_dict, build_resnet

    model = build_resnet("resnet18", 0.25, "imagenet")
    save_backbone(tmp_path / "ckpt", backbone_state_dict(model), model.spec, method="random-init")
    monkeypatch.setitem(sys.modules, "detectron2", None)
    ctx = EvalContext(checkpoint=str(tmp_path / "ckpt"), results_dir=str(tmp_path / "results"), progress=False)
    with pytest.raises(EngineNotInstalledError, match="pip install"):
        run_stage(ctx, "detection", "shapes_voc", "tiny")
    assert not (tmp_path / "results").exists()


def test_trials_write_one_record_per_seed(monkeypatch, tmp_path):
    from siambench.checkpoints import save_backbone
    from siambench.evaluate import ENTRY_POINTS, EvalContext, EvalResult, run_seeds
    from siambench.models import backbone_state_dict, build_resnet

    model = build_resnet("resnet18", 0.25, "imagenet")
    save_backbone(tmp_path / "ckpt", backbone_state_dict(model), model.spec, method="random-init")
    seen = []

    def fake(ctx, dataset, protocol, overrides):
        seen.append((ctx.seed, dataset, protocol))
        return EvalResult(metrics={"AP50": 50.0 + ctx.seed}, primary_metric="AP50")

    monkeypatch.setitem(ENTRY_POINTS, "detection", fake)
    ctx = EvalContext(checkpoint=str(tmp_path / "ckpt"), results_dir=str(tmp_path / "results"), seed=10)
    outcomes = run_seeds(ctx, "detection", "shapes_voc", None, seeds=3)
    assert seen == [(10, "shapes_voc", "tiny"), (11, "shapes_voc", "tiny"), (12, "shapes_voc", "tiny")]
    assert [(r["seed"], r["metrics"]["AP50"], computed) for r, computed in outcomes] == [
        (10, 60.0, True), (11, 61.0, True), (12, 62.0, True)]
    assert ctx.seed == 10 and len(list((tmp_path / "results").glob("detection__shapes_voc__tiny__seed*.json"))) == 3
    again = run_seeds(ctx, "detection", "shapes_voc", "tiny", seeds=4)
    assert [computed for _, computed in again] == [False, False, False, True] and len(seen) == 4
