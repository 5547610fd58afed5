"""Throughput of one BYOL training step: siambench's against one assembled from lightly.

Both sides run the whole step on the same two views: online forward
(backbone → projector → predictor) of both views, target forward of both
views without gradients, the symmetric loss, backward, a LARS step and the
target EMA. They share everything that is not SSL machinery, so that the
ratio measures only the machinery:

* the backbone: one ``siambench.models.build_resnet`` network, deep-copied
  into each side (same architecture, width, stem and initial weights);
* the head sizes (projector hidden/out, predictor hidden), batch and input size;
* the optimiser: ``siambench.engine.lars.LARS`` with the same parameter
  groups (every 1-D parameter, i.e. biases and BN, excluded from decay and
  adaptation).

"siambench" is ``siambench.pretrain.BYOL`` as the trainer drives it
(``forward`` → loss, ``backward``, ``LARS.step``, ``after_step`` for the EMA).
"lightly" follows lightly's BYOL example: ``BYOLProjectionHead`` and
``BYOLPredictionHead``, a deep-copied momentum backbone and projector frozen
with ``deactivate_requires_grad``, ``update_momentum`` with τ from
``cosine_schedule``, and ``NegativeCosineSimilarity`` as the loss
(BYOL's 2 − 2·cos up to constants, which do not change the work done).
lightly's heads put the bias on the last Linear instead of the first; the
difference in work is a few vector additions.

Method: ``--warmup`` untimed steps per side (the first one is also the step
whose FLOPs ``torch.utils.flop_counter.FlopCounterMode`` counts, forward and
backward together), then ``--rounds`` rounds of ``--steps`` timed steps per
side, so that load from other processes falls on both. By default the sides
alternate every step in A B B A order, which pairs each step with a neighbour
of the other side run under nearly the same load; ``--interleave block`` runs
each round's steps of one side together instead, flipping which side goes
first every round. Each timed step is measured on its own; the figure
reported is the median images/s over all timed steps, where an image is one
example of the batch (each has two views). The ratio is ours/lightly of
those medians; the per-round ratios and the median ratio of paired steps show
how much noise there was.

The achieved FLOP/s of each step is set against the machine's fp32 GEMM rate
measured in the same run (an N³ ``torch.mm``, best of several, measured
before and after the steps). On a CUDA device the script also times
siambench's step with bf16 autocast, with channels_last and with
``torch.compile``, and reports MFU against a bf16 GEMM; on a CPU those are
skipped.

    .venv/bin/python benchmarks/pretrain_step.py
    .venv/bin/python benchmarks/pretrain_step.py --stem imagenet --size 64 --width 0.25 \\
        --batch 128 --proj-hidden 512 --proj-out 128 --json results/bench.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightly.loss import NegativeCosineSimilarity
from lightly.models.modules import BYOLPredictionHead, BYOLProjectionHead
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule

from common import cpu_name, gemm_rate, timed
from siambench.models import build_resnet
from siambench.pretrain import BYOL
from siambench.engine.lars import LARS, split_decay_groups

# BYOL's optimiser settings (the presets' defaults); only their cost matters here.
BASE_LR, MOMENTUM, WEIGHT_DECAY, ETA = 0.2, 0.9, 1.5e-6, 1e-3
# Nominal schedule length for τ; the steps timed are its first few.
TOTAL_STEPS = 1000


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet18", help="backbone architecture (default: %(default)s)")
    p.add_argument("--width", type=float, default=1.0, help="backbone width multiplier (default: %(default)s)")
    p.add_argument("--stem", default="cifar", choices=("cifar", "imagenet"),
                   help="backbone stem (default: %(default)s)")
    p.add_argument("--size", type=int, default=32, help="input side in pixels (default: %(default)s)")
    p.add_argument("--batch", type=int, default=32, help="images per step, two views each (default: %(default)s)")
    p.add_argument("--proj-hidden", type=int, default=4096, help="projector hidden width (default: %(default)s)")
    p.add_argument("--proj-out", type=int, default=256, help="projector and predictor output (default: %(default)s)")
    p.add_argument("--pred-hidden", type=int, default=None, help="predictor hidden width (default: --proj-hidden)")
    p.add_argument("--tau-base", type=float, default=0.996, help="base EMA rate τ (default: %(default)s)")
    p.add_argument("--steps", type=int, default=5,
                   help="timed steps per implementation in each round (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of timed steps (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed steps per implementation before timing (default: %(default)s)")
    p.add_argument("--interleave", default="step", choices=("step", "block"),
                   help="alternate the implementations every step (in A B B A order), or run each round's steps "
                        "of one implementation as a block, flipping which goes first every round "
                        "(default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    p.add_argument("--gemm-size", type=int, default=None, help="N of the N³ GEMM (default: 2048 on CPU, 8192 on CUDA)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and inputs (default: %(default)s)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.pred_hidden is None:
        args.pred_hidden = args.proj_hidden
    if min(args.steps, args.rounds, args.warmup) < 1:
        p.error("--steps, --rounds and --warmup must be at least 1")
    return args


def make_lars(groups, batch: int) -> LARS:
    return LARS(groups, lr=BASE_LR * batch / 256, momentum=MOMENTUM, eta=ETA)


class SiambenchStep:
    """One training step of ``siambench.pretrain.BYOL``, as the trainer runs it."""

    def __init__(self, backbone: nn.Module, args, device: torch.device, amp=False, channels_last=False, compile=False):
        torch.manual_seed(args.seed + 1)
        self.model = BYOL(backbone, args.proj_hidden, args.proj_out, args.pred_hidden, args.tau_base).to(device)
        if channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.train()
        groups = self.model.param_groups(WEIGHT_DECAY, exclude_bias_and_norm=True, lars=True)
        self.optimizer = make_lars(groups, args.batch)
        self.forward = torch.compile(self.model) if compile else self.model
        self.device, self.amp, self.step_index = device, amp, 0

    def __call__(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.amp):
            loss, _ = self.forward(x1, x2)
        loss.backward()
        self.optimizer.step()
        self.model.after_step(self.step_index, TOTAL_STEPS)
        self.step_index += 1
        return loss


class LightlyBYOL(nn.Module):
    """BYOL as lightly's example assembles it from lightly's modules."""

    def __init__(self, backbone: nn.Module, feature_dim: int, proj_hidden: int, proj_out: int, pred_hidden: int):
        super().__init__()
        self.backbone = backbone
        self.projection_head = BYOLProjectionHead(feature_dim, proj_hidden, proj_out)
        self.prediction_head = BYOLPredictionHead(proj_out, pred_hidden, proj_out)
        self.backbone_momentum = copy.deepcopy(self.backbone)
        self.projection_head_momentum = copy.deepcopy(self.projection_head)
        deactivate_requires_grad(self.backbone_momentum)
        deactivate_requires_grad(self.projection_head_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.backbone(x).flatten(start_dim=1)
        z = self.projection_head(y)
        return self.prediction_head(z)

    def forward_momentum(self, x: torch.Tensor) -> torch.Tensor:
        y = self.backbone_momentum(x).flatten(start_dim=1)
        z = self.projection_head_momentum(y)
        return z.detach()


class LightlyStep:
    """One training step of :class:`LightlyBYOL`, in the order of lightly's example loop."""

    def __init__(self, backbone: nn.Module, args, device: torch.device):
        torch.manual_seed(args.seed + 1)
        heads = (args.proj_hidden, args.proj_out, args.pred_hidden)
        self.model = LightlyBYOL(backbone, backbone.num_features, *heads).to(device)
        self.model.train()
        parts = {"backbone": self.model.backbone, "projection_head": self.model.projection_head,
                 "prediction_head": self.model.prediction_head}
        groups = split_decay_groups(parts, WEIGHT_DECAY, exclude_bias_and_norm=True, lars=True)
        self.optimizer = make_lars(groups, args.batch)
        self.criterion = NegativeCosineSimilarity()
        self.tau_base, self.step_index = args.tau_base, 0

    def __call__(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        m = self.model
        momentum = cosine_schedule(self.step_index, TOTAL_STEPS, self.tau_base, 1.0)
        update_momentum(m.backbone, m.backbone_momentum, m=momentum)
        update_momentum(m.projection_head, m.projection_head_momentum, m=momentum)
        p0 = m(x0)
        z0 = m.forward_momentum(x0)
        p1 = m(x1)
        z1 = m.forward_momentum(x1)
        loss = 0.5 * (self.criterion(p0, z1) + self.criterion(p1, z0))
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.step_index += 1
        return loss


def count_flops(step, x1, x2) -> int:
    """FLOPs of one step (forward and backward; the optimiser and EMA add no counted FLOPs)."""
    with FlopCounterMode(display=False) as counter:
        step(x1, x2)
    return counter.get_total_flops()


def summarise(times: list[float], rounds: int, batch: int, flops: int | None) -> dict:
    per_round = len(times) // rounds
    rates = [batch / t for t in times]
    median_time = statistics.median(times)
    out = {
        "images_per_s": statistics.median(rates),
        "step_ms": 1e3 * median_time,
        "round_images_per_s": [statistics.median(rates[i * per_round:(i + 1) * per_round]) for i in range(rounds)],
        "step_times_s": times,
    }
    if flops is not None:
        out["gflop_per_step"] = flops / 1e9
        out["achieved_gflop_per_s"] = flops / median_time / 1e9
    return out


def gpu_variants(backbone, views, args, device, flops: int, bf16_peak: float, fp32_peak: float, log) -> dict:
    """siambench's step on CUDA: fp32, bf16 autocast, + channels_last, + torch.compile."""
    variants = {
        "fp32": dict(),
        "bf16 autocast": dict(amp=True),
        "bf16 + channels_last": dict(amp=True, channels_last=True),
        "bf16 + channels_last + compile": dict(amp=True, channels_last=True, compile=True),
    }
    results = {}
    for name, opts in variants.items():
        x1, x2 = views
        if opts.get("channels_last"):
            x1, x2 = (x.contiguous(memory_format=torch.channels_last) for x in (x1, x2))
        step = SiambenchStep(copy.deepcopy(backbone), args, device, **opts)
        log(f"  {name}: warm-up")
        for _ in range(args.warmup + (2 if opts.get("compile") else 0)):
            timed(step, x1, x2, device=device)
        times = [timed(step, x1, x2, device=device) for _ in range(args.steps * args.rounds)]
        r = summarise(times, args.rounds, args.batch, flops)
        r["mfu_bf16"] = r["achieved_gflop_per_s"] * 1e9 / bf16_peak
        r["fraction_of_fp32_gemm"] = r["achieved_gflop_per_s"] * 1e9 / fp32_peak
        results[name] = r
        del step
        torch.cuda.empty_cache()
    return results


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    gemm_n = args.gemm_size or (8192 if device.type == "cuda" else 2048)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu_name()}, {args.threads} threads"

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    print("BYOL training step: siambench vs lightly's BYOL modules")
    print(f"  device      {device.type} ({hardware}), torch {torch.__version__}")
    print(f"  model       {args.arch} ×{args.width:g}, {args.stem} stem, {args.size}×{args.size} input, "
          f"batch {args.batch}")
    print(f"  heads       projector {args.proj_hidden}→{args.proj_out}, "
          f"predictor {args.pred_hidden}→{args.proj_out}")
    alternation = "alternating every step" if args.interleave == "step" else "one block each, alternating"
    print(f"  timing      {args.warmup} warm-up steps, then {args.rounds} rounds × {args.steps} timed steps per "
          f"implementation, {alternation}; fp32 GEMM {gemm_n}³")
    sys.stdout.flush()

    gemm_before = gemm_rate(gemm_n, torch.float32, device)
    log(f"fp32 GEMM {gemm_n}³: {gemm_before / 1e9:.1f} GFLOP/s")

    torch.manual_seed(args.seed)
    backbone = build_resnet(args.arch, args.width, args.stem).to(device)
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    views = tuple(torch.randn(args.batch, 3, args.size, args.size, generator=gen).to(device) for _ in range(2))

    steps = {
        "siambench": SiambenchStep(copy.deepcopy(backbone), args, device),
        "lightly": LightlyStep(copy.deepcopy(backbone), args, device),
    }
    flops = {}
    for name, step in steps.items():
        log(f"{name}: warm-up ({args.warmup} steps, the first counted by FlopCounterMode)")
        flops[name] = count_flops(step, *views)
        for _ in range(args.warmup - 1):
            timed(step, *views, device=device)

    times = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.rounds):
        if args.interleave == "block":
            for name in order if r % 2 == 0 else order[::-1]:
                times[name] += [timed(steps[name], *views, device=device) for _ in range(args.steps)]
        else:
            for i in range(args.steps):
                for name in order if (r * args.steps + i) % 2 == 0 else order[::-1]:
                    times[name].append(timed(steps[name], *views, device=device))
        log(f"round {r + 1}/{args.rounds}: " + ", ".join(
            f"{name} {args.batch / statistics.median(times[name][-args.steps:]):.2f}" for name in order) + " images/s")

    gemm_after = gemm_rate(gemm_n, torch.float32, device)
    gemm_peak = max(gemm_before, gemm_after)
    log(f"fp32 GEMM {gemm_n}³ again: {gemm_after / 1e9:.1f} GFLOP/s")

    results = {name: summarise(times[name], args.rounds, args.batch, flops[name]) for name in steps}
    for r in results.values():
        r["fraction_of_fp32_gemm"] = r["achieved_gflop_per_s"] * 1e9 / gemm_peak
    ours, theirs = results["siambench"], results["lightly"]
    ratio = ours["images_per_s"] / theirs["images_per_s"]
    round_ratios = [a / b for a, b in zip(ours["round_images_per_s"], theirs["round_images_per_s"])]
    paired_ratio = statistics.median(b / a for a, b in zip(times["siambench"], times["lightly"]))

    gpu: dict = {"skipped": "no CUDA device present"}
    if device.type == "cuda":
        del steps
        torch.cuda.empty_cache()
        bf16_peak = gemm_rate(gemm_n, torch.bfloat16, device)
        log(f"bf16 GEMM {gemm_n}³: {bf16_peak / 1e9:.1f} GFLOP/s; siambench step variants")
        gpu = {"bf16_gemm_gflop_per_s": bf16_peak / 1e9,
               "variants": gpu_variants(backbone, views, args, device, flops["siambench"], bf16_peak, gemm_peak, log)}

    print()
    print(f"{'implementation':<16}{'images/s':>10}{'step ms':>10}{'GFLOP/step':>12}{'GFLOP/s':>10}{'of GEMM':>9}"
          "   images/s per round")
    for name, r in results.items():
        rounds = " / ".join(f"{v:.2f}" for v in r["round_images_per_s"])
        print(f"{name:<16}{r['images_per_s']:>10.2f}{r['step_ms']:>10.0f}{r['gflop_per_step']:>12.2f}"
              f"{r['achieved_gflop_per_s']:>10.1f}{r['fraction_of_fp32_gemm']:>9.1%}   {rounds}")
    print(f"\nratio siambench/lightly (median images/s): {ratio:.3f}   per round: "
          + ", ".join(f"{v:.3f}" for v in round_ratios) + f"   median of paired steps: {paired_ratio:.3f}")
    print(f"fp32 GEMM {gemm_n}³ (best, before/after): {gemm_before / 1e9:.1f} / {gemm_after / 1e9:.1f} GFLOP/s; "
          f"siambench's step reaches {ours['fraction_of_fp32_gemm']:.1%} of {gemm_peak / 1e9:.1f}")
    print("images/s counts batch examples (two views each); GFLOP/s = FlopCounterMode FLOPs of one step "
          "(forward + backward) / median step time")
    if device.type == "cuda":
        print(f"\nsiambench step on {hardware} (bf16 GEMM {gemm_n}³: {gpu['bf16_gemm_gflop_per_s']:.0f} GFLOP/s; "
              "fp32 convolutions may use TF32 under cuDNN's defaults)")
        print(f"{'variant':<32}{'images/s':>10}{'step ms':>10}{'GFLOP/s':>10}{'MFU bf16':>10}")
        for name, r in gpu["variants"].items():
            print(f"{name:<32}{r['images_per_s']:>10.1f}{r['step_ms']:>10.2f}"
                  f"{r['achieved_gflop_per_s']:>10.0f}{r['mfu_bf16']:>10.1%}")
    else:
        print("\nGPU figures (bf16 autocast, channels_last, torch.compile, MFU against a bf16 GEMM): "
              "skipped, no GPU is present.")
    elapsed = time.perf_counter() - started
    print(f"total time {elapsed:.0f} s")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "device": device.type, "hardware": hardware, "torch": torch.__version__,
            "fp32_gemm": {"n": gemm_n, "gflop_per_s_before": gemm_before / 1e9, "gflop_per_s_after": gemm_after / 1e9,
                          "gflop_per_s": gemm_peak / 1e9},
            "results": results,
            "ratio_siambench_over_lightly": ratio,
            "round_ratios": round_ratios,
            "paired_step_ratio_median": paired_ratio,
            "gpu": gpu,
            "elapsed_s": elapsed,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
