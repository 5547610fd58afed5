"""The native checkpoint: everything a killed run needs to continue exactly.

``<run>/step_<N>.pt`` holds the method module (online and target networks,
heads, BN statistics), the optimiser (LARS/SGD momentum), the step (from
which the schedules, the sampler position and the augmentation seeds
follow), every RNG state and the resolved config. Files are written to a
temporary name and renamed, and read with ``weights_only=True``, so nothing
in them can run code.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import torch

from ..engine.io import save_torch
from ..errors import CheckpointError
from .method import checkpoint_layout

FORMAT = "siambench-native"
_PATTERN = re.compile(r"^step_(\d+)\.pt$")


def rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / f"step_{step:08d}.pt"


def find_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first (temporary files of an interrupted write are ignored)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run_dir.iterdir() if (m := _PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run_dir: Path, step: int, model, optimizer, cfg, skipped: list[str], **extra) -> Path:
    weights = model.state_dict()
    state = {
        "format": FORMAT,
        "version": 2,
        "step": step,
        "model": weights,
        "layout": checkpoint_layout(model, weights),
        "optimizer": optimizer.state_dict(),
        "rng": rng_state(),
        "config": cfg.to_dict(),
        "skipped_images": list(skipped),
        **extra,
    }
    return save_torch(state, checkpoint_path(run_dir, step))


def prune_checkpoints(run_dir: Path, keep_last: int) -> None:
    for path in find_checkpoints(run_dir)[:-keep_last] if keep_last > 0 else []:
        path.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, device: torch.device) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} could not be read as a siambench checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a native siambench checkpoint (expected a dict with format={FORMAT!r}); "
            f"to evaluate a third-party checkpoint use `siambench ckpt inspect`."
        )
    return state
