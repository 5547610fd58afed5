"""Run logs: one JSON object per line, mirrored to TensorBoard and the console."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from tqdm.auto import tqdm


class RunLogger:
    """Appends metrics to ``<run>/log.jsonl`` and ``<run>/tb``; silent where ``enabled`` is false (other ranks)."""

    def __init__(self, run_dir: Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "log.jsonl"
        self.writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(Path(run_dir) / "tb"))

    def log(self, step: int, **metrics) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": time.time(), **metrics}
        with self.path.open("a") as f:
            f.write(json.dumps(record, allow_nan=True) + "\n")
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self.writer.add_scalar(key, value, step)

    def info(self, message: str) -> None:
        if self.enabled:
            tqdm.write(message)

    def warn(self, step: int, message: str) -> None:
        """A warning that must not scroll by unnoticed: console and log."""
        if not self.enabled:
            return
        tqdm.write(f"\n{'!' * 78}\nWARNING (step {step}): {message}\n{'!' * 78}")
        self.log(step, warning=message)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
