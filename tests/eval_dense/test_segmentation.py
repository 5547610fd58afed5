"""The VOC segmentation stage: mIoU, the dilated FCN, the paired views, the training loop and the stage."""

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from siambench.checkpoints import load, save_backbone
from siambench.configs import apply_overrides, load_preset
from siambench.data import build_dataset, get_dataset_info
from siambench.data import shapes_seg as shapes_seg_data
from siambench.errors import SiambenchError
from siambench.eval_dense.backbones import dilate_layer4
from siambench.eval_dense.segmentation import (
    PAD_COLOR,
    Validation,
    build_fcn,
    center_view,
    confusion_matrix,
    run_segmentation,
    scale_crop_flip,
    segmentation_scores,
    select_best,
    step_lr,
    train,
    validation_for,
)
from siambench.evaluate import EvalContext, run_stage
from siambench.models import backbone_state_dict, build_resnet

# A few iterations on 64×64 shapes scenes: enough for the loop, the sweep and the record.
QUICK = ["schedule.iterations=12", "schedule.batch_size=8", "data.eval_batch_size=16"]


@pytest.fixture(scope="module")
def canonical(tmp_path_factory):
    """A random quarter-width ResNet-18 as a siambench backbone folder, and its canonical backbone."""
    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    folder = tmp_path_factory.mktemp("ckpt") / "random"
    save_backbone(folder, backbone_state_dict(model), model.spec, method="random-init", name="random-init")
    return folder, load(folder)


@pytest.fixture
def small_shapes(monkeypatch):
    """shapes_seg with 48 / 24 / 24 scenes, so the stage runs in seconds."""
    for split, n in (("train", 48), ("val", 24), ("test", 24)):
        monkeypatch.setitem(shapes_seg_data.SHAPES_SEG_SIZES, split, n)


def tiny_cfg(*extra):
    return apply_overrides(load_preset("segmentation", "tiny"), [*QUICK, *extra])


# mIoU ----------------------------------------------------------------------------


def test_confusion_and_scores_against_a_hand_built_matrix():
    # Class 2 is only predicted (IoU 0), class 3 appears only where the label is 255 (ignored: no IoU).
    target = torch.tensor([[0, 0, 0, 0, 1], [1, 1, 1, 255, 255]])
    pred = torch.tensor([[0, 0, 1, 2, 1], [1, 1, 0, 3, 3]])
    confusion = confusion_matrix(pred, target, 4)
    expected = torch.tensor([[2, 1, 1, 0], [1, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert torch.equal(confusion, expected)
    scores = segmentation_scores(confusion)
    # IoU0 = 2 / (4 + 3 - 2), IoU1 = 3 / (4 + 4 - 3), IoU2 = 0 / 1, IoU3 undefined.
    np.testing.assert_allclose(scores["iou"][:3], [40.0, 60.0, 0.0])
    assert np.isnan(scores["iou"][3])
    assert scores["miou"] == pytest.approx(100 / 3)
    assert scores["pixel_acc"] == pytest.approx(62.5)  # 5 of the 8 scored pixels
    assert scores["mean_acc"] == pytest.approx(62.5)  # (2/4 + 3/4) / 2; class 2 has no labelled pixel


def test_confusion_refuses_labels_outside_the_classes():
    with pytest.raises(SiambenchError, match="class 7"):
        confusion_matrix(torch.zeros(4, dtype=torch.long), torch.tensor([0, 7, 255, 1]), 4)
    with pytest.raises(SiambenchError, match="no pixel"):
        segmentation_scores(confusion_matrix(torch.zeros(3), torch.full((3,), 255), 4))


# Model ---------------------------------------------------------------------------


def test_dilate_layer4_is_torchvisions_replace_stride_with_dilation(float64):
    """Our dilated ResNet-50 computes what torchvision's does (float64: the same maths, possibly other kernels)."""
    torch.manual_seed(0)
    ours = dilate_layer4(build_resnet("resnet50")).eval()
    reference = torchvision.models.resnet50(replace_stride_with_dilation=[False, False, True]).eval()
    result = reference.load_state_dict(ours.state_dict(), strict=False)
    assert set(result.missing_keys) == {"fc.weight", "fc.bias"} and not result.unexpected_keys
    for (name, a), (_, b) in zip(ours.layer4.named_modules(), reference.layer4.named_modules()):
        if isinstance(a, torch.nn.Conv2d):
            assert (a.stride, a.dilation, a.padding) == (b.stride, b.dilation, b.padding), name
    x = torch.randn(1, 3, 65, 65)
    body = torch.nn.Sequential(*list(reference.children())[:-2])
    with torch.no_grad():
        features, expected = ours.forward_features(x), body(x)
        plain = build_resnet("resnet50").eval()
        plain.load_state_dict(ours.state_dict())
        undilated = plain.forward_features(x)
    assert features.shape == (1, 2048, 5, 5) and undilated.shape == (1, 2048, 3, 3)
    assert features.dtype == torch.float64
    torch.testing.assert_close(features, expected)


def test_basic_block_dilation_follows_the_same_rule():
    model = dilate_layer4(build_resnet("resnet18", 0.25))
    first, second = model.layer4
    assert (first.conv1.stride, first.conv1.dilation, first.downsample[0].stride) == ((1, 1), (1, 1), (1, 1))
    assert all((c.stride, c.dilation, c.padding) == ((1, 1), (2, 2), (2, 2)) for c in (second.conv1, second.conv2))


def test_dilation_of_tf_same_networks_matches_torch_padding(float64):
    """Once conv5 runs at stride 1, TF-'SAME' pads like torch; the dilated stages compute the same thing (float64)."""
    torch.manual_seed(0)
    torch_padded = dilate_layer4(build_resnet("resnet18", 0.25)).eval()
    tf_padded = build_resnet("resnet18", 0.25, padding="tf_same")
    tf_padded.load_state_dict(torch_padded.state_dict())
    tf_padded = dilate_layer4(tf_padded).eval()
    x = torch.randn(2, 64, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(tf_padded.layer4(x), torch_padded.layer4(x))
    assert tf_padded.layer4(x).shape[-2:] == (9, 9)


def test_fcn_has_output_stride_16(canonical):
    _, backbone = canonical
    cfg = load_preset("segmentation", "byol")
    model = build_fcn(backbone, 21, cfg, seed=0).eval()
    x = torch.randint(0, 256, (1, 3, 513, 513), dtype=torch.uint8)
    with torch.no_grad():
        features = model.backbone.forward_features(model.normalize(x))
        logits = model(x)
    assert features.shape[-2:] == (33, 33)
    assert logits.shape == (1, 21, 513, 513)
    convs = [m for m in model.head if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.dilation, c.kernel_size) for c in convs] == [(256, (6, 6), (3, 3))] * 2
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.head) == 2
    assert model.classifier.kernel_size == (1, 1) and model.classifier.out_channels == 21


def test_fcn_holds_exactly_the_backbone_weights(canonical):
    _, backbone = canonical
    model = build_fcn(backbone, 21, load_preset("segmentation", "byol"), seed=0)
    state = model.state_dict()
    inner = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    assert set(inner) == set(backbone.state_dict)
    assert all(torch.equal(inner[k], v) for k, v in backbone.state_dict.items())
    assert {k.split(".")[0] for k in state} == {"backbone", "head", "classifier"}
    with torch.no_grad():
        model.backbone.conv1.weight.add_(1.0)
    assert not torch.equal(model.backbone.conv1.weight, backbone.state_dict["conv1.weight"])


def test_head_init_is_fixed_by_the_seed(canonical):
    _, backbone = canonical
    cfg = load_preset("segmentation", "tiny")
    a, b, c = (build_fcn(backbone, 13, cfg, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.head[0].weight, b.head[0].weight) and not torch.equal(a.head[0].weight, c.head[0].weight)
    assert a.classifier.weight.std().item() == pytest.approx(0.01, rel=0.2) and torch.all(a.classifier.bias == 0)


def test_raw_input_checkpoints_are_not_normalised(canonical):
    _, backbone = canonical
    raw = type(backbone)(backbone.state_dict, backbone.spec, {**backbone.meta, "input_normalization": "none"})
    model = build_fcn(raw, 13, load_preset("segmentation", "tiny"), seed=0)
    x = torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(model.normalize(x), x.float() / 255)


# Views ---------------------------------------------------------------------------


def test_scale_crop_flip_resizes_masks_with_nearest_and_pads_with_255():
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    mask = torch.arange(64, dtype=torch.uint8).view(8, 8)
    out_image, out_mask = scale_crop_flip(image, mask, random.Random(0), 8, (0.5, 0.5), flip_p=0.0)
    # Half size with nearest: output pixel i samples input pixel 2i + 1; the rest is padding.
    assert torch.equal(out_mask[:4, :4], mask[1::2, 1::2])
    assert torch.all(out_mask[4:, :] == 255) and torch.all(out_mask[:, 4:] == 255)
    assert torch.all(out_image[:, 4:, :] == torch.tensor(PAD_COLOR, dtype=torch.uint8).view(3, 1, 1))
    _, flipped = scale_crop_flip(image, mask, random.Random(0), 8, (0.5, 0.5), flip_p=1.0)
    assert torch.equal(flipped, out_mask.flip(-1))


def test_upscaled_crops_keep_image_and_mask_aligned():
    mask = torch.arange(64, dtype=torch.uint8).view(8, 8)
    image = mask.expand(3, 8, 8).clone()  # the image's pixel values name their mask pixel
    up = mask.repeat_interleave(2, 0).repeat_interleave(2, 1)
    for seed in range(5):
        out_image, out_mask = scale_crop_flip(image, mask, random.Random(seed), 6, (2.0, 2.0), flip_p=0.5)
        crops = [up[top:top + 6, left:left + 6] for top in range(11) for left in range(11)]
        assert any(torch.equal(out_mask, c) or torch.equal(out_mask, c.flip(-1)) for c in crops), \
            "the mask is not a crop of the nearest-upscaled mask"
        # The bilinear image stays within a quarter step of the pixel the nearest mask took (rows differ by 8).
        assert torch.all((out_image[0].int() - out_mask.int()).abs() <= 3)


def test_center_view_pads_then_crops():
    image = torch.randint(0, 256, (3, 10, 12), dtype=torch.uint8)
    mask = torch.randint(0, 21, (10, 12), dtype=torch.uint8)
    _, big_mask = center_view(image, mask, 16)
    assert big_mask.shape == (16, 16) and torch.equal(big_mask[:10, :12], mask) and torch.all(big_mask[10:] == 255)
    small_image, small_mask = center_view(image, mask, 8)
    assert torch.equal(small_mask, mask[1:9, 2:10]) and torch.equal(small_image, image[:, 1:9, 2:10])
    whole_image, whole_mask = center_view(image, mask, None)
    assert whole_image is image and whole_mask is mask


# Training ------------------------------------------------------------------------


def test_step_schedule_drops_at_70_and_90_percent():
    lrs = [step_lr(0.003, s, 30000, [0.7, 0.9], 0.1) for s in (0, 20999, 21000, 26999, 27000, 29999)]
    np.testing.assert_allclose(lrs, [0.003, 0.003, 3e-4, 3e-4, 3e-5, 3e-5])


def test_training_lowers_the_loss_on_shapes_scenes(canonical):
    _, backbone = canonical
    data = build_dataset("shapes_seg", "train", num_images=32)
    cfg = tiny_cfg("schedule.iterations=25", "sweep.lr=[0.05]")
    model = build_fcn(backbone, data.num_classes, cfg, seed=0)
    images, masks = (torch.stack(t) for t in zip(*(data[i] for i in range(16))))

    def loss():
        with torch.no_grad():
            return F.cross_entropy(model(images), masks.long(), ignore_index=255).item()

    before = loss()
    info = train(model, data, list(range(len(data))), 0.05, cfg, seed=0, progress=False)
    after = loss()
    assert before == pytest.approx(np.log(13), rel=0.05)  # the classifier starts near uniform
    assert after < 0.6 * before
    assert info["iterations"] == 25 and info["batch_size"] == 8


def test_select_best_skips_diverged_points():
    points = [{"val_miou": 30.0}, {"val_miou": None}, {"val_miou": 41.0}, {"val_miou": 41.0}]
    assert select_best(points) == 2
    with pytest.raises(SiambenchError):
        select_best([{"val_miou": None}])


def test_sweep_on_a_held_out_split_retrains_the_chosen_lr(canonical, small_shapes):
    _, backbone = canonical
    data = build_dataset("shapes_seg", "train")
    cfg = tiny_cfg("sweep.lr=[1000000.0, 0.05, 0.001]")
    built = []

    def factory():
        built.append(build_fcn(backbone, data.num_classes, cfg, seed=0))
        return built[-1]

    validation = Validation(data, list(range(40, 48)), list(range(40)), True, "8 held out")
    out = run_segmentation(factory, data, data, cfg, validation, seed=0, progress=False)
    assert [p["diverged"] for p in out["sweep"]] == [True, False, False]
    best = max(out["sweep"][1:], key=lambda p: p["val_miou"])
    assert out["chosen"]["lr"] == best["lr"] and out["validation"]["retrained_on_all"] is True
    assert len(built) == 4 and len({id(m) for m in built}) == 4  # three sweep points, then the re-training
    assert 0.0 <= out["scores"]["miou"] <= 100.0 and out["test_images"] == 48


class StubContext:
    """What validation_for reads of an EvalContext: registry entries and datasets."""

    def info(self, name):
        return get_dataset_info(name)

    def dataset(self, name, split):
        return build_dataset(name, split, num_images=8)


def test_validation_splits():
    voc = validation_for(StubContext(), "voc2012_seg", range(10582))
    assert (len(voc.indices), len(voc.train_indices), voc.held_out) == (2119, 8463, True)
    assert not set(voc.indices) & set(voc.train_indices)
    assert voc.indices == validation_for(StubContext(), "voc2012_seg", range(10582)).indices
    shapes = validation_for(StubContext(), "shapes_seg", range(48))
    assert shapes.indices is None and len(shapes.dataset) == 8 and not shapes.held_out
    assert shapes.train_indices == list(range(48))


# The stage -----------------------------------------------------------------------


@pytest.mark.slow
def test_stage_writes_one_record_per_seed(canonical, small_shapes, tmp_path):
    folder, _ = canonical
    records = []
    for seed in (0, 1, 0):
        ctx = EvalContext(checkpoint=str(folder), results_dir=str(tmp_path), device="cpu", seed=seed, progress=False)
        records.append(run_stage(ctx, "segmentation", "shapes_seg", None, QUICK))
    assert [computed for _, computed in records] == [True, True, False]
    first, second, again = (record for record, _ in records)
    assert second["seed"] == 1 and again["_path"] == first["_path"]
    assert first["protocol"].startswith("tiny+") and first["task"] == "segmentation"
    assert first["primary_metric"] == "miou" and 0.0 < first["metrics"]["miou"] <= 100.0
    assert first["hyperparameters"]["chosen"]["lr"] == 0.1 and first["hyperparameters"]["sweep"] == []
    assert any("embedded" in note for note in first["notes"])
    assert len(list(tmp_path.rglob("*.json"))) == 2
    assert json.loads(json.dumps(first["metrics"])) == first["metrics"]
    # Same seed on the CPU: the same numbers, whatever ran in between.
    ctx = EvalContext(checkpoint=str(folder), results_dir=str(tmp_path / "again"), device="cpu", seed=0,
                      progress=False)
    rerun, _ = run_stage(ctx, "segmentation", "shapes_seg", None, QUICK)
    assert rerun["metrics"] == first["metrics"]


def test_presets_state_the_protocols():
    byol, moco, tiny = (load_preset("segmentation", p) for p in ("byol", "moco", "tiny"))
    for cfg in (byol, moco):
        assert (cfg.model.output_stride, cfg.model.head_channels, cfg.model.head_dilation) == (16, 256, 6)
        assert (cfg.data.crop_size, cfg.data.scale_range, cfg.data.flip_p) == (513, [0.5, 2.0], 0.5)
        assert (cfg.schedule.batch_size, cfg.schedule.iterations) == (16, 30000)
        assert (cfg.schedule.lr_milestones, cfg.schedule.lr_gamma) == ([0.7, 0.9], 0.1)
        assert (cfg.optim.momentum, cfg.optim.weight_decay) == (0.9, 1e-4)
    assert moco.sweep.lr == [0.003] and moco.data.eval_crop_size is None
    np.testing.assert_allclose(byol.sweep.lr, np.logspace(-3, -1, 5))
    assert byol.data.eval_crop_size == 513 and byol.val.retrain is True
    assert tiny.protocol == "tiny" and tiny.data.crop_size == 64 and len(tiny.sweep.lr) == 1
