"""Opening a checkpoint file without running code from it, and within bounded time and memory.

The container is recognised from the file's first bytes, not its name:

* a zip archive or a legacy ``torch.save`` stream (any pickle protocol) →
  ``torch.load`` with the restricted unpickler of :mod:`.torch_file`
  (memory-mapped for zip files, so a big training checkpoint costs only the
  pages the backbone occupies);
* a safetensors header → ``safetensors`` (its metadata is kept);
* any other pickle → :class:`~siambench.engine.safe_pickle.RestrictedUnpickler`,
  which admits numpy arrays and plain containers, plus the inert JAX/haiku
  stand-ins of :mod:`.byol_jax` (BYOL's and detectron2's ``.pkl`` files).

Python objects that training scripts pickle beside their tensors (argparse
namespaces, OmegaConf configs, mmengine's message hub) come back as the
inert stand-ins of :mod:`.standins`; every other class is refused with the
name the file asked for.

A hostile file cannot make the reader hang or exhaust memory: only regular
files are opened (a device, FIFO or socket is refused before ``open``),
zip entries must be stored or declare a bounded size before anything is
inflated, no array or storage may declare more bytes than the file holds,
and the sha256 is taken only once the file has been read successfully.
"""

from __future__ import annotations

import errno
import mmap
import os
import pickle
import re
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.io import sha256_file
from ..engine.safe_pickle import RestrictedUnpickler, array_limit
from ..errors import CheckpointError
from . import torch_file
from .backbone import BACKBONE_FILE, META_FILE, read_meta
from .byol_jax import resolve_global
from .locate import locate

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STEP = re.compile(r"^step_(\d+)\.pt$")
# A compressed zip entry may inflate to at most this multiple of the file's size (torch.save stores entries).
ZIP_INFLATE_LIMIT = 4
_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a FIFO (named pipe)",
          stat.S_IFSOCK: "a socket"}


@dataclass
class Source:
    """A checkpoint file as read: the loaded object and what is known about the container."""

    path: Path
    container: str  # "torch", "torch-legacy", "safetensors", "pickle", "siambench-backbone"
    obj: Any
    sha256: str
    metadata: dict = field(default_factory=dict)
    standins: list[str] = field(default_factory=list)


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat`` of ``path`` (following links), ``None`` when nothing is there; a link loop is an error."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CheckpointError(
                f"{path} is a symbolic link that leads back to itself (a symlink loop), so it names no file; "
                f"expected a checkpoint file or a run folder."
            ) from None
        raise CheckpointError(f"{path} cannot be read: {exc.strerror or exc}.") from None


def resolve_path(path: str | Path) -> Path:
    """A file, or the file a siambench run folder or a ``SCHEME:NAME`` (see :mod:`.locate`) stands for."""
    path = locate(path)
    info = _stat(path)
    if info is None:
        broken = " (a symbolic link whose target is missing)" if path.is_symlink() else ""
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist{broken}.")
    if stat.S_ISDIR(info.st_mode):
        if (path / BACKBONE_FILE).is_file():
            return path / BACKBONE_FILE
        steps = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := _STEP.match(p.name)))
        if steps:
            return steps[-1][1]
        raise CheckpointError(
            f"{path} is a folder without {BACKBONE_FILE} or step_*.pt; pass a checkpoint file or a siambench run "
            f"folder."
        )
    return path


def _regular_size(path: Path) -> int:
    """The size of ``path``, which must be a regular file: a device or FIFO could block or never end."""
    info = _stat(path)
    if info is None:
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist.")
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        raise CheckpointError(
            f"{path} is {kind}, not a regular file; expected a checkpoint file, so it was not opened."
        )
    return info.st_size


def read_source(path: str | Path) -> Source:
    """Open ``path`` (a file or a run folder) with the reader its first bytes call for."""
    path = resolve_path(path)
    size = _regular_size(path)
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes); expected a PyTorch, safetensors or pickle checkpoint.")
    with open(path, "rb") as f:
        head = f.read(64)
    source = _read(path, head, size)
    # Hashed only now: a file that was refused is never read to its end.
    source.sha256 = sha256_file(path)
    if source.container == "siambench-backbone" and source.metadata.get("sha256") != source.sha256:
        raise CheckpointError(
            f"{path} does not match its {META_FILE}: sha256 {source.sha256}, expected "
            f"{source.metadata.get('sha256')}; the file was changed or damaged after pretraining wrote it."
        )
    return source


def _read(path: Path, head: bytes, size: int) -> Source:
    if path.name == BACKBONE_FILE and (path.parent / META_FILE).exists():
        _regular_size(path.parent / META_FILE)
        meta = read_meta(path.parent / META_FILE)
        if meta.get("format") == "siambench-backbone":
            obj, standins = _torch_load(path, head, size)
            return Source(path, "siambench-backbone", obj, "", meta, standins)
    if head.startswith(b"PK\x03\x04") or _is_legacy_torch(head):
        obj, standins = _torch_load(path, head, size)
        return Source(path, "torch" if head.startswith(b"PK") else "torch-legacy", obj, "", {}, standins)
    if len(head) >= 9 and head[8:9] == b"{":
        header = struct.unpack("<Q", head[:8])[0]
        if 8 + header > size:
            raise CheckpointError(
                f"{path} starts like a safetensors file, but its header declares {header} bytes and the file has "
                f"only {size}; it is truncated or was not written by safetensors."
            )
        tensors, metadata = _safetensors_load(path)
        return Source(path, "safetensors", tensors, "", metadata)
    if head[0] == 0x80 and 2 <= head[1] <= 5 or head[:1] in (b"(", b"}", b"]", b")", b"c"):
        return Source(path, "pickle", _pickle_load(path, size, protocol=head[1] if head[0] == 0x80 else None), "")
    if head[0] == 0x80:
        raise CheckpointError(
            f"{path} is a pickle of protocol {head[1]}, which no Python that siambench runs on writes; expected "
            f"protocol 0 to 5."
        )
    raise CheckpointError(
        f"{path} is not a checkpoint: expected a PyTorch file (zip archive or legacy torch.save stream), a "
        f"safetensors file or a pickle, but it starts with {head[:8]!r}."
    )


def _is_legacy_torch(head: bytes) -> bool:
    """A legacy ``torch.save`` stream starts with a pickled magic number (in any protocol)."""
    if head[:1] != b"\x80" or not 2 <= head[1] <= 5:
        return False
    try:
        return RestrictedUnpickler(_BytesReader(head)).load() == _TORCH_LEGACY_MAGIC
    except Exception:  # noqa: BLE001 - any failure means "not the magic number"
        return False


class _BytesReader:
    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        out, self._pos = self._data[self._pos:end], min(end, len(self._data))
        return out

    def readline(self) -> bytes:
        i = self._data.find(b"\n", self._pos)
        return self.read(len(self._data) - self._pos if i < 0 else i + 1 - self._pos)


def _zip_entries(path: Path, size: int) -> tuple[dict[str, int], bool]:
    """Storage key → entry size, and whether every entry is stored; refuses what could inflate without bound."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is a damaged zip archive ({exc}); the download or copy was probably cut short."
        ) from None
    names = [i.filename for i in infos]
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        raise CheckpointError(
            f"{path} is a zip archive but not one written by torch.save (it has no data.pkl; it holds "
            f"{', '.join(names[:4])}{' ...' if len(names) > 4 else ''})."
        )
    if any(n.endswith("/constants.pkl") or n.endswith("/code/__torch__.py") for n in names):
        raise CheckpointError(
            f"{path} is a TorchScript archive; save the model's state_dict() with torch.save instead."
        )
    stored = True
    inflated = 0
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size > size:
                raise CheckpointError(
                    f"{path} was refused: its zip entry {info.filename} declares {info.file_size} bytes, more than "
                    f"the whole file ({size} bytes); the archive is damaged or crafted. Nothing was loaded."
                )
            continue
        stored = False
        inflated += info.file_size
        if inflated > ZIP_INFLATE_LIMIT * size:
            raise CheckpointError(
                f"{path} was refused: its zip entry {info.filename} is compressed (method {info.compress_type}) "
                f"and declares {info.file_size} bytes from {info.compress_size}, more than {ZIP_INFLATE_LIMIT}× "
                f"the file's {size} bytes; torch.save stores entries uncompressed, so this is not one of its "
                f"files. Nothing was inflated."
            )
    entries = {n.rsplit("/", 1)[1]: i.file_size for n, i in zip(names, infos) if "/data/" in f"/{n}"}
    return entries, stored


def _torch_load(path: Path, head: bytes, size: int):
    zipped = head.startswith(b"PK")
    entries, stored = _zip_entries(path, size) if zipped else (None, True)
    try:
        return torch_file.load(path, size, entries, mmap=zipped and stored)
    except torch_file.Refused as exc:
        raise CheckpointError(
            f"{path} was refused: {_first_line(exc)}. Nothing from the file was executed. If you wrote the file "
            f"yourself, re-save just its state_dict with torch.save."
        ) from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} was refused: the unpickler {_first_line(exc)}. Nothing from the file was executed."
        ) from None
    except MemoryError:
        raise _out_of_memory(path) from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path} could not be read as a PyTorch checkpoint ({type(exc).__name__}: {_first_line(exc)}); the "
            f"file is probably truncated or damaged: download it again and compare its checksum."
        ) from None


def _out_of_memory(path: Path) -> CheckpointError:
    return CheckpointError(
        f"{path} asks for more memory than this machine has while its pickle is read; it is damaged or crafted. "
        f"Nothing from the file was executed."
    )


def _first_line(exc: BaseException) -> str:
    lines = [t.strip() for t in str(exc).strip().splitlines() if t.strip()]
    return (lines[0] if lines else type(exc).__name__).rstrip(".")


def _safetensors_load(path: Path):
    from safetensors import SafetensorError, safe_open

    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} could not be read as a safetensors file ({_first_line(exc)}); it is probably truncated or "
            f"damaged."
        ) from None
    return tensors, metadata


def _pickle_load(path: Path, size: int, protocol: int | None):
    """A plain pickle, read from a memory map so that no declared length allocates more than the file holds."""
    kind = f"protocol-{protocol} pickle" if protocol is not None else "pickle (protocol 0 or 1)"
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view, array_limit(size):
            return RestrictedUnpickler(view, resolve=resolve_global, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused"):
            raise CheckpointError(
                f"{path} was refused: the unpickler {exc} (only numpy arrays, plain containers and inert "
                f"stand-ins for the haiku/JAX classes of BYOL's release are admitted). Nothing from the file "
                f"was executed."
            ) from None
        if protocol is None:
            raise CheckpointError(
                f"{path} is not a checkpoint: expected a PyTorch file, a safetensors file or a pickle, and it does "
                f"not read as a protocol 0/1 pickle either ({_first_line(exc)})."
            ) from None
        raise CheckpointError(
            f"{path} could not be read as a {kind} ({_first_line(exc)}); the file is probably truncated or damaged."
        ) from None
    except MemoryError:
        raise _out_of_memory(path) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error, OverflowError,
            RecursionError) as exc:
        raise CheckpointError(
            f"{path} could not be read as a {kind} ({type(exc).__name__}: {_first_line(exc)}); the file is "
            f"probably truncated or damaged."
        ) from None
