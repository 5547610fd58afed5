"""Many LRs in one pass against one run per LR: the linear probe's sweep cost.

Trains the heads of five LRs on a frozen encoder (a quarter-width
ResNet-18 on the embedded 64×64 shapes images by default) once with all
five sharing each encoder pass, then five times with one LR each, same seed
and same batches. Prints both wall times, their ratio, and whether each
head of the shared run equals its single-LR run bit for bit.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from common import write_json
from siambench.configs import apply_overrides, load_preset
from siambench.data import build_dataset
from siambench.eval_linear.probe import train_linear_heads
from siambench.models import build_resnet


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="shapes")
    ap.add_argument("--images", type=int, default=1024, help="training images used")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=64, help="crop size")
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--lrs", default="0.01,0.03,0.1,0.3,1.0")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    lrs = [float(v) for v in args.lrs.split(",")]
    data = build_dataset(args.dataset, "train")
    indices = np.arange(min(args.images, len(data)))
    torch.manual_seed(0)
    encoder = build_resnet(args.arch, args.width, "imagenet").to(args.device)

    def cfg(values):
        return apply_overrides(load_preset("linear", "tiny"), [
            f"data.crop_size={args.size}", f"data.num_workers={args.workers}", f"schedule.epochs={args.epochs}",
            f"schedule.batch_size={args.batch}", f"optim.lrs={values}",
        ])

    print(f"{len(indices)} {args.dataset} images × {args.epochs} epoch(s), batch {args.batch}, {args.size} px, "
          f"{args.arch} ×{args.width}, {len(lrs)} LRs, {torch.get_num_threads()} threads on {args.device}", flush=True)
    start = time.perf_counter()
    heads, _ = train_linear_heads(encoder, data, indices, data.num_classes, cfg(lrs), args.device, seed=0)
    shared = time.perf_counter() - start
    print(f"one pass, {len(lrs)} heads: {shared:7.1f} s", flush=True)

    separate, equal = 0.0, []
    for lr, head in zip(lrs, heads):
        start = time.perf_counter()
        (single,), _ = train_linear_heads(encoder, data, indices, data.num_classes, cfg([lr]), args.device, seed=0)
        separate += time.perf_counter() - start
        equal.append(bool(torch.equal(single.weight, head.weight) and torch.equal(single.bias, head.bias)))
    print(f"{len(lrs)} separate runs:    {separate:7.1f} s")
    print(f"ratio {separate / shared:.2f}x; heads equal to their single-LR runs: {all(equal)}")
    result = {"args": vars(args), "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
              "load_average": os.getloadavg(), "threads": torch.get_num_threads(), "shared_seconds": shared,
              "separate_seconds": separate, "ratio": separate / shared, "heads_equal": equal}
    write_json(result, args.json)
    return all(equal)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
