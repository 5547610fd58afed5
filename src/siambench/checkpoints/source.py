"""Opening a checkpoint file without running code from it.

The container is recognised from the file's first bytes, not its name:

* a zip archive or a legacy ``torch.save`` stream → ``torch.load(weights_only=True)``
  (memory-mapped for zip files, so a big training checkpoint costs only the
  pages the backbone occupies);
* a safetensors header → ``safetensors`` (its metadata is kept);
* any other pickle → :class:`~siambench.engine.safe_pickle.RestrictedUnpickler`,
  which admits numpy arrays and plain containers, plus the inert JAX/haiku
  stand-ins of :mod:`.byol_jax` (BYOL's and detectron2's ``.pkl`` files).

Training checkpoints often carry Python objects beside their tensors (an
``argparse.Namespace`` of arguments, an OmegaConf config, Lightning's
``AttributeDict``). ``weights_only`` refuses them; for the few metadata
classes listed in :data:`METADATA_MODULES` the load is retried with inert
stand-ins in their place, which record what the file held and run nothing.
Every other class (``os.system``, ``builtins.eval``, anything unknown) is
refused with the name the file asked for.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.io import sha256_file
from ..engine.safe_pickle import NUMPY_GLOBALS, restricted_load
from ..errors import CheckpointError
from .backbone import BACKBONE_FILE, META_FILE
from .byol_jax import resolve_global

_TORCH_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[:-1]
_REFUSED = re.compile(r"GLOBAL ([\w.]+)")
_STEP = re.compile(r"^step_(\d+)\.pt$")

# Metadata classes that training scripts pickle beside their tensors; each becomes an inert stand-in.
METADATA_MODULES = ("argparse", "omegaconf", "typing", "pathlib", "datetime", "collections", "copyreg")
METADATA_NAMES = {
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning.pytorch.utilities.parsing.AttributeDict",
    "torch.torch_version.TorchVersion",
}
# Builtins that appear as values (OmegaConf's object_type=dict); eval, getattr, open ... are not among them.
_BUILTIN_TYPES = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bytes", "bool", "object",
                  "type", "slice", "range", "NoneType"}
_DICT_LIKE = {"AttributeDict", "defaultdict", "OrderedDict"}


class Opaque:
    """An object of a class the file named, kept as inert data: its arguments and state, nothing run."""

    pickled_as = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__["args"] = args
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def __repr__(self):
        return f"<{self.pickled_as}>"


class _DictStandIn:
    """Dict subclasses (Lightning's AttributeDict, defaultdict) come back as plain dicts."""

    def __new__(cls, *args, **kwargs):
        return dict(args[0]) if args and isinstance(args[0], Mapping) else {}


def _standin(name: str):
    """The stand-in for a class a torch file names, or ``None`` to refuse it."""
    module, _, attr = name.rpartition(".")
    if not module:
        module, attr = "builtins", name
    numpy_obj = NUMPY_GLOBALS.get((module, attr))
    if numpy_obj is not None:
        return numpy_obj
    if module == "numpy.dtypes" and isinstance(getattr(np.dtypes, attr, None), type):
        return getattr(np.dtypes, attr)
    allowed = (
        name in METADATA_NAMES
        or (module == "builtins" and attr in _BUILTIN_TYPES)
        or any(module == m or module.startswith(m + ".") for m in METADATA_MODULES)
    )
    if not allowed:
        return None
    base = _DictStandIn if attr in _DICT_LIKE else Opaque
    return type(attr, (base,), {"pickled_as": f"{module}.{attr}", "__module__": __name__})


@dataclass
class Source:
    """A checkpoint file as read: the loaded object and what is known about the container."""

    path: Path
    container: str  # "torch", "torch-legacy", "safetensors", "pickle", "siambench-backbone"
    obj: Any
    sha256: str
    metadata: dict = field(default_factory=dict)
    standins: list[str] = field(default_factory=list)


def resolve_path(path: str | Path) -> Path:
    """A file, or the file a siambench run folder stands for (its backbone, else its newest step)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the path does not exist.")
    if path.is_dir():
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


def read_source(path: str | Path) -> Source:
    """Open ``path`` (a file or a run folder) with the reader its first bytes call for."""
    path = resolve_path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    size = path.stat().st_size
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes); expected a PyTorch, safetensors or pickle checkpoint.")
    # Hash on a second thread while the file loads (hashlib releases the GIL): the hash costs no wall time.
    with ThreadPoolExecutor(1) as pool:
        digest = pool.submit(sha256_file, path)
        source = _read(path, head, size, digest)
        source.sha256 = digest.result()
    return source


def _read(path: Path, head: bytes, size: int, digest: Future) -> Source:
    if path.name == BACKBONE_FILE and (path.parent / META_FILE).is_file():
        meta = json.loads((path.parent / META_FILE).read_text())
        if meta.get("format") == "siambench-backbone":
            obj, standins = _torch_load(path, head)
            if meta.get("sha256") != digest.result():
                raise CheckpointError(
                    f"{path} does not match its {META_FILE}: sha256 {digest.result()}, expected "
                    f"{meta.get('sha256')}; the file was changed or damaged after pretraining wrote it."
                )
            return Source(path, "siambench-backbone", obj, "", meta, standins)
    if head.startswith(b"PK\x03\x04") or head.startswith(_TORCH_LEGACY_MAGIC):
        obj, standins = _torch_load(path, head)
        return Source(path, "torch" if head.startswith(b"PK") else "torch-legacy", obj, "", {}, standins)
    if len(head) >= 9 and head[8:9] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= size:
        tensors, metadata = _safetensors_load(path)
        return Source(path, "safetensors", tensors, "", metadata)
    if head[0] == 0x80 and 2 <= head[1] <= 5:
        return Source(path, "pickle", _pickle_load(path), "")
    raise CheckpointError(
        f"{path} is not a checkpoint: expected a PyTorch file (zip archive or legacy torch.save stream), a "
        f"safetensors file or a pickle, but it starts with {head[:8]!r}."
    )


def _torch_load(path: Path, head: bytes):
    zipped = head.startswith(b"PK")
    if zipped:
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise CheckpointError(
                f"{path} is a damaged zip archive ({exc}); the download or copy was probably cut short."
            ) from None
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            raise CheckpointError(
                f"{path} is a zip archive but not one written by torch.save (it has no data.pkl; it holds "
                f"{', '.join(names[:4])}{' ...' if len(names) > 4 else ''})."
            )
        if any(n.endswith("/constants.pkl") or n.endswith("/code/__torch__.py") for n in names):
            raise CheckpointError(
                f"{path} is a TorchScript archive; save the model's state_dict() with torch.save instead."
            )
    standins: dict[str, Any] = {}
    if zipped:
        try:
            for name in torch.serialization.get_unsafe_globals_in_checkpoint(str(path)):
                standins[name] = _refuse_or_standin(path, name)
        except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError):
            pass  # a damaged pickle: torch.load below says so
    for _ in range(256):
        try:
            with torch.serialization.safe_globals([(obj, name) for name, obj in standins.items()]):
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
            inert = (Opaque, _DictStandIn)
            return obj, sorted(n for n, o in standins.items() if isinstance(o, type) and issubclass(o, inert))
        except pickle.UnpicklingError as exc:
            m = _REFUSED.search(str(exc))
            # torch names builtins without their module ("GLOBAL dict"); the allowlist wants the full path.
            name = m and (m.group(1) if "." in m.group(1) else f"builtins.{m.group(1)}")
            if not name or name in standins:
                raise CheckpointError(
                    f"{path} could not be loaded with torch.load(weights_only=True): {_first_line(exc)}. "
                    f"Nothing from the file was executed."
                ) from None
            standins[name] = _refuse_or_standin(path, name)
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
            raise CheckpointError(
                f"{path} could not be read as a PyTorch checkpoint ({_first_line(exc)}); the file is "
                f"probably truncated or damaged: download it again and compare its checksum."
            ) from None
    raise CheckpointError(f"{path} names too many Python classes to stand in for.")


def _refuse_or_standin(path: Path, name: str):
    standin = _standin(name)
    if standin is None:
        raise CheckpointError(
            f"{path} was refused: besides tensors it asks the unpickler for {name}, which a checkpoint has no "
            f"reason to contain (only tensors, numpy arrays, plain containers and a few metadata classes are "
            f"admitted). Nothing from the file was executed. If you wrote the file yourself, re-save just its "
            f"state_dict with torch.save."
        )
    return standin


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    lines = [t for t in text if "WeightsUnpickler error" in t] or text or [type(exc).__name__]
    return lines[0].strip().rstrip(".")


def _safetensors_load(path: Path):
    from safetensors import SafetensorError, safe_open

    try:
        tensors = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} could not be read as a safetensors file ({exc}); it is probably truncated or damaged."
        ) from None
    return tensors, metadata


def _pickle_load(path: Path):
    try:
        with open(path, "rb") as f:
            return restricted_load(f, resolve=resolve_global, encoding="latin1")
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("refused"):
            raise CheckpointError(
                f"{path} was refused: the unpickler {exc} (only numpy arrays, plain containers and inert "
                f"stand-ins for the haiku/JAX classes of BYOL's release are admitted). Nothing from the file "
                f"was executed."
            ) from None
        raise CheckpointError(
            f"{path} could not be read as a pickle ({exc}); the file is probably truncated or damaged."
        ) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error) as exc:
        raise CheckpointError(
            f"{path} could not be read as a pickle ({type(exc).__name__}: {exc}); the file is probably "
            f"truncated or damaged."
        ) from None
