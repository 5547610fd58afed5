"""Sweeps: reading a preset's sweep values, and choosing a point on validation, as every evaluation does."""

from __future__ import annotations

from ..errors import ConfigError, TrainingDivergedError


def sweep_values(value, key: str, kind=float) -> list:
    """A preset's sweep setting as a list: one number, or a non-empty list of them (``key`` names it in errors)."""
    values = [value] if isinstance(value, (int, float)) else list(value)
    if not values:
        raise ConfigError(f"{key} must hold at least one value")
    return [kind(v) for v in values]


def best_point(points: list[dict], *keys: str, what: str = "sweep") -> int:
    """Index of the point with the highest validation ``keys`` (compared in order; the earliest wins a tie).

    A point whose first key is ``None`` diverged and is never chosen; when
    every point did, the sweep cannot choose and says so.
    """
    ranked = [(tuple(p[k] for k in keys), -i) for i, p in enumerate(points) if p.get(keys[0]) is not None]
    if not ranked:
        raise TrainingDivergedError(f"every point of the {what} diverged; lower the learning rates")
    return -max(ranked)[1]
