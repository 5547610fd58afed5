"""Result records: one JSON file per evaluation run, named by its key.

The key is (checkpoint sha256, task, dataset, protocol, seed) and it is the
file name, so a finished run is found before it is started again and reports
are built from these files alone. Records are written atomically: a killed
evaluation leaves either a whole record or none.
"""

from __future__ import annotations

import json
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from ..engine.io import save_json

RECORD_VERSION = 1


@dataclass(frozen=True)
class RecordKey:
    checkpoint_sha256: str
    task: str
    dataset: str
    protocol: str
    seed: int = 0

    @property
    def filename(self) -> str:
        parts = [self.task, self.dataset, self.protocol, f"seed{self.seed}", self.checkpoint_sha256[:16]]
        return "__".join(re.sub(r"[^A-Za-z0-9._-]", "-", p) for p in parts) + ".json"


def record_path(results_dir: str | Path, key: RecordKey) -> Path:
    return Path(results_dir) / key.filename


def find_record(results_dir: str | Path, key: RecordKey) -> dict | None:
    path = record_path(results_dir, key)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if record.get("checkpoint", {}).get("sha256") != key.checkpoint_sha256:
        return None
    record["_path"] = str(path)
    return record


def environment() -> dict:
    return {
        "siambench": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }


def write_record(results_dir: str | Path, key: RecordKey, *, checkpoint: dict, metrics: dict, primary_metric: str,
                 hyperparameters: dict | None = None, config: dict | None = None, wall_time_s: float | None = None,
                 notes: list[str] | None = None, extra: dict | None = None) -> Path:
    """Write the record of one finished run; ``metrics`` maps names to numbers (percent for accuracies)."""
    if primary_metric not in metrics:
        raise ValueError(f"primary metric {primary_metric!r} is not among {sorted(metrics)}")
    record = {
        "version": RECORD_VERSION,
        "task": key.task,
        "dataset": key.dataset,
        "protocol": key.protocol,
        "seed": key.seed,
        "checkpoint": {**checkpoint, "sha256": key.checkpoint_sha256},
        "metrics": metrics,
        "primary_metric": primary_metric,
        "hyperparameters": hyperparameters or {},
        "config": config or {},
        "notes": notes or [],
        "wall_time_s": wall_time_s,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "environment": environment(),
        **(extra or {}),
    }
    return save_json(record, record_path(results_dir, key))


def load_records(results_dir: str | Path) -> list[dict]:
    """Every record under ``results_dir`` (recursively), oldest first; unreadable files are skipped."""
    records = []
    for path in sorted(Path(results_dir).rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and record.get("version") == RECORD_VERSION and "metrics" in record:
            record["_path"] = str(path)
            records.append(record)
    return records
