import math
import random

import pytest
import torch

from siambench.data.transforms import (
    VIEW_PRESETS,
    RandomCrop,
    ViewAugment,
    ViewConfig,
    adjust_brightness,
    adjust_contrast,
    crop_box,
    gaussian_blur,
    grayscale,
    hsv_to_rgb,
    rgb_to_hsv,
    solarize,
)


def _rates(cfg, n=20000, seed=0):
    aug = ViewAugment(cfg)
    g = torch.Generator().manual_seed(seed)
    return aug._draw(n, g, torch.device("cpu"))


def _assert_rate(mask, p, n):
    sigma = math.sqrt(max(p * (1 - p), 1e-12) / n)
    assert abs(mask.float().mean().item() - p) <= 5 * sigma + 1e-9


@pytest.mark.parametrize("name,blur,solar", [("byol_view1", 1.0, 0.0), ("byol_view2", 0.1, 0.2), ("simsiam", 0.5, 0.0)])
def test_view_rates_match_their_probabilities(name, blur, solar):
    n = 20000
    drawn = _rates(VIEW_PRESETS[name], n)
    _assert_rate(drawn["blur"], blur, n)
    _assert_rate(drawn["solarize"], solar, n)
    _assert_rate(drawn["jitter"], 0.8, n)
    _assert_rate(drawn["gray"], 0.2, n)
    _assert_rate(drawn["flip"], 0.5, n)


def test_applied_blur_and_solarize_rates_on_images():
    # A flat 0.75 image: solarisation turns it into 0.25; a blur with zero padding darkens the border.
    cfg = ViewConfig(crop_size=32, jitter_p=0.0, gray_p=0.0, flip_p=0.0, blur_p=0.1, solarize_p=0.2)
    aug = ViewAugment(cfg, mean=(0, 0, 0), std=(1, 1, 1))
    x = torch.full((4000, 3, 32, 32), 0.75)
    out = aug(x, torch.Generator().manual_seed(1))
    centre, corner = out[:, 0, 16, 16], out[:, 0, 0, 0]
    solarized = (centre - 0.25).abs() < 1e-5
    blurred = (corner - centre).abs() > 1e-3
    _assert_rate(solarized, 0.2, 4000)
    _assert_rate(blurred, 0.1, 4000)


def test_byol_preset_values():
    v1, v2 = VIEW_PRESETS["byol_view1"], VIEW_PRESETS["byol_view2"]
    for v in (v1, v2):
        assert (v.brightness, v.contrast, v.saturation, v.hue) == (0.4, 0.4, 0.2, 0.1)
        assert v.crop_scale == (0.08, 1.0) and v.color_mode == "tf" and v.crop_mode == "byol"
    assert (v1.blur_p, v1.solarize_p, v2.blur_p, v2.solarize_p) == (1.0, 0.0, 0.1, 0.2)
    s = VIEW_PRESETS["simsiam"]
    assert s.crop_scale == (0.2, 1.0) and (s.brightness, s.contrast, s.saturation, s.hue) == (0.4, 0.4, 0.4, 0.1)
    assert s.blur_p == 0.5 and s.color_mode == "torchvision"


def test_blur_kernel_is_ten_percent_of_the_side():
    # An impulse spreads over exactly 2·int(S/10/2)+1 taps: 23 at 224 px, 7 at 64 px.
    for size, taps in ((224, 23), (64, 7)):
        radius = int(size / 10.0 / 2)
        assert 2 * radius + 1 == taps
        x = torch.zeros(1, 3, size, size)
        x[..., size // 2, size // 2] = 1.0
        y = gaussian_blur(x, torch.tensor([2.0]), radius, "zeros")
        row = (y[0, 0, size // 2] > 0).nonzero().squeeze(1)
        assert row.numel() == taps
        torch.testing.assert_close(y.sum(), torch.tensor(3.0))


def test_tf_colour_semantics():
    x = torch.rand(2, 3, 8, 8) * 0.5 + 0.25
    torch.testing.assert_close(adjust_brightness(x, torch.tensor([0.1, -0.1]), "tf"), x + torch.tensor([0.1, -0.1]).view(2, 1, 1, 1))
    y = adjust_contrast(x, torch.tensor([2.0, 2.0]), "tf")
    mean = x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(y, (x - mean) * 2 + mean)
    torch.testing.assert_close(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)))  # per-channel mean preserved
    torch.testing.assert_close(adjust_brightness(x, torch.tensor([1.5, 0.5]), "torchvision"), x * torch.tensor([1.5, 0.5]).view(2, 1, 1, 1))


def test_tf_saturation_equals_the_hsv_round_trip():
    from siambench.data.transforms import adjust_saturation

    x = torch.rand(6, 3, 9, 9)
    x[0] = 0.5  # gray: no saturation to scale
    factor = torch.tensor([0.8, 1.2, 0.0, 3.0, 1.0, 0.5])
    hsv = rgb_to_hsv(x)
    hsv = torch.stack([hsv[:, 0], (hsv[:, 1] * factor.view(-1, 1, 1)).clamp(0, 1), hsv[:, 2]], 1)
    torch.testing.assert_close(adjust_saturation(x, factor, "tf"), hsv_to_rgb(hsv), atol=1e-5, rtol=0)


def test_hsv_round_trip_and_known_values():
    x = torch.rand(4, 3, 5, 5)
    torch.testing.assert_close(hsv_to_rgb(rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(rgb_to_hsv(red).flatten(), torch.tensor([0.0, 1.0, 1.0]))
    green = hsv_to_rgb(torch.tensor([1 / 3, 1.0, 1.0]).view(1, 3, 1, 1))
    torch.testing.assert_close(green.flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)


def test_grayscale_and_solarize():
    x = torch.tensor([1.0, 0.5, 0.25]).view(1, 3, 1, 1)
    assert grayscale(x, "tf")[0, :, 0, 0].tolist() == pytest.approx([0.2989 + 0.5870 * 0.5 + 0.1140 * 0.25] * 3)
    torch.testing.assert_close(solarize(torch.tensor([0.2, 0.5, 0.9])), torch.tensor([0.2, 0.5, 0.1]))


def test_byol_crop_is_one_clipped_draw_in_range():
    cfg = VIEW_PRESETS["byol_view1"]
    rng = random.Random(0)
    areas = []
    for _ in range(3000):
        top, left, h, w = crop_box(100, 200, cfg, rng)
        assert 0 <= top and top + h <= 100 and 0 <= left and left + w <= 200
        areas.append(h * w / (100 * 200))
    assert min(areas) >= 0.08 * 0.9 and max(areas) <= 1.0
    assert 0.4 < sum(areas) / len(areas) < 0.55  # clipping lowers the mean of U(0.08, 1) slightly


def test_random_crop_output_size_and_determinism():
    image = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    crop = RandomCrop(ViewConfig(crop_size=24))
    a, b = crop(image, random.Random(3)), crop(image, random.Random(3))
    assert a.shape == (3, 24, 24) and a.dtype == torch.uint8 and torch.equal(a, b)


def test_a_split_batch_gets_the_same_augmentations_as_the_whole():
    aug = ViewAugment(ViewConfig.from_dict({"preset": "byol_view2", "crop_size": 16}))
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    whole = aug(x, torch.Generator().manual_seed(5))
    first = aug(x[:4], torch.Generator().manual_seed(5), start=0, total=8)
    second = aug(x[4:], torch.Generator().manual_seed(5), start=4, total=8)
    torch.testing.assert_close(torch.cat([first, second]), whole)


def test_view_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown view options"):
        ViewConfig.from_dict({"preset": "byol_view1", "blurp": 0.3})
    assert ViewConfig.from_dict({"preset": "byol_view2", "crop_size": 32, "crop_scale": [0.2, 1.0]}).crop_scale == (0.2, 1.0)
