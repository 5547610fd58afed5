"""Files that are never half-written, and hashes that name them."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` then rename the result onto ``path``.

    A reader sees the old file or the new one, never a partial one, even if
    the process is killed mid-write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_torch(obj, path) -> Path:
    """``torch.save`` through a file object: torch names the archive inside after a path it is given, so writing to
    the temporary path would make the same weights hash differently on every save."""

    def write(tmp):
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    return atomic_write(path, write)


def save_json(obj, path) -> Path:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")

    return atomic_write(path, write)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
