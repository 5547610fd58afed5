"""View augmentations of BYOL (asymmetric T, T') and SimSiam (MoCo v2).

Two stages, so that everything but the crop runs batched on the device:

1. :class:`RandomCrop` runs per sample in the loader (images differ in size
   before the crop) and returns a ``uint8`` tensor of the output size.
2. :class:`ViewAugment` takes a batch of crops and applies flip, colour
   jitter, grayscale, blur and solarisation, one random draw per sample from
   an explicit ``torch.Generator``, then normalises.

Exact semantics follow PROTOCOLS A.1 (BYOL's JAX code) with
``color_mode="tf"``: one crop draw clipped to the image, additive
brightness, contrast around each channel's spatial mean, saturation and hue
in HSV, the four jitter ops in a random order per sample, each result
clipped, grayscale with weights (0.2989, 0.5870, 0.1140), blur with a
separable Gaussian of ``2·int(size/divider/2) + 1`` taps and zero padding,
solarisation ``x if x < 0.5 else 1 − x``. ``color_mode="torchvision"``
gives torchvision's ColorJitter/Grayscale semantics (multiplicative
brightness, contrast around the grayscale mean, saturation blended with
grayscale) with reflect-padded blur, as SimSiam's MoCo v2 views use, and
``crop_mode="torchvision"`` gives ``RandomResizedCrop``'s ten tries and
centre-crop fallback. ``resize="tf_bicubic"`` resizes the crop as BYOL's
input pipeline does (TF's bicubic, float output, clipped after ``/255``)
and hands the view on as float; ``resize="torch"`` uses torch's bicubic and
a uint8 hand-off.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_GRAY_WEIGHTS = {"tf": (0.2989, 0.5870, 0.1140), "torchvision": (0.299, 0.587, 0.114)}
RESIZES = {
    "torch": "torch's bicubic (Keys a = −0.75; antialiased for crop_mode torchvision), rounded to uint8",
    "tf_bicubic": "TF's tf.image.resize BICUBIC (Keys a = −0.5, half-pixel centres, no antialias), kept as float",
}


@dataclass(frozen=True)
class ViewConfig:
    """One view's augmentation parameters (PROTOCOLS A.1 Table 6, B.1)."""

    crop_size: int = 224
    crop_scale: tuple[float, float] = (0.08, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    crop_mode: str = "byol"
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1
    color_mode: str = "tf"
    gray_p: float = 0.2
    blur_p: float = 1.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_divider: float = 10.0
    solarize_p: float = 0.0
    resize: str = "torch"

    def __post_init__(self):
        if self.crop_mode not in ("byol", "torchvision"):
            raise ValueError(f"crop_mode must be 'byol' or 'torchvision', got {self.crop_mode!r}")
        if self.resize not in RESIZES:
            raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {self.resize!r}")
        if self.color_mode not in _GRAY_WEIGHTS:
            raise ValueError(f"color_mode must be 'tf' or 'torchvision', got {self.color_mode!r}")
        for name in ("flip_p", "jitter_p", "gray_p", "blur_p", "solarize_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, d: dict) -> "ViewConfig":
        """Build from a preset name under ``preset`` plus field overrides."""
        d = dict(d)
        base = VIEW_PRESETS[d.pop("preset")] if "preset" in d else cls()
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown view options {sorted(unknown)}; known: {sorted(known)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return replace(base, **d)

    def to_dict(self) -> dict:
        return asdict(self)


VIEW_PRESETS = {
    # BYOL T and T' (PROTOCOLS A.1): only blur and solarisation differ.
    "byol_view1": ViewConfig(blur_p=1.0, solarize_p=0.0),
    "byol_view2": ViewConfig(blur_p=0.1, solarize_p=0.2),
    # SimSiam's symmetric views, the MoCo v2 recipe (PROTOCOLS B.1).
    "simsiam": ViewConfig(
        crop_scale=(0.2, 1.0),
        crop_mode="torchvision",
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        color_mode="torchvision",
        blur_p=0.5,
        solarize_p=0.0,
    ),
}


# ---------------------------------------------------------------- crops (per sample, in the loader)


def crop_box(height: int, width: int, cfg: ViewConfig, rng: random.Random) -> tuple[int, int, int, int]:
    """Draw a crop ``(top, left, h, w)`` with ``cfg``'s area and aspect-ratio ranges."""
    area = height * width
    log_ratio = (math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]))
    if cfg.crop_mode == "byol":
        # One draw, each side clipped to the image (BYOL's _decode_and_random_crop).
        target = rng.uniform(*cfg.crop_scale) * area
        ratio = math.exp(rng.uniform(*log_ratio))
        w = min(max(round(math.sqrt(target * ratio)), 1), width)
        h = min(max(round(math.sqrt(target / ratio)), 1), height)
        return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    for _ in range(10):
        target = rng.uniform(*cfg.crop_scale) * area
        ratio = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    # torchvision's fallback: the largest centre crop within the ratio range.
    in_ratio = width / height
    if in_ratio < cfg.crop_ratio[0]:
        w, h = width, round(width / cfg.crop_ratio[0])
    elif in_ratio > cfg.crop_ratio[1]:
        h, w = height, round(height * cfg.crop_ratio[1])
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class RandomCrop:
    """Random resized crop of a uint8 ``(3, H, W)`` image to ``crop_size``, bicubic.

    BYOL resizes with TF's bicubic kernel without antialiasing; torchvision's
    RandomResizedCrop antialiases. The mode follows ``crop_mode``.
    """

    def __init__(self, cfg: ViewConfig):
        self.cfg = cfg

    def __call__(self, image: torch.Tensor, rng: random.Random) -> torch.Tensor:
        top, left, h, w = crop_box(image.shape[-2], image.shape[-1], self.cfg, rng)
        size = [self.cfg.crop_size, self.cfg.crop_size]
        if self.cfg.resize == "tf_bicubic":
            crop = image[..., top : top + h, left : left + w]
            return (tf_bicubic_resize(crop, size) / 255.0).clamp_(0.0, 1.0)
        return TF.resized_crop(
            image,
            top,
            left,
            h,
            w,
            size,
            interpolation=TF.InterpolationMode.BICUBIC,
            antialias=self.cfg.crop_mode == "torchvision",
        )


_TF_TABLE_SIZE = 1024  # TF tabulates the cubic kernel at 1/1024 steps


def _tf_bicubic_weights(in_size: int, out_size: int, a: float = -0.5) -> torch.Tensor:
    """The ``(out_size, in_size)`` matrix of TF's ``ResizeBicubic`` along one axis.

    Half-pixel centres, the kernel's fractional offset rounded to TF's table
    of 1024 steps, taps outside the image dropped and the rest renormalised
    (TF's ``use_keys_cubic`` border rule).
    """
    table = torch.arange(_TF_TABLE_SIZE + 1, dtype=torch.float64) / _TF_TABLE_SIZE
    near = ((a + 2) * table - (a + 3)) * table * table + 1  # |x| ≤ 1
    far_x = table + 1
    far = ((a * far_x - 5 * a) * far_x + 8 * a) * far_x - 4 * a  # 1 < |x| ≤ 2
    near, far = near.float(), far.float()
    scale = torch.tensor(in_size / out_size, dtype=torch.float32)
    pos = (torch.arange(out_size, dtype=torch.float32) + 0.5) * scale - 0.5
    base = torch.floor(pos)
    offset = torch.round((pos - base) * _TF_TABLE_SIZE).long()
    base = base.long()
    taps = torch.stack([base - 1, base, base + 1, base + 2], 1)
    weights = torch.stack([far[offset], near[offset], near[_TF_TABLE_SIZE - offset], far[_TF_TABLE_SIZE - offset]], 1)
    inside = (taps >= 0) & (taps < in_size)
    weights = torch.where(inside, weights, torch.zeros_like(weights))
    weights = weights / weights.sum(1, keepdim=True)
    matrix = torch.zeros(out_size, in_size, dtype=torch.float32)
    matrix.scatter_add_(1, taps.clamp(0, in_size - 1), weights)
    return matrix


def tf_bicubic_resize(image: torch.Tensor, size) -> torch.Tensor:
    """``tf.image.resize(image, size, BICUBIC)`` of a ``(…, C, H, W)`` image: float32, overshoots not clipped."""
    out_h, out_w = size
    wy = _tf_bicubic_weights(image.shape[-2], out_h)
    wx = _tf_bicubic_weights(image.shape[-1], out_w)
    return wy @ image.float() @ wx.T


def center_crop(image: torch.Tensor, size: int, fraction: float = 0.875) -> torch.Tensor:
    """Evaluation preprocessing: centre crop of ``fraction·min(H, W)``, bicubic resize to ``size``.

    This is BYOL's ``_decode_and_center_crop`` (resize 256 → centre 224 at
    ``fraction = 0.875``); ``fraction = 1`` keeps the whole short side.
    """
    side = max(1, round(fraction * min(image.shape[-2:])))
    image = TF.center_crop(image, [side, side])
    if side == size:
        return image
    return TF.resize(image, [size, size], interpolation=TF.InterpolationMode.BICUBIC, antialias=True)


# ---------------------------------------------------------------- batched ops on [0, 1] float images


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    h = torch.where(maxc == r, (g - b) / safe, torch.where(maxc == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    h6 = (h % 1.0) * 6.0
    k = torch.stack([(5.0 + h6) % 6.0, (3.0 + h6) % 6.0, (1.0 + h6) % 6.0], 1)
    return v.unsqueeze(1) - (v * s).unsqueeze(1) * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)


def grayscale(x: torch.Tensor, mode: str) -> torch.Tensor:
    w = torch.tensor(_GRAY_WEIGHTS[mode], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True).expand_as(x)


def _per_sample(v: torch.Tensor) -> torch.Tensor:
    return v.view(-1, 1, 1, 1)


def adjust_brightness(x, factor, mode):
    """``factor`` is a delta in [−b, b] (tf: added) or a ratio in [1−b, 1+b] (torchvision: multiplied)."""
    return x + _per_sample(factor) if mode == "tf" else x * _per_sample(factor)


def adjust_contrast(x, factor, mode):
    if mode == "tf":
        mean = x.mean(dim=(2, 3), keepdim=True)
    else:
        mean = grayscale(x, mode)[:, :1].mean(dim=(2, 3), keepdim=True)
    return (x - mean) * _per_sample(factor) + mean


def adjust_saturation(x, factor, mode):
    """tf: HSV saturation scaled and clipped to [0, 1], hue and value kept.

    At fixed hue and value each RGB channel is affine in the saturation
    (c = v − v·s·k(h)), so scaling s to s' moves every channel to
    v − (v − c)·s'/s: the HSV round trip's result without computing the hue.
    """
    if mode == "tf":
        v = x.amax(1, keepdim=True)
        s = (v - x.amin(1, keepdim=True)) / v.clamp_min(1e-12)
        s_new = (s * _per_sample(factor)).clamp(0, 1)
        ratio = torch.where(s > 0, s_new / s.clamp_min(1e-12), torch.ones_like(s))
        return v - (v - x) * ratio
    gray = grayscale(x, mode)
    return gray + _per_sample(factor) * (x - gray)


def adjust_hue(x, delta, mode):
    hsv = rgb_to_hsv(x)
    hsv = torch.stack([(hsv[:, 0] + delta.view(-1, 1, 1)) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
    return hsv_to_rgb(hsv)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int, padding: str) -> torch.Tensor:
    """Separable Gaussian blur, one σ per sample, ``2·radius + 1`` taps."""
    if radius < 1:
        return x
    n, c, h, w = x.shape
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t**2) / (2 * sigma.view(-1, 1).to(x.dtype) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)
    y = x.reshape(1, n * c, h, w)
    if padding == "reflect" and min(h, w) > radius:
        y = F.pad(y, (radius, radius, radius, radius), mode="reflect")
        pad = 0
    else:
        pad = radius
    y = F.conv2d(y, kernel.view(n * c, 1, 1, -1), padding=(0, pad), groups=n * c)
    y = F.conv2d(y, kernel.view(n * c, 1, -1, 1), padding=(pad, 0), groups=n * c)
    return y.view(n, c, h, w)


def solarize(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0.5, x, 1.0 - x)


class ViewAugment(torch.nn.Module):
    """Batched flip → colour jitter → grayscale → blur → solarise → clip → normalise.

    ``forward(images, generator)`` takes uint8 or [0, 1] float crops of shape
    ``(B, 3, S, S)`` on any device and returns normalised float images. All
    randomness comes from ``generator`` (on the images' device), so a run can
    replay a step exactly.
    With ``return_params=True`` it also returns what was drawn (the tests use
    it to check each operation's rate).
    """

    def __init__(self, cfg: ViewConfig, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.get_default_dtype()).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.get_default_dtype()).view(1, 3, 1, 1), persistent=False)

    def _uniform(self, n, low, high, g, device):
        return torch.rand(n, generator=g, device=device) * (high - low) + low

    def _draw(self, n: int, g: torch.Generator, device) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        b, c, s, hue = cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue
        tf = cfg.color_mode == "tf"

        def coin(p):
            return torch.rand(n, generator=g, device=device) < p

        return {
            "flip": coin(cfg.flip_p),
            "jitter": coin(cfg.jitter_p),
            "order": torch.argsort(torch.rand(n, 4, generator=g, device=device), dim=1),
            "brightness": self._uniform(n, -b, b, g, device) if tf else self._uniform(n, max(0.0, 1 - b), 1 + b, g, device),
            "contrast": self._uniform(n, max(0.0, 1 - c), 1 + c, g, device),
            "saturation": self._uniform(n, max(0.0, 1 - s), 1 + s, g, device),
            "hue": self._uniform(n, -hue, hue, g, device),
            "gray": coin(cfg.gray_p),
            "blur": coin(cfg.blur_p),
            "sigma": self._uniform(n, cfg.blur_sigma[0], cfg.blur_sigma[1], g, device),
            "solarize": coin(cfg.solarize_p),
        }

    def forward(self, images: torch.Tensor, generator: torch.Generator, start: int = 0, total: int | None = None,
                return_params: bool = False):
        """Augment ``images``, which are rows ``start … start + B`` of a batch of ``total``.

        The draws are made for the whole batch and sliced, so a batch split
        over processes or micro-batches gets the same augmentations as the
        whole batch in one piece.
        """
        cfg = self.cfg
        x = images.to(self.mean.dtype) / 255.0 if images.dtype == torch.uint8 else images.to(self.mean.dtype)
        n = x.shape[0]
        drawn = self._draw(total or n, generator, x.device)
        p = {k: v[start : start + n] for k, v in drawn.items()}
        mode = cfg.color_mode

        x = torch.where(_per_sample(p["flip"]), x.flip(-1), x)

        ops = (
            (adjust_brightness, "brightness", cfg.brightness > 0),
            (adjust_contrast, "contrast", cfg.contrast > 0),
            (adjust_saturation, "saturation", cfg.saturation > 0),
            (adjust_hue, "hue", cfg.hue > 0),
        )
        x = x.clone()
        for position in range(4):
            for op_index, (op, key, active) in enumerate(ops):
                chosen = (p["order"][:, position] == op_index) & p["jitter"]
                if not active or not chosen.any():
                    continue
                idx = chosen.nonzero().squeeze(1)
                x[idx] = op(x[idx], p[key][idx], mode).clamp(0.0, 1.0)

        if p["gray"].any():
            idx = p["gray"].nonzero().squeeze(1)
            x[idx] = grayscale(x[idx], mode)

        radius = int(cfg.crop_size / cfg.blur_divider / 2)
        if p["blur"].any() and radius > 0:
            idx = p["blur"].nonzero().squeeze(1)
            padding = "zeros" if mode == "tf" else "reflect"
            x[idx] = gaussian_blur(x[idx], p["sigma"][idx], radius, padding)

        x = torch.where(_per_sample(p["solarize"]), solarize(x), x)
        x = (x.clamp(0.0, 1.0) - self.mean) / self.std
        return (x, p) if return_params else x


class Normalize(torch.nn.Module):
    """uint8 or [0, 1] images → ImageNet-normalised float (evaluation, no randomness)."""

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.get_default_dtype()).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.get_default_dtype()).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.mean.dtype) / 255.0 if images.dtype == torch.uint8 else images.to(self.mean.dtype)
        return (x - self.mean) / self.std
