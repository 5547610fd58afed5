import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from siambench.checkpoints import CanonicalBackbone, save_backbone
from siambench.configs import Config, apply_overrides, load_preset
from siambench.errors import ConfigError
from siambench.eval_dense.depth import (
    DepthAugment,
    DepthMetrics,
    DepthNet,
    FastUpConv,
    ShapesDepth,
    berhu_loss,
    build_depth_net,
    prepare_depth,
    prepare_image,
    score,
    train,
    train_schedule,
)
from siambench.evaluate import EvalContext, run_stage
from siambench.models import backbone_state_dict, build_resnet

# Small scenes for fast runs: 32×32 shapes, a narrow decoder, batch 16.
SMALL = [
    "data.shapes.image_size=32", "data.shapes.train_images=64", "data.shapes.test_images=32",
    "data.crop=[32, 32]", "data.eval_batch_size=32", "schedule.batch_size=16", "model.up_channels=[16, 16, 8, 8]",
]


def small_cfg(*extra):
    return apply_overrides(load_preset("depth", "tiny"), [*SMALL, *extra])


def random_backbone(seed=0, arch="resnet18", width=0.25):
    torch.manual_seed(seed)
    model = build_resnet(arch, width, "imagenet")
    return CanonicalBackbone(backbone_state_dict(model), model.spec, {"sha256": "0" * 64})


# ---------------------------------------------------------------- presets


def test_presets_state_the_protocol():
    byol = load_preset("depth", "byol")
    assert (byol.model.reduce_channels, byol.model.up_channels) == (1024, [512, 256, 128, 64])
    assert (byol.data.scale, byol.data.crop, byol.data.max_depth) == (0.5, [228, 304], 10.0)
    assert (byol.optim.lr, byol.optim.weight_decay, byol.optim.momentum) == (0.16, 5e-4, 0.9)
    assert (byol.schedule.steps, byol.schedule.batch_size) == (7500, 256)
    a = byol.augment
    assert (a.flip_p, a.gray_p, a.brightness, a.saturation, a.hue) == (0.5, 0.3, 0.1255, [0.5, 1.5], 0.2)
    assert train_schedule(byol, 100_000) == (7500, 256, 0.16)
    steps, batch, lr = train_schedule(apply_overrides(byol, ["schedule.batch_size=64"]), 100_000)
    assert (steps, batch) == (30000, 64) and lr == pytest.approx(0.04)
    tiny = load_preset("depth", "tiny")
    assert train_schedule(tiny, 1000) == (200, 16, 0.01) and tiny.data.max_depth == 1.0


# ---------------------------------------------------------------- metrics and loss


def test_metrics_on_hand_computed_values():
    gt = torch.tensor([1.0, 2.0, 4.0, 0.0, 5.0, 12.0, 9.0, 4.0])
    pred = torch.tensor([1.2, 1.0, 4.0, 3.0, 6.5, 11.0, 15.0, 5.0])
    metrics = DepthMetrics(min_depth=1e-3, max_depth=10.0)
    metrics.update(pred, gt)
    # Scored: every pixel but gt 0 (no depth) and gt 12 (beyond the 10 m cap); pred 15 is clipped to 10.
    pairs = [(1.0, 1.2), (2.0, 1.0), (4.0, 4.0), (5.0, 6.5), (9.0, 10.0), (4.0, 5.0)]
    out = metrics.compute()
    assert (metrics.pixels, metrics.beyond_cap, metrics.no_depth) == (6, 1, 1)
    # Ratios 1.2, 2, 1, 1.3, 1.11, 1.25: three strictly below 1.25, five below 1.25², five below 1.25³ (1.95).
    assert (out["delta1"], out["delta2"], out["delta3"]) == pytest.approx((50.0, 500 / 6, 500 / 6))
    assert out["rel"] == pytest.approx(sum(abs(g - p) / g for g, p in pairs) / 6)
    assert out["rel"] == pytest.approx((0.2 + 0.5 + 0.0 + 0.3 + 1 / 9 + 0.25) / 6)
    assert out["rms"] == pytest.approx(math.sqrt((0.04 + 1.0 + 0.0 + 2.25 + 1.0 + 1.0) / 6))
    assert out["log10"] == pytest.approx(sum(abs(math.log10(g) - math.log10(p)) for g, p in pairs) / 6)


def test_metrics_pool_pixels_over_the_test_set():
    rng = np.random.default_rng(0)
    gts = [torch.from_numpy(rng.uniform(0.5, 9.5, (4, 6))) for _ in range(2)]
    gts[1][:2] = 0.0  # the second image has fewer scored pixels
    preds = [g * torch.from_numpy(rng.uniform(0.7, 1.4, g.shape)) for g in gts]
    pooled = DepthMetrics()
    for p, g in zip(preds, gts):
        pooled.update(p, g)
    together = DepthMetrics()
    together.update(torch.cat([p.flatten() for p in preds]), torch.cat([g.flatten() for g in gts]))
    assert pooled.compute() == pytest.approx(together.compute())
    per_image = [DepthMetrics() for _ in gts]
    for m, p, g in zip(per_image, preds, gts):
        m.update(p, g)
    assert pooled.compute()["rms"] != pytest.approx(np.mean([m.compute()["rms"] for m in per_image]))


def test_berhu_on_known_values_with_c_from_the_whole_batch():
    target = torch.ones(2, 1, 3)
    residual = torch.tensor([[[0.5, -1.0, 0.1]], [[2.0, 0.0, 50.0]]])
    valid = torch.tensor([[[True, True, True]], [[True, True, False]]])
    pred = (target + residual).requires_grad_()
    loss = berhu_loss(pred, target, valid)
    # c = 0.2 · max|r| over the valid pixels of both images = 0.4 (the invalid 50 does not count).
    c = 0.4
    expected = [(0.25 + c**2) / (2 * c), (1.0 + c**2) / (2 * c), 0.1, (4.0 + c**2) / (2 * c), 0.0]
    assert expected == pytest.approx([0.5125, 1.45, 0.1, 5.2, 0.0])
    assert loss.item() == pytest.approx(sum(expected) / 5)
    loss.backward()
    # d/dr: sign(r) below c, r / c above (c held constant), each divided by the 5 scored pixels.
    grad = torch.tensor([[[0.5 / c, -1.0 / c, 1.0]], [[2.0 / c, 0.0, 0.0]]]) / 5
    assert torch.allclose(pred.grad, grad)
    assert berhu_loss(pred, target, torch.zeros_like(valid)).item() == 0.0


# ---------------------------------------------------------------- the network


def test_fast_up_convolution_equals_unpooling_then_5x5_convolution():
    torch.manual_seed(0)
    up = FastUpConv(3, 4, bias=True)
    with torch.no_grad():
        up.bias.normal_()
    x = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    up = up.double()
    unpooled = torch.zeros(2, 3, 10, 14, dtype=torch.float64)
    unpooled[..., ::2, ::2] = x  # each value in the top-left corner of a 2×2 block of zeros
    reference = F.conv2d(unpooled, up.weight, up.bias, padding=2)
    assert torch.allclose(up(x), reference, atol=1e-12)


def test_decoder_gives_160x128_for_a_304x228_input():
    """Laina et al.: ResNet-50 on 304×228 → 10×8 conv5 → four up-projections → 160×128 depth."""
    with torch.device("meta"):
        net = DepthNet(build_resnet("resnet50"))
        shapes = []
        for module in [net.encoder.layer4, net.reduce, *net.decoder]:
            module.register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape[1:])))
        out = net(torch.empty(2, 3, 228, 304))
    assert out.shape == (2, 128, 160)
    assert shapes == [(2048, 8, 10), (1024, 8, 10), (512, 16, 20), (256, 32, 40), (128, 64, 80), (64, 128, 160)]


def test_network_holds_exactly_the_backbone_weights():
    backbone = random_backbone(arch="resnet50", width=0.25)
    net = build_depth_net(backbone, small_cfg(), seed=0)
    encoder = net.encoder.state_dict()
    assert set(encoder) == set(backbone.state_dict)
    assert all(torch.equal(encoder[k], v) for k, v in backbone.state_dict.items())
    head = [k for k in net.state_dict() if not k.startswith("encoder.")]
    assert head and all(k.split(".")[0] in ("reduce", "decoder", "predict") for k in head)
    with torch.no_grad():
        net.encoder.conv1.weight.add_(1.0)
    assert not torch.equal(net.encoder.conv1.weight, backbone.state_dict["conv1.weight"])
    # The new layers' initialisation is a function of the seed alone, not of the global RNG's state.
    torch.manual_seed(123)
    again, other = build_depth_net(backbone, small_cfg(), seed=0), build_depth_net(backbone, small_cfg(), seed=1)
    assert all(torch.equal(a, b) for a, b in zip(again.decoder.parameters(), net.decoder.parameters()))
    assert not torch.equal(other.decoder[0].up1.weight, net.decoder[0].up1.weight)


# ---------------------------------------------------------------- data


def test_frames_are_halved_then_centre_cropped_in_register():
    rows, cols = torch.meshgrid(torch.arange(480.0), torch.arange(640.0), indexing="ij")
    depth = rows * 1000 + cols
    image = torch.stack([rows % 256, cols % 256, torch.zeros_like(rows)]).to(torch.uint8)
    d = prepare_depth(depth, 0.5, (228, 304))
    i = prepare_image(image, 0.5, (228, 304))
    assert d.shape == (228, 304) and i.shape == (3, 228, 304)
    # 320×240 after halving, so the crop starts 6 rows and 8 columns in: source pixel (2·(6 + r), 2·(8 + c)).
    assert d[0, 0] == 12 * 1000 + 16 and d[227, 303] == 466 * 1000 + 622
    # The image's 2×2 box average of columns 16, 17 is 16.5: same place as the depth.
    assert abs(int(i[1, 0, 0]) - 16.5) <= 0.5 and abs(int(i[0, 0, 0]) - 12.5) <= 0.5
    with pytest.raises(ConfigError, match="data.crop"):
        prepare_image(image, 0.25, (228, 304))


def test_flip_moves_image_and_depth_together():
    images = torch.randint(0, 256, (4, 3, 6, 8), dtype=torch.uint8)
    depths = torch.rand(4, 6, 8)
    off = {"flip_p": 0.0, "gray_p": 0.0, "brightness": 0.0, "saturation": [1.0, 1.0], "hue": 0.0}

    def augment(**changes):
        view = DepthAugment(Config({**off, **changes}), mean=(0, 0, 0), std=(1, 1, 1))
        return view(images, depths, torch.Generator().manual_seed(0))

    x, d = augment(flip_p=1.0)
    assert torch.allclose(x, images.flip(-1).float() / 255, atol=1e-5) and torch.equal(d, depths.flip(-1))
    x, d = augment()
    assert torch.allclose(x, images.float() / 255, atol=1e-5) and torch.equal(d, depths)
    x, d = augment(flip_p=0.5)
    flipped = ~torch.isclose(x, images.float() / 255, atol=1e-5).all(dim=(1, 2, 3))
    assert 0 < flipped.sum() < 4 and torch.equal(d[flipped], depths[flipped].flip(-1))
    assert torch.equal(d[~flipped], depths[~flipped])
    x, _ = augment(gray_p=1.0)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])


def test_shapes_depth_is_the_scene_depth():
    data = ShapesDepth("test", image_size=32, num_images=8)
    image, depth = data[3]
    assert image.shape == (3, 32, 32) and depth.shape == (32, 32)
    values = set(depth.unique().tolist())
    assert 1.0 in values and len(values) >= 2 and all(0.2 <= v <= 1.0 for v in values)


# ---------------------------------------------------------------- training


@pytest.mark.slow
def test_a_few_steps_on_shapes_lower_the_loss_and_the_error():
    cfg = small_cfg("schedule.steps=40")
    data = ShapesDepth("train", 32, 64), ShapesDepth("test", 32, 32)
    net = build_depth_net(random_backbone(), cfg, seed=0)
    before = score(net, data[1], cfg, progress=False)
    run = train(net, data[0], cfg, seed=0, progress=False)
    after = score(net, data[1], cfg, progress=False)
    losses = run["losses"]
    assert len(losses) == 40 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert after["rms"] < 0.8 * before["rms"] and after["pixels"] == 32 * 32 * 32


def test_training_is_repeatable_on_the_cpu():
    cfg = small_cfg("schedule.steps=3")
    data = ShapesDepth("train", 32, 64)
    runs = [train(build_depth_net(random_backbone(), cfg, seed=5), data, cfg, seed=5, progress=False)["losses"]
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = train(build_depth_net(random_backbone(), cfg, seed=6), data, cfg, seed=6, progress=False)["losses"]
    assert other != runs[0]


def test_accumulation_must_divide_the_batch():
    cfg = small_cfg("schedule.steps=1", "schedule.accumulate=3")
    with pytest.raises(ConfigError, match=r"batch of 16 must split evenly into 1 process\(es\) × schedule.accumulate=3"):
        train(build_depth_net(random_backbone(), cfg), ShapesDepth("train", 32, 64), cfg, progress=False)


# ---------------------------------------------------------------- the stage


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_resnet("resnet18", 0.25, "imagenet")
    save_backbone(tmp_path / "random", backbone_state_dict(model), model.spec, method="random-init", name="random")
    return tmp_path / "random"


def test_stage_on_shapes_writes_a_labelled_record(checkpoint, tmp_path):
    ctx = EvalContext(checkpoint=str(checkpoint), results_dir=str(tmp_path / "results"), device="cpu", progress=False)
    record, computed = run_stage(ctx, "depth", "shapes", None, [*SMALL, "schedule.steps=4"])
    assert computed and record["protocol"].startswith("tiny+")
    assert set(record["metrics"]) == {"delta1", "delta2", "delta3", "rel", "rms", "log10"}
    assert record["primary_metric"] == "delta1" and 0 <= record["metrics"]["delta1"] <= 100
    assert record["hyperparameters"]["steps"] == 4 and record["hyperparameters"]["test_pixels"] == 32 * 32 * 32
    notes = " ".join(record["notes"])
    assert "embedded dataset" in notes and "depth cap 1: 0 of 32768" in notes


def test_stage_on_nyu_png_frames_scores_full_frames(checkpoint, tmp_path):
    root = tmp_path / "data" / "nyu_depth_v2"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("test", 2)):
        for k in range(count):
            stem = f"{split}{k:03d}"
            Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(root / f"rgb_{stem}.jpg")
            mm = rng.integers(1000, 12000, (96, 128)).astype(np.uint16)
            mm[:4] = 0
            Image.fromarray(mm).save(root / f"depth_{stem}.png")
        (root / f"{split}.txt").write_text("".join(f"rgb_{split}{k:03d}.jpg\n" for k in range(count)))
    ctx = EvalContext(checkpoint=str(checkpoint), data_root=str(tmp_path / "data"),
                      results_dir=str(tmp_path / "results"), device="cpu", progress=False)
    # The byol preset on 128×96 frames: halved to 64×48, centre-cropped to 48×32.
    overrides = ["data.crop=[32, 48]", "schedule.steps=2", "schedule.batch_size=2", "schedule.reference_batch=null",
                 "data.num_workers=0", "model.reduce_channels=32", "model.up_channels=[16, 16, 8, 8]"]
    record, _ = run_stage(ctx, "depth", "nyu_depth_v2", "byol", overrides)
    hp = record["hyperparameters"]
    assert (hp["steps"], hp["batch_size"], hp["peak_lr"]) == (2, 2, 0.16)
    assert hp["train_frames"] == "train.txt (4 frames)" and hp["test_frames"] == "test.txt (2 frames)"
    notes = " ".join(record["notes"])
    assert "not the standard 654" in notes and "embedded" not in notes
    # Scored at full frame size: every pixel of both 128×96 test frames is scored, beyond the cap or without depth.
    assert f"of {2 * 96 * 128} test pixels lie beyond it" in notes
    assert 0 < hp["test_pixels"] < 2 * 92 * 128
