"""Choosing a sweep's point on validation: the one rule the fine-tuning evaluations share."""

from __future__ import annotations

from ..errors import TrainingDivergedError


def best_point(points: list[dict], *keys: str, what: str = "sweep") -> int:
    """Index of the point with the highest validation ``keys`` (compared in order; the earliest wins a tie).

    A point whose first key is ``None`` diverged and is never chosen; when
    every point did, the sweep cannot choose and says so.
    """
    ranked = [(tuple(p[k] for k in keys), -i) for i, p in enumerate(points) if p.get(keys[0]) is not None]
    if not ranked:
        raise TrainingDivergedError(f"every point of the {what} diverged; lower the learning rates")
    return -max(ranked)[1]
