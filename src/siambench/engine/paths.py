"""Where siambench keeps caches and outputs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$SIAMBENCH_CACHE`` (default ``~/.cache/siambench``) joined with ``parts``, created."""
    root = Path(os.environ.get("SIAMBENCH_CACHE", Path.home() / ".cache" / "siambench")).expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
