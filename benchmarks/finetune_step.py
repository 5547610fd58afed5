"""Transfer fine-tuning step throughput: siambench's step against a plain torchvision loop, and MFU.

One step of ``siambench.toolkit.finetune`` (the loop the transfer and
semi-supervised fine-tuning share: the ResNet plus a new linear head, SGD
with Nesterov momentum, softmax cross-entropy) against the same step
written out over ``torchvision.models.resnet50``, timed alternately in one
run on the same inputs, so the ratio shows what siambench's loop costs
over the bare model; and the achieved FLOP/s as a fraction of an fp32 GEMM
measured in the same run (on CUDA also under bf16 autocast against a bf16
GEMM). Run from the repository root: ``.venv/bin/python benchmarks/finetune_step.py``.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from common import cpu_name, gemm_rate, report, timed
from siambench.toolkit.finetune import Classifier
from siambench.models import build_resnet


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=8, help="images per step (the protocol's is 256, on GPUs)")
    p.add_argument("--classes", type=int, default=101)
    p.add_argument("--steps", type=int, default=4, help="timed steps per implementation")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--gemm-size", type=int, default=None)
    p.add_argument("--json", help="also write the figures here")
    return p.parse_args(argv)


def make_step(model, device, amp: bool):
    model.to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)

    def step(x, y):
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, args.classes, (args.batch,), device=device)
    ours = Classifier(build_resnet(args.arch), args.classes, torch.Generator().manual_seed(0))
    reference = getattr(torchvision.models, args.arch)(num_classes=args.classes)
    steps = {"siambench": make_step(ours, device, False), "torchvision": make_step(reference, device, False)}
    with FlopCounterMode(display=False) as counter:
        steps["siambench"](x, y)
    flops = counter.get_total_flops()
    steps["torchvision"](x, y)
    times = {name: [] for name in steps}
    for k in range(args.steps):
        order = list(steps) if k % 2 == 0 else list(steps)[::-1]
        for name in order:
            times[name].append(timed(steps[name], x, y, device=device))
    gemm = gemm_rate(args.gemm_size or (8192 if device.type == "cuda" else 2048), torch.float32, device)
    result = {
        "hardware": torch.cuda.get_device_name() if device.type == "cuda" else f"{cpu_name()}, {args.threads} threads",
        "arch": args.arch, "size": args.size, "batch": args.batch, "gflop_per_step": flops / 1e9,
        "fp32_gemm_gflop_per_s": gemm / 1e9,
    }
    for name, t in times.items():
        median = statistics.median(t)
        result[name] = {"images_per_s": args.batch / median, "step_ms": 1e3 * median,
                        "fraction_of_fp32_gemm": flops / median / gemm}
    result["speed_ratio_siambench_over_torchvision"] = (result["siambench"]["images_per_s"]
                                                        / result["torchvision"]["images_per_s"])
    if device.type == "cuda":
        bf16 = make_step(ours, device, True)
        bf16(x, y)
        median = statistics.median(timed(bf16, x, y, device=device) for _ in range(args.steps))
        result["siambench_bf16"] = {"images_per_s": args.batch / median,
                                    "mfu_bf16": flops / median / gemm_rate(8192, torch.bfloat16, device)}
    report(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
