"""What the benchmarks share: device synchronisation, the GEMM reference rate, the CPU's name."""

from __future__ import annotations

import contextlib
import json
import platform
import time
from pathlib import Path

import torch


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, *args, device: torch.device) -> float:
    """Seconds ``fn(*args)`` takes, with the device synchronised before and after."""
    synchronize(device)
    t0 = time.perf_counter()
    fn(*args)
    synchronize(device)
    return time.perf_counter() - t0


def gemm_rate(n: int, dtype: torch.dtype, device: torch.device, reps: int = 3) -> float:
    """FLOP/s of the fastest of ``reps`` N³ ``torch.mm`` calls (after one untimed call)."""
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    out = torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        synchronize(device)
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def write_json(result: dict, path: str | None) -> None:
    """Write the figures to ``path`` as JSON, when one was given (``--json``)."""
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n")


def report(result: dict, path: str | None) -> None:
    """Print the figures as JSON, and write them to ``path`` too when one was given."""
    print(json.dumps(result, indent=2))
    write_json(result, path)
