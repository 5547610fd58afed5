"""``siambench eval depth``: monocular depth estimation on NYU Depth v2 (PROTOCOLS C.7).

BYOL's protocol (App. D.6) follows Laina et al.'s FCRN: the pretrained
ResNet's conv5 features go through a 1×1 convolution (1,024 filters, BN)
and four fast up-projection blocks (512, 256, 128, 64 filters), each
doubling the resolution, and a 3×3 convolution gives the depth map: 160×128
for a 304×228 input. The whole network is trained with the reverse Huber
(berHu) loss on frames downsampled ×0.5 and centre-cropped to 304×228, with
BYOL's augmentations (flip, grayscale, brightness, saturation, hue). The
test frames go through the same resize and crop; the prediction is upsampled
bilinearly to the full ground-truth frame (640×480), as FCRN's
``evaluateNYU.m`` does (so it is stretched from the crop's field of view to
the frame's, as there), and scored over every pixel that has ground truth.
The errors are pooled over all pixels of the test set, as FCRN's
``error_metrics.m`` pools them, not averaged per image.

Depth cap. Neither BYOL nor FCRN states one; here ground truth is scored
(and trained on) only within ``[min_depth, max_depth]`` = [0.001, 10] m, and
predictions are clipped to that range before scoring. 10 m is where the
Kinect's useful range ends and the cap later NYU evaluations (BTS, AdaBins)
use; the filled-in depths of the labelled test frames lie inside it, so
there the cap should exclude no pixel and the score is FCRN's all-pixel one
(the record counts the pixels it excluded). It matters for raw depth PNGs,
whose far readings are unreliable and whose 0 means "no reading". Clipping
the prediction is needed anyway: the metrics divide by it and take its log.

On the embedded default the stage runs on ``shapes`` scenes, whose depth
maps come from the generator (each object at its own depth, the background
at 1.0), with the small ``tiny`` preset. Its numbers check the pipeline end
to end (``configs/depth/tiny.yaml`` gives what a constant prediction
scores) and are not comparable with NYU's.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ..configs import Config
from ..data import shapes
from ..data.nyu import DepthDataset
from ..data.sampling import EpochBatches, RankBatches, ReadableView, collate_readable, derive_seed
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD, adjust_brightness, adjust_hue, adjust_saturation, grayscale
from ..engine.dist import all_reduce_sum, process_group
from ..engine.precision import at_least_float32
from ..engine.schedules import cosine_decay, scale_lr
from ..errors import ConfigError, SiambenchError
from ..evaluate import EvalContext, EvalResult, load_protocol, register_stage
from ..models.resnet import ResNet
from ..toolkit.loop import train_steps

LR_SCHEDULES = ("cosine", "constant")

# ---------------------------------------------------------------- the network


class FastUpConv(nn.Module):
    """×2 unpooling followed by a 5×5 convolution, computed without the zeros (Laina et al.).

    Unpooling puts each input value in the top-left corner of a 2×2 block of
    zeros, so each output pixel's 5×5 window holds values only at the taps
    of one parity class: a 3×3, 3×2, 2×3 or 2×2 sub-kernel, depending on
    whether the output row and column are even or odd. Four small
    convolutions of the input, interleaved, give the same map at a quarter
    of the cost. The parameter is the 5×5 kernel itself.
    """

    # (kernel rows, kernel columns, input padding (left, right, top, bottom)) for
    # outputs at (even, even), (even, odd), (odd, even), (odd, odd): pixel_shuffle's order.
    _PARTS = (
        (slice(0, None, 2), slice(0, None, 2), (1, 1, 1, 1)),
        (slice(0, None, 2), slice(1, None, 2), (0, 1, 1, 1)),
        (slice(1, None, 2), slice(0, None, 2), (1, 1, 0, 1)),
        (slice(1, None, 2), slice(1, None, 2), (0, 1, 0, 1)),
    )

    def __init__(self, in_channels: int, out_channels: int, bias: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 5, 5))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [F.conv2d(F.pad(x, pad), self.weight[:, :, rows, cols]) for rows, cols, pad in self._PARTS]
        y = F.pixel_shuffle(torch.stack(parts, 2).flatten(1, 2), 2)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)


class UpProjection(nn.Module):
    """Laina et al.'s up-projection: a residual block that doubles the resolution.

    Main branch: up-convolution, BN, ReLU, 3×3 convolution, BN; projection
    branch: up-convolution, BN; their sum goes through a ReLU.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up1 = FastUpConv(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.up2 = FastUpConv(in_channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.bn2(self.conv(F.relu(self.bn1(self.up1(x)))))
        return F.relu(main + self.bn3(self.up2(x)))


class DepthNet(nn.Module):
    """FCRN: ResNet conv5 → 1×1 conv + BN → up-projections → 3×3 conv; returns ``(N, h, w)`` depths.

    The encoder is the pretrained ResNet unchanged (its pooling and ``fc``
    unused); the output is ``2⁴ = 16`` times the conv5 resolution, about half
    the input's for an ImageNet-stem ResNet (160×128 for 304×228).
    """

    def __init__(self, encoder: ResNet, reduce_channels: int = 1024, up_channels=(512, 256, 128, 64)):
        super().__init__()
        self.encoder = encoder
        self.reduce = nn.Sequential(
            nn.Conv2d(encoder.num_features, reduce_channels, 1, bias=False), nn.BatchNorm2d(reduce_channels)
        )
        widths = [reduce_channels, *up_channels]
        self.decoder = nn.Sequential(*(UpProjection(a, b) for a, b in itertools.pairwise(widths)))
        self.predict = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict(self.decoder(self.reduce(self.encoder.forward_features(x)))).squeeze(1)

    def init_head(self, generator: torch.Generator) -> None:
        """Seeded initialisation of the new layers: He normal (fan out), BN 1/0, and a zero prediction layer.

        He initialisation of the one-channel prediction layer would start it
        at depths of tens of metres, of either sign, and its large first
        gradients can leave the decoder's ReLUs dead; from zero the first
        steps fit the mean depth instead.
        """
        for module in itertools.chain(self.reduce.modules(), self.decoder.modules()):
            if isinstance(module, (nn.Conv2d, FastUpConv)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.zeros_(self.predict.weight)
        nn.init.zeros_(self.predict.bias)


def build_depth_net(backbone, cfg: Config, seed: int = 0) -> DepthNet:
    """The FCRN of ``cfg.model`` on a fresh copy of ``backbone``'s (a canonical backbone's) weights."""
    m = cfg.model
    net = DepthNet(backbone.build_model(), int(m.reduce_channels), [int(c) for c in m.up_channels])
    net.init_head(torch.Generator().manual_seed(derive_seed(seed, 11)))
    return net


# ---------------------------------------------------------------- loss and metrics


def berhu_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Reverse Huber loss, mean over the ``valid`` pixels (Laina et al.).

    ``B(x) = |x|`` for ``|x| <= c`` and ``(x² + c²) / 2c`` above, where x is
    the residual and ``c = 0.2 · max |x|`` over every valid pixel of the
    batch: L1 for small residuals, L2 for the large ones, continuous at c.
    ``c`` is a constant for the gradient.
    """
    residual = (pred - target)[valid].abs()
    if residual.numel() == 0:
        return pred.sum() * 0.0
    c = 0.2 * residual.max().detach()
    squared = (residual**2 + c**2) / (2 * c).clamp_min(1e-12)
    return torch.where(residual <= c, residual, squared).mean()


class DepthMetrics:
    """Depth errors pooled over every scored pixel of a test set.

    A pixel is scored when its ground truth lies in ``[min_depth,
    max_depth]``; the prediction is clipped to that range first. ``delta1``
    … ``delta3`` are the percentages of pixels with ``max(gt/pred,
    pred/gt) < 1.25^k``; ``rel`` is the mean of ``|gt − pred| / gt``,
    ``rms`` the square root of the mean of ``(gt − pred)²``, ``log10`` the
    mean of ``|log10 gt − log10 pred|``.
    """

    THRESHOLDS = (1.25, 1.25**2, 1.25**3)

    def __init__(self, min_depth: float = 1e-3, max_depth: float = 10.0, device="cpu"):
        self.min_depth, self.max_depth, self.device = float(min_depth), float(max_depth), device
        self.pixels = self.beyond_cap = self.no_depth = 0
        self.within = [0] * len(self.THRESHOLDS)
        self.abs_rel = self.squared = self.log10 = 0.0

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """Add one or more predictions and their ground truth, both already at the same size."""
        valid = (gt >= self.min_depth) & (gt <= self.max_depth)
        self.beyond_cap += int((gt > self.max_depth).sum())
        self.no_depth += int((gt < self.min_depth).sum())
        g = gt[valid].double()
        p = pred[valid].double().clamp(self.min_depth, self.max_depth)
        ratio = torch.maximum(g / p, p / g)
        self.pixels += g.numel()
        self.within = [n + int((ratio < t).sum()) for n, t in zip(self.within, self.THRESHOLDS)]
        self.abs_rel += float(((g - p).abs() / g).sum())
        self.squared += float(((g - p) ** 2).sum())
        self.log10 += float((torch.log10(g) - torch.log10(p)).abs().sum())

    def all_reduce(self) -> None:
        """Sum the counts and sums over the ranks of the process group (nothing to do in one process)."""
        fields = [self.pixels, self.beyond_cap, self.no_depth, *self.within, self.abs_rel, self.squared, self.log10]
        totals = all_reduce_sum(torch.tensor(fields, dtype=torch.float64, device=self.device)).tolist()
        self.pixels, self.beyond_cap, self.no_depth, *within = (int(v) for v in totals[:3 + len(self.THRESHOLDS)])
        self.within = within
        self.abs_rel, self.squared, self.log10 = totals[3 + len(self.THRESHOLDS):]

    def compute(self) -> dict:
        if self.pixels == 0:
            raise SiambenchError(f"no test pixel has ground truth within [{self.min_depth}, {self.max_depth}] m")
        n = self.pixels
        out = {f"delta{k}": 100.0 * w / n for k, w in enumerate(self.within, 1)}
        out.update(rel=self.abs_rel / n, rms=math.sqrt(self.squared / n), log10=self.log10 / n)
        return out


# ---------------------------------------------------------------- data


def _resized_size(shape, scale: float, crop) -> list[int]:
    size = [max(1, round(s * scale)) for s in shape]
    if size[0] < crop[0] or size[1] < crop[1]:
        raise ConfigError(
            f"data.crop {list(crop)} is larger than the {shape[0]}x{shape[1]} frame resized by data.scale={scale} "
            f"({size[0]}x{size[1]}); lower data.crop or raise data.scale"
        )
    return size


def prepare_image(image: torch.Tensor, scale: float, crop) -> torch.Tensor:
    """Resize a uint8 ``(3, H, W)`` frame by ``scale`` (bilinear, antialiased), centre-crop to ``crop`` = (h, w)."""
    size = _resized_size(image.shape[-2:], scale, crop)
    if size != list(image.shape[-2:]):
        image = TF.resize(image, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(image, list(crop))


def prepare_depth(depth: torch.Tensor, scale: float, crop) -> torch.Tensor:
    """The same resize and crop for an ``(H, W)`` depth map, nearest-neighbour so holes never blend into depth."""
    size = _resized_size(depth.shape, scale, crop)
    if size != list(depth.shape):
        depth = F.interpolate(depth[None, None], size=size, mode="nearest")[0, 0]
    return TF.center_crop(depth[None], list(crop))[0]


class ShapesDepth(DepthDataset):
    """The embedded stand-in: a shapes split with the generator's depth maps (``scene_depth``)."""

    def __init__(self, split: str, image_size: int = 64, num_images: int | None = None,
                 objects_per_image=(1, 4), seed: int = 0):
        data = shapes.load_split(split, image_size=image_size, num_images=num_images, seed=seed,
                                 objects_per_image=tuple(objects_per_image))
        self.images = data.images
        self.depths = np.stack([shapes.scene_depth(scene) for scene in data.scenes])
        self.source = f"embedded shapes {split} ({len(self.images)} scenes, {image_size}x{image_size})"

    def __len__(self) -> int:
        return len(self.images)

    def load_image(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.images[index])).permute(2, 0, 1)

    def load_depth(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.depths[index])


class TrainView(ReadableView):
    """``(image, depth)`` resized and centre-cropped; keys are the samplers' ``(index, seed)`` pairs."""

    def __init__(self, dataset: DepthDataset, scale: float, crop):
        super().__init__(dataset)
        self.scale, self.crop = float(scale), tuple(int(c) for c in crop)

    def view(self, sample, key):
        image, depth = sample
        return prepare_image(image, self.scale, self.crop), prepare_depth(depth, self.scale, self.crop)


class ScoreView(TrainView):
    """The network's input crop and the full-size ground truth the prediction is scored against."""

    def view(self, sample, key):
        image, depth = sample
        return prepare_image(image, self.scale, self.crop), depth


def collate_test(items):
    """``(images, depths as a list, unreadable count)``: test frames may differ in size."""
    kept = [it for it in items if it is not None]
    images = torch.stack([image for image, _ in kept]) if kept else None
    return images, [depth for _, depth in kept], len(items) - len(kept)


class DepthAugment(nn.Module):
    """BYOL's NYU augmentations (App. D.6), batched, in the order the paper lists them.

    Horizontal flip (image and depth together), grayscale, additive
    brightness, HSV saturation scaling and hue shift (TensorFlow's
    semantics, each result clipped to [0, 1]), then normalisation. Every
    draw comes from ``generator``, so a run replays exactly.
    """

    def __init__(self, cfg: Config, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        self.flip_p, self.gray_p = float(cfg.flip_p), float(cfg.gray_p)
        self.brightness, self.hue = float(cfg.brightness), float(cfg.hue)
        self.saturation = tuple(float(s) for s in cfg.saturation)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor, depths: torch.Tensor, generator: torch.Generator, start: int = 0,
                total: int | None = None):
        """Augment ``images``, samples ``start ...`` of a batch of ``total``: every draw is made for the whole batch."""
        n, device = images.shape[0], images.device
        total = n if total is None else total

        def uniform(low, high):
            return (torch.rand(total, generator=generator, device=device) * (high - low) + low)[start:start + n]

        flip = uniform(0, 1) < self.flip_p
        gray = uniform(0, 1) < self.gray_p
        brightness = uniform(-self.brightness, self.brightness)
        saturation = uniform(*self.saturation)
        hue = uniform(-self.hue, self.hue)

        x = images.to(torch.get_default_dtype()) / 255.0
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        depths = torch.where(flip.view(-1, 1, 1), depths.flip(-1), depths)
        x = torch.where(gray.view(-1, 1, 1, 1), grayscale(x, "tf"), x)
        x = adjust_brightness(x, brightness, "tf").clamp(0.0, 1.0)
        x = adjust_saturation(x, saturation, "tf").clamp(0.0, 1.0)
        x = adjust_hue(x, hue, "tf").clamp(0.0, 1.0)
        return (x - self.mean) / self.std, depths


# ---------------------------------------------------------------- training and testing


def train_schedule(cfg: Config, num_images: int) -> tuple[int, int, float]:
    """``(steps, batch size, peak LR)``.

    The batch is capped at the number of images. With
    ``schedule.reference_batch`` N, ``optim.lr`` and ``schedule.steps`` are
    stated for batch N, and another batch B trains ``steps · N / B`` steps
    at ``lr · B / N``: the same number of frames at the same LR per frame.
    """
    batch = min(int(cfg.schedule.batch_size), num_images)
    steps, lr = int(cfg.schedule.steps), float(cfg.optim.lr)
    reference = cfg.schedule.get("reference_batch")
    if reference:
        steps, lr = max(1, round(steps * reference / batch)), scale_lr(lr, batch, reference)
    return steps, batch, lr


def _upsample(pred: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(at_least_float32(pred[:, None]), size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def depth_loss(pred: torch.Tensor, depths: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """berHu of the prediction upsampled (bilinear) to the target, over the pixels with depth in range."""
    valid = (depths >= min_depth) & (depths <= max_depth)
    return berhu_loss(_upsample(pred, depths.shape[-2:]), depths, valid)


def train(net: DepthNet, dataset: DepthDataset, cfg: Config, seed: int = 0, device="cpu",
          input_stats=(IMAGENET_MEAN, IMAGENET_STD), progress: bool = True, desc: str = "depth train") -> dict:
    """Train ``net`` in place with berHu on ``dataset``; returns what the run did and every step's loss.

    The prediction is upsampled (bilinear) to the target crop and the loss
    taken over the pixels with depth in ``[min_depth, max_depth]``. With
    ``schedule.accumulate`` k the batch is split into k micro-batches whose
    gradients add up to the batch's (berHu's c and BN statistics are then per
    micro-batch). Under ``torchrun`` each process trains on its share of
    every global batch through DDP, split into its own k micro-batches, so
    W processes train as one process with ``accumulate`` W·k. Raises
    :class:`TrainingDivergedError` on a non-finite loss.
    """
    device = torch.device(device)
    s, o, d = cfg.schedule, cfg.optim, cfg.data
    steps, batch, peak = train_schedule(cfg, len(dataset))
    rank, world = process_group()
    accumulate = int(s.accumulate)
    if s.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"schedule.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {s.lr_schedule!r}")
    epochs = math.ceil(steps / (len(dataset) // batch))
    sampler = RankBatches(EpochBatches(range(len(dataset)), batch, epochs, derive_seed(seed, 21), drop_last=True),
                          rank, world, accumulate)
    loader = torch.utils.data.DataLoader(
        TrainView(dataset, d.scale, d.crop), batch_sampler=sampler, num_workers=int(d.num_workers),
        collate_fn=collate_readable, pin_memory=device.type == "cuda",
    )
    augment = DepthAugment(cfg.augment, *input_stats).to(device)
    generator = torch.Generator(device=device).manual_seed(derive_seed(seed, 22))
    optimizer = torch.optim.SGD(net.parameters(), lr=peak, momentum=o.momentum,
                                nesterov=bool(o.nesterov) and o.momentum > 0, weight_decay=o.weight_decay)
    share = batch // world

    def prepare(pair):
        return augment(pair[0].to(device, non_blocking=True), pair[1].to(device, non_blocking=True),
                       generator, rank * share, batch)

    lr_at = (lambda step: cosine_decay(peak, step, steps)) if s.lr_schedule == "cosine" else (lambda step: peak)
    losses = train_steps(
        net, loader, steps, optimizer, lr_at, prepare, lambda pred, y: depth_loss(pred, y, d.min_depth, d.max_depth),
        accumulate=accumulate, device=device, amp=bool(s.amp) and device.type == "cuda", check_every=1, desc=desc,
        progress=progress,
    )
    return {"steps": steps, "batch_size": batch, "peak_lr": peak, "final_loss": losses[-1] if losses else None,
            "losses": losses}


@torch.no_grad()
def score(net: DepthNet, dataset: DepthDataset, cfg: Config, device="cpu", input_stats=(IMAGENET_MEAN, IMAGENET_STD),
          progress: bool = True, desc: str = "depth test") -> dict:
    """Depth metrics of ``net`` on ``dataset``: each prediction upsampled to its ground truth's size.

    Returns the metrics plus the pixel counts (scored, beyond the cap, without
    depth) and the number of unreadable frames skipped. Under ``torchrun``
    each process scores every world-size-th frame and the sums are added up.
    """
    device = torch.device(device)
    d = cfg.data
    rank, world = process_group()
    frames = ScoreView(dataset, d.scale, d.crop)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(frames, range(rank, len(frames), world)), batch_size=int(d.eval_batch_size),
        num_workers=int(d.num_workers), collate_fn=collate_test,
    )
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in input_stats)
    metrics = DepthMetrics(d.min_depth, d.max_depth, device)
    net.to(device).eval()
    skipped = torch.zeros((), dtype=torch.long, device=device)
    for images, depths, unreadable in tqdm(loader, desc=desc, disable=not progress or rank > 0, leave=False,
                                           dynamic_ncols=True):
        skipped += unreadable
        if images is None:
            continue
        pred = net((images.to(device, mean.dtype) / 255.0 - mean) / std)
        for p, gt in zip(pred, depths):
            metrics.update(_upsample(p[None], gt.shape)[0], gt.to(device))
    metrics.all_reduce()
    skipped = int(all_reduce_sum(skipped))
    return {**metrics.compute(), "pixels": metrics.pixels, "pixels_beyond_cap": metrics.beyond_cap,
            "pixels_without_depth": metrics.no_depth, "unreadable_frames": skipped}


# ---------------------------------------------------------------- the stage


def depth_split(ctx: EvalContext, dataset: str, split: str, cfg: Config) -> DepthDataset:
    """A split with depth maps: shapes scenes for the embedded ``shapes``, else the registry's reader."""
    if dataset == "shapes":
        s = cfg.data.shapes
        return ShapesDepth(split, int(s.image_size), int(s[f"{split}_images"]), s.objects_per_image)
    data = ctx.dataset(dataset, split)
    if not isinstance(data, DepthDataset):
        raise ConfigError(f"dataset {dataset!r} has no depth maps; the depth evaluation runs on nyu_depth_v2 "
                          "or, without a data root, on the embedded shapes scenes")
    return data


@register_stage("depth")
def evaluate(ctx: EvalContext, dataset: str, protocol: str, overrides: list[str]) -> EvalResult:
    """Train the FCRN head and the encoder on ``dataset``'s training split; score the test split."""
    cfg = load_protocol("depth", protocol, overrides)
    info = ctx.info(dataset)
    train_set = depth_split(ctx, dataset, info.train_split, cfg)
    test_set = depth_split(ctx, dataset, info.test_split, cfg)
    net = build_depth_net(ctx.backbone, cfg, ctx.seed)
    run = train(net, train_set, cfg, ctx.seed, ctx.torch_device, ctx.backbone.input_stats, ctx.progress)
    out = score(net, test_set, cfg, ctx.torch_device, ctx.backbone.input_stats, ctx.progress)
    total = out["pixels"] + out["pixels_beyond_cap"] + out["pixels_without_depth"]
    cap = f"depth cap {cfg.data.max_depth:g}: {out['pixels_beyond_cap']} of {total} test pixels lie beyond it"
    notes = [f"{cap} and were not scored"]
    if dataset != "shapes" and not test_set.standard:
        notes.append(f"test frames: {test_set.source}, not the standard 654 labelled test frames")
    if out["unreadable_frames"]:
        notes.append(f"{out['unreadable_frames']} unreadable test frames skipped")
    return EvalResult(
        metrics={k: float(out[k]) for k in ("delta1", "delta2", "delta3", "rel", "rms", "log10")},
        primary_metric="delta1",
        hyperparameters={
            "steps": run["steps"], "batch_size": run["batch_size"], "peak_lr": run["peak_lr"],
            "final_loss": run["final_loss"], "train_frames": train_set.source, "test_frames": test_set.source,
            "test_pixels": out["pixels"],
        },
        config=cfg.to_dict(),
        notes=notes,
    )
