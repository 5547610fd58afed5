"""Loading and converting a ResNet-50 checkpoint: siambench against a plain ``torch.load`` + ``load_state_dict``.

One random ResNet-50 is written in the chosen layout (``torchvision``: a
plain state dict, 98 MB; ``moco``: MoCo v2's training checkpoint with the
momentum encoder and queue, twice that, in the legacy stream MoCo's files
use). Then, each in a fresh process so that peak memory is its own:

* reference: ``torch.load(weights_only=True)``, strip the prefix by hand,
  ``torchvision.models.resnet50().load_state_dict(strict=False)``;
* load: ``siambench.checkpoints.load(path).build_model()`` (detection, key
  audit, sha256 of the file, architecture from shapes, model built);
* convert to each target: ``load(path)`` then ``export(..., to)``.

Each is run ``--repeats`` times in rotation; the figures are medians of the
wall time of the operation (imports excluded) and of the peak resident
memory it added over the process's post-import baseline. Printed with the
ratio to the reference measured in the same run (target: within 1.5×).

    .venv/bin/python benchmarks/checkpoint_load.py
    .venv/bin/python benchmarks/checkpoint_load.py --layout moco --repeats 5 --json results/ckpt.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = ("torchvision", "safetensors", "detectron2", "timm", "mmseg")
PREFIX = {"torchvision": "", "moco": "module.encoder_q."}


def write_checkpoint(path: Path, layout: str) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    sd = torchvision.models.resnet50().state_dict()
    if layout == "torchvision":
        torch.save(sd, path)
        return
    state = {f"module.encoder_q.{k}": v for k, v in sd.items() if not k.startswith("fc.")}
    state.update({f"module.encoder_k.{k}": v.clone() for k, v in sd.items() if not k.startswith("fc.")})
    for i, (a, b) in enumerate(((2048, 2048), (2048, 128))):
        for enc in ("q", "k"):
            state[f"module.encoder_{enc}.fc.{2 * i}.weight"] = torch.randn(b, a)
            state[f"module.encoder_{enc}.fc.{2 * i}.bias"] = torch.randn(b)
    state["module.queue"] = torch.randn(128, 65536)
    state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
    torch.save({"epoch": 800, "arch": "resnet50", "state_dict": state, "optimizer": {}}, path,
               _use_new_zipfile_serialization=False)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def worker(kind: str, path: str, layout: str, out_dir: str) -> dict:
    """One measurement, in this (fresh) process: imports first, then the timed operation."""
    import torch
    import torchvision

    from siambench.checkpoints import export, load

    torch.set_num_threads(2)
    baseline = rss_bytes()
    start = time.perf_counter()
    if kind == "reference":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        sd = obj.get("state_dict", obj)
        prefix = PREFIX[layout]
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix) and ".fc." not in "." + k[len(prefix):]}
        model = torchvision.models.resnet50()
        model.load_state_dict(sd, strict=False)
    elif kind == "load":
        model = load(path).build_model()
    else:
        export(load(path), kind, Path(out_dir) / f"out.{kind}")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"kind": kind, "seconds": seconds, "peak_added_mb": max(peak - baseline, 0) / 2**20,
            "peak_mb": peak / 2**20}


def run_worker(kind, path, layout, out_dir) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--path", str(path), "--layout", layout, "--out", out_dir]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layout", choices=list(PREFIX), default="torchvision")
    parser.add_argument("--targets", nargs="*", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.path, args.layout, args.out)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"resnet50_{args.layout}.pth"
        write_checkpoint(path, args.layout)
        kinds = ["reference", "load", *args.targets]
        runs = {k: [] for k in kinds}
        run_worker("reference", path, args.layout, tmp)  # warm the page cache and the imports
        for _ in range(args.repeats):
            for kind in kinds:
                runs[kind].append(run_worker(kind, path, args.layout, tmp))
        size_mb = path.stat().st_size / 2**20

    med = {k: {"seconds": statistics.median(r["seconds"] for r in v),
               "peak_added_mb": statistics.median(r["peak_added_mb"] for r in v)} for k, v in runs.items()}
    ref = med["reference"]
    print(f"ResNet-50, {args.layout} layout, {size_mb:.0f} MB file; medians of {args.repeats} fresh processes "
          f"({platform.processor() or platform.machine()}, python {platform.python_version()})")
    print(f"{'operation':26s} {'wall s':>8s} {'× ref':>7s} {'peak +MB':>9s} {'× ref':>7s}")
    for kind in kinds:
        label = {"reference": "torch.load+load_state_dict", "load": "load + build_model"}.get(kind, f"convert → {kind}")
        m = med[kind]
        print(f"{label:26s} {m['seconds']:8.3f} {m['seconds'] / ref['seconds']:7.2f} "
              f"{m['peak_added_mb']:9.0f} {m['peak_added_mb'] / max(ref['peak_added_mb'], 1e-9):7.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"layout": args.layout, "file_mb": size_mb, "medians": med,
                                               "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
