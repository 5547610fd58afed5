"""Training step throughput of the dense protocols: VOC segmentation (FCN) and NYU depth (FCRN).

Each protocol's network is built by siambench from a random backbone of
``--arch``, and one training step (forward, the protocol's loss, backward,
SGD with momentum) is timed on synthetic inputs of the preset's crop and
batch. The reference is the machine's own fp32 GEMM rate measured in the
same run: the figure is the fraction of it the step achieves. On CUDA the
real presets are also timed with bf16 autocast and channels_last, and the
ratio to their fp32 step is reported.

    .venv/bin/python benchmarks/dense_step.py                     # CPU: the tiny presets, the embedded backbone
    .venv/bin/python benchmarks/dense_step.py --arch resnet50 --width 1 --preset byol --batch 4
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import cpu_name, gemm_rate, report, timed
from siambench.checkpoints import CanonicalBackbone
from siambench.configs import load_preset
from siambench.eval_dense import depth, segmentation
from siambench.models import backbone_state_dict, build_resnet


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--preset", default=None, help="both tasks' preset (default: tiny on CPU, byol on CUDA)")
    p.add_argument("--batch", type=int, default=None, help="images per step (default: the preset's)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per task and mode")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="also write the figures here")
    return p.parse_args(argv)


def random_backbone(arch: str, width: float) -> CanonicalBackbone:
    torch.manual_seed(0)
    model = build_resnet(arch, width, "imagenet")
    return CanonicalBackbone(backbone_state_dict(model), model.spec, {"sha256": "0" * 64})


def segmentation_case(backbone, preset: str, batch: int | None):
    """The FCN, a batch of crops and masks, and the protocol's loss."""
    cfg = load_preset("segmentation", preset)
    net = segmentation.build_fcn(backbone, 21, cfg, seed=0)
    n, crop = batch or int(cfg.schedule.batch_size), int(cfg.data.crop_size)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, crop, crop, generator=g)
    y = torch.randint(0, 21, (n, crop, crop), generator=g)

    return net, x, y, segmentation.pixel_loss


def depth_case(backbone, preset: str, batch: int | None):
    """The FCRN, a batch of crops and depth maps, and berHu over the valid pixels."""
    cfg = load_preset("depth", preset)
    net = depth.build_depth_net(backbone, cfg, seed=0)
    n, (h, w) = batch or int(cfg.schedule.batch_size), (int(v) for v in cfg.data.crop)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, h, w, generator=g)
    y = torch.rand(n, h, w, generator=g) * float(cfg.data.max_depth)

    def loss(out, target):
        return depth.depth_loss(out, target, float(cfg.data.min_depth), float(cfg.data.max_depth))

    return net, x, y, loss


def make_step(net, loss_fn, device, amp: bool = False, channels_last: bool = False):
    net.to(device).train()
    if channels_last:
        net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)

    def step(x, y):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            out = net(x)
        loss = loss_fn(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def median_time(step, x, y, device, steps: int) -> float:
    step(x, y)
    return statistics.median(timed(step, x, y, device=device) for _ in range(steps))


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    preset = args.preset or ("byol" if device.type == "cuda" else "tiny")
    backbone = random_backbone(args.arch, args.width)
    gemm = gemm_rate(8192 if device.type == "cuda" else 2048, torch.float32, device)
    result = {
        "hardware": torch.cuda.get_device_name() if device.type == "cuda" else f"{cpu_name()}, {args.threads} threads",
        "arch": args.arch, "width": args.width, "preset": preset, "fp32_gemm_gflop_per_s": gemm / 1e9,
    }
    for task, case in (("segmentation", segmentation_case), ("depth", depth_case)):
        net, x, y, loss_fn = case(backbone, preset, args.batch)
        x, y = x.to(device), y.to(device)
        step = make_step(net, loss_fn, device)
        with FlopCounterMode(display=False) as counter:
            step(x, y)
        flops = counter.get_total_flops()
        seconds = median_time(step, x, y, device, args.steps)
        figures = {"input": list(x.shape), "gflop_per_step": flops / 1e9, "images_per_s": len(x) / seconds,
                   "step_ms": 1e3 * seconds, "fraction_of_fp32_gemm": flops / seconds / gemm}
        if device.type == "cuda":
            fast = make_step(case(backbone, preset, args.batch)[0], loss_fn, device, amp=True, channels_last=True)
            fast_seconds = median_time(fast, x, y, device, args.steps)
            figures["bf16_channels_last"] = {"images_per_s": len(x) / fast_seconds,
                                             "speedup_over_fp32": seconds / fast_seconds}
        result[task] = figures
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
