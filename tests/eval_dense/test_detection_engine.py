"""The detection stage run by detectron2: weights land in the model, the tiny preset trains and evaluates.

Skipped, with the reason, where detectron2 cannot be imported.
"""

import json
import math

import pytest
import torch

pytest.importorskip("detectron2", reason="detectron2 is not installed (an optional engine built from source; "
                                         "see the README's detection section)")

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import DefaultTrainer
from detectron2.modeling import build_model

from siambench.checkpoints import load, save_backbone
from siambench.checkpoints.d2_names import to_detectron2
from siambench.checkpoints.export import export
from siambench.configs import apply_overrides, load_preset
from siambench.data.shapes_voc import build_shapes_voc
from siambench.errors import ConfigError
from siambench.eval_dense.detection.config import effective_config
from siambench.eval_dense.detection.run import write_config
from siambench.eval_dense.detection.trainer import load_config
from siambench.evaluate import EvalContext, run_stage
from siambench.models import backbone_state_dict, build_resnet


def random_checkpoint(folder, arch, width):
    """A backbone file with every tensor random (BN statistics too), so a misplaced tensor cannot pass."""
    model = build_resnet(arch, width, "imagenet")
    g = torch.Generator().manual_seed(7)
    state = {k: (torch.rand(v.shape, generator=g) + 0.5 if v.is_floating_point() else torch.randint(1, 99, v.shape))
             for k, v in backbone_state_dict(model).items()}
    save_backbone(folder, state, model.spec, method="random", name=f"random-{arch}")
    return folder


@pytest.mark.parametrize("arch, width", [("resnet50", 0.25), ("resnet18", 1.0), ("resnet18", 0.25), ("resnet34", 0.5)])
def test_converted_backbone_fills_every_backbone_tensor(tmp_path, arch, width):
    backbone = load(random_checkpoint(tmp_path / "ckpt", arch, width))
    (weights,), _ = export(backbone, "detectron2", tmp_path / "backbone.pkl")
    splits = build_shapes_voc("train", image_size=64, num_images=4), build_shapes_voc("test", image_size=64,
                                                                                    num_images=4)
    d2 = effective_config(load_preset("detection", "tiny"), backbone, *splits, weights=str(weights),
                          output_dir=str(tmp_path / "run")).detectron2
    model = build_model(load_config(str(write_config(d2, tmp_path / "config.yaml"))))
    DetectionCheckpointer(model).load(str(weights))

    state = model.state_dict()
    pretrained = {k for k in state if (k.startswith(("backbone.", "roi_heads.res5.")))
                  and not k.startswith("roi_heads.res5.norm.")}
    expected = {}
    for key, tensor in backbone.state_dict.items():
        name = to_detectron2(key)
        expected[("roi_heads." if name.startswith("res5.") else "backbone.") + name] = tensor
    assert pretrained == set(expected)
    for key, tensor in expected.items():
        assert torch.equal(state[key].cpu(), tensor), key
    assert any(k.startswith("roi_heads.res5.norm.") for k in state)

    model.eval()
    with torch.no_grad():
        (out,) = model([{"image": torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8), "height": 64, "width": 80}])
    assert out["instances"].image_size == (64, 80)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 16])
def test_gpu_scaling_equals_detectron2_auto_scale_workers(tmp_path, world_size):
    backbone = load(random_checkpoint(tmp_path / "ckpt", "resnet50", 0.25))
    splits = build_shapes_voc("train", image_size=64, num_images=4), build_shapes_voc("test", image_size=64,
                                                                                    num_images=4)
    preset = load_preset("detection", "voc0712")
    written = effective_config(preset, backbone, *splits, weights="w.pkl", output_dir="o").detectron2
    reference = load_config(str(write_config(written, tmp_path / "reference.yaml")))
    reference.defrost()
    reference.SOLVER.REFERENCE_WORLD_SIZE = 8
    theirs = DefaultTrainer.auto_scale_workers(reference, world_size).SOLVER

    scaled = effective_config(apply_overrides(preset, [f"launch.num_gpus={world_size}"]), backbone, *splits,
                              weights="w.pkl", output_dir="o", device="cuda", visible_gpus=16).detectron2["SOLVER"]
    assert scaled["BASE_LR"] == pytest.approx(theirs.BASE_LR)
    for key in ("IMS_PER_BATCH", "MAX_ITER", "WARMUP_ITERS", "CHECKPOINT_PERIOD"):
        assert scaled[key] == theirs[key], key
    assert tuple(scaled["STEPS"]) == tuple(theirs.STEPS)


def test_tiny_preset_trains_evaluates_and_records(tmp_path):
    ckpt = random_checkpoint(tmp_path / "ckpt", "resnet18", 0.25)  # the architecture siambench pretrains on shapes
    ctx = EvalContext(checkpoint=str(ckpt), results_dir=str(tmp_path / "results"), device="cpu", progress=False)
    record, computed = run_stage(ctx, "detection", "shapes_voc", "tiny")

    assert computed and record["task"] == "detection" and record["protocol"] == "tiny"
    assert record["primary_metric"] == "AP50" and set(record["metrics"]) == {"AP", "AP50", "AP75"}
    for value in record["metrics"].values():
        assert math.isfinite(value) and 0.0 <= value <= 100.0
    loss = record["hyperparameters"]["loss"]
    assert loss["iterations"] == 50 and loss["last"] < 0.9 * loss["first"]
    model = record["config"]["detectron2"]["MODEL"]
    assert model["RESNETS"]["RES2_OUT_CHANNELS"] == 16 and model["BACKBONE"]["NAME"] == "build_basic_resnet_backbone"

    run = tmp_path / "results" / "detection" / record["_path"].rsplit("/", 1)[1].removesuffix(".json")
    assert {"effective_config.yaml", "config.yaml", "backbone.pkl", "evaluation.json", "model_final.pth"} <= {
        p.name for p in run.iterdir()}
    saved = json.loads((run / "evaluation.json").read_text())
    assert saved["results"]["bbox"]["AP50"] == pytest.approx(record["metrics"]["AP50"])
    again, computed = run_stage(ctx, "detection", "shapes_voc", "tiny")
    assert not computed and again["metrics"] == record["metrics"]


def test_a_key_detectron2_does_not_know_stops_the_run_before_training(tmp_path):
    ckpt = random_checkpoint(tmp_path / "ckpt", "resnet18", 0.25)
    ctx = EvalContext(checkpoint=str(ckpt), results_dir=str(tmp_path / "results"), device="cpu", progress=False)
    with pytest.raises(ConfigError, match="SOLVER.MOMENTUMM"):
        run_stage(ctx, "detection", "shapes_voc", "tiny", ["opts=[SOLVER.MOMENTUMM, 0.8]"])
    assert not list((tmp_path / "results").glob("*.json"))
    assert not list((tmp_path / "results").rglob("last_checkpoint"))
